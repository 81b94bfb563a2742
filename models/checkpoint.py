"""Checkpoints in the project's format, loaded without arbitrary pickles.

    {"format": "landscape-checkpoint", "format_version": 1,
     "model": "resnet56", "model_kwargs": {...}, "state_dict": {...},
     "epoch": int, "metrics": {...}, "dataset": {...}}

Extra keys (e.g. a trainer's optimizer state) are allowed and kept.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic import atomic_path
from .original import from_original_code, is_original_code, original_model
from .registry import ModelError, create_model, is_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "LoadedCheckpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "clean_state_dict",
    "load_state_dict_strict",
]

CHECKPOINT_FORMAT = "landscape-checkpoint"
CHECKPOINT_VERSION = 1
# Prefixes added by wrappers: DistributedDataParallel / DataParallel, torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ModelError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A rebuilt model and the metadata stored beside its weights."""

    model: nn.Module
    model_name: str | None
    model_kwargs: dict[str, Any]
    epoch: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` through `atomic_path`: never half a file."""
    # Serialized in memory first: a failed write (full disk) is then a plain OSError
    # naming its cause, where torch.save would report an opaque RuntimeError.
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_name: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    epoch: int = 0,
    metrics: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write `model` as a project checkpoint, atomically.

    The name and keyword arguments default to those recorded by `create_model`.
    """
    name = model_name or getattr(model, "model_name", None)
    if name is None:
        raise ModelError("model_name is required for a model not built by create_model")
    kwargs = model_kwargs if model_kwargs is not None else getattr(model, "model_kwargs", {})
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model": name,
        "model_kwargs": dict(kwargs),
        "state_dict": clean_state_dict(model.state_dict()),
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
        "dataset": dict(dataset or {}),
    }
    ckpt.update(extra or {})
    atomic_torch_save(ckpt, path)


def clean_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes (``module.``, ``_orig_mod.``) from every key, and detach."""
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value.detach() if isinstance(value, torch.Tensor) else value
    return out


def _read_safetensors(path: Path, map_location: str | torch.device) -> dict:
    """A ``.safetensors`` file: a bare state dict (tensors only, never code)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError(
            f"{str(path)!r} is a .safetensors file; reading it needs the safetensors package: "
            "pip install safetensors"
        ) from None
    try:
        return load_file(str(path), device=str(map_location))
    except Exception as e:  # noqa: BLE001 - a damaged file fails in many ways
        raise CheckpointError(
            f"{str(path)!r} is not a readable .safetensors file ({type(e).__name__}); "
            "use another copy"
        ) from e


# The final linear layer of the common classifiers (torchvision, timm, ours, the
# original code's): its weight's rows are the classes.
_HEADS = ("fc.weight", "linear.weight", "head.weight", "head.fc.weight", "heads.head.weight",
          "classifier.weight", "last_linear.weight")  # fmt: skip
_SEQUENTIAL_HEAD = re.compile(r"^classifier\.(\d+)\.weight$")


def _classes_of(state_dict: dict[str, Any]) -> int | None:
    """The class count a classifier's state dict holds (None when it names no known head)."""
    heads = [k for k in _HEADS if k in state_dict]
    numbered = sorted((int(m.group(1)), k) for k in state_dict if (m := _SEQUENTIAL_HEAD.match(k)))
    if numbered:  # VGG, AlexNet, MobileNet: the last layer of a Sequential classifier
        heads.append(numbered[-1][1])
    weight = state_dict.get(heads[-1]) if heads else None
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        return None
    return int(weight.shape[0])


def _strip_lightning_prefix(obj: dict, state_dict: dict) -> dict:
    """A PyTorch Lightning checkpoint keeps the network as an attribute of its module
    (``self.model = ...``): every key starts with that attribute's name. Strip it."""
    if "pytorch-lightning_version" not in obj or not state_dict:
        return state_dict
    heads = {k.split(".", 1)[0] for k in state_dict}
    if len(heads) != 1 or not all("." in k for k in state_dict):
        return state_dict
    return {k.split(".", 1)[1]: v for k, v in state_dict.items()}


def read_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict:
    """Load the raw checkpoint dict (or bare state_dict) safely, with clear errors."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a folder; name the checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; check the path")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is empty (0 bytes), e.g. cut off by a full disk; "
            "use another copy of it"
        )
    if path.suffix.lower() == ".safetensors":
        return _read_safetensors(path, map_location)
    try:
        # Lightning keeps its hyper-parameters as an argparse.Namespace (plain values):
        # allowed, as weights are; nothing else that is not a tensor or a container.
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            # Sparse tensors are refused below, in one line; torch's warning adds nothing.
            warnings.filterwarnings("ignore", "Validating sparse tensor", UserWarning)
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", str(e))
        if found is None:
            raise CheckpointError(
                f"{str(path)!r} is not a readable PyTorch checkpoint (corrupt or another "
                "file type); check the path or re-save it"
            ) from e
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds objects other than weights ({found.group(1)}); "
            "re-save it as a state_dict or with models.save_checkpoint"
        ) from e
    except Exception as e:  # noqa: BLE001 - torch.load fails on garbage in many ways
        raise CheckpointError(
            f"{str(path)!r} is not a readable PyTorch checkpoint ({type(e).__name__}); "
            "it may be truncated or another file type"
        ) from e
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a {type(obj).__name__}, expected a dict; "
            "save model.state_dict() or use models.save_checkpoint"
        )
    return obj


def load_state_dict_strict(
    model: nn.Module, state_dict: dict[str, torch.Tensor], *, name: str | None = None
) -> None:
    """Load `state_dict` into `model` (called `name` in errors); a mismatch is one error
    listing every bad key."""
    state_dict = clean_state_dict(state_dict)
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    misshaped = sorted(
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if isinstance(state_dict[k], torch.Tensor) and state_dict[k].shape != own[k].shape
    )
    if missing or unexpected or misshaped:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("mis-shaped", misshaped),
        ):
            if keys:
                shown = ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")
                parts.append(f"{label} {len(keys)}: {shown}")
        stem = state_dict.get("conv1.weight")
        hint = ""
        if "conv1.weight" in own and isinstance(stem, torch.Tensor) and stem.dim() == 4:
            if stem.shape[-1] == 3 and own["conv1.weight"].shape[-1] == 7:
                hint = " (a 3x3 stem: the CIFAR-style variant, --model-kwargs small_input=true)"
        raise CheckpointError(
            f"checkpoint does not fit the model{f' {name}' if name else ''}: "
            + "; ".join(parts)
            + hint
            + "; check --model and --model-kwargs"
        )
    model.load_state_dict(state_dict, strict=True)


def _original_accuracy(obj: dict) -> dict[str, Any]:
    """The original code's ``acc`` (test accuracy in percent) as our ``test_accuracy``."""
    acc = obj.get("acc")
    ok = isinstance(acc, int | float | torch.Tensor) and not isinstance(acc, bool)
    return {"test_accuracy": float(acc) / 100} if ok and "format" not in obj else {}


def _mapping(value: Any) -> dict[str, Any]:
    """Optional metadata as a dict: anything else (a damaged file) reads as none."""
    return dict(value) if isinstance(value, dict) else {}


def _is_bare_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    *,
    model_name: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
) -> LoadedCheckpoint:
    """Load a checkpoint and the network it belongs to.

    Args:
        path: a project checkpoint, or a bare ``state_dict`` file.
        model: load into this module instead of rebuilding one.
        model_name: registry name (or ``module:function``); required for a bare
            state_dict when `model` is not given, and overrides the stored name.
        model_kwargs: builder arguments; override the stored ones.
        map_location: where tensors are loaded.

    Raises:
        CheckpointError: unreadable file, unknown format, or weights that do not fit.
    """
    obj = read_checkpoint(path, map_location=map_location)
    if obj.get("format") == CHECKPOINT_FORMAT:
        version = obj.get("format_version")
        if version != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"checkpoint {str(path)!r} has format_version {version!r}; this version reads "
                f"{CHECKPOINT_VERSION}; upgrade the landscape package"
            )
        if "state_dict" not in obj:
            raise CheckpointError(
                f"checkpoint {str(path)!r} has no 'state_dict'; the file is damaged - use another "
                "copy or re-save it with models.save_checkpoint"
            )
        state_dict = obj["state_dict"]
        stored_name, stored_kwargs = obj.get("model"), obj.get("model_kwargs", {})
        for key, value, kind in (
            ("state_dict", state_dict, dict),
            ("model", stored_name, str),
            ("model_kwargs", stored_kwargs, dict),
            ("metrics", obj.get("metrics", {}), dict),
            ("dataset", obj.get("dataset", {}), dict),
        ):
            if not isinstance(value, kind):
                raise CheckpointError(
                    f"checkpoint {str(path)!r}: {key!r} is a {type(value).__name__}, expected "
                    f"a {kind.__name__}; the file is damaged or not written by landscape"
                )
        name = model_name or stored_name
        kwargs = {**stored_kwargs, **(model_kwargs or {})}
    elif _is_bare_state_dict(obj) or isinstance(obj.get("state_dict"), dict):
        # A bare state_dict, or a foreign {"state_dict": ...} wrapper.
        state_dict = obj if _is_bare_state_dict(obj) else obj["state_dict"]
        # Wrapper prefixes first (DataParallel's module., what the original code's
        # multi-GPU training writes), so that the layout below is recognized.
        state_dict = clean_state_dict(_strip_lightning_prefix(obj, state_dict))
        name = model_name
        kwargs = dict(model_kwargs or {})
        classes = None if is_original_code(state_dict) else _classes_of(state_dict)
        if classes is not None and "num_classes" not in kwargs:
            # A classifier's class count is in its weights (a 10-class resnet18 head),
            # not in the builder's default (1,000).
            kwargs["num_classes"] = classes
        if is_original_code(state_dict):
            # The original loss-landscape code's CIFAR ResNets: our networks, two names apart.
            guess = original_model(state_dict)
            state_dict = from_original_code(state_dict)
            if name is None and guess is not None:
                name, kwargs = guess[0], {**guess[1], **kwargs}
        if model is None and name is None:
            found = ", ".join(list(state_dict)[:3])
            raise CheckpointError(
                f"{str(path)!r} is a bare state_dict with no model name (it holds {found}, ...); "
                "pass --model NAME"
            )
    else:
        raise CheckpointError(
            f"{str(path)!r} is neither a landscape checkpoint nor a state_dict; "
            "save model.state_dict() or use models.save_checkpoint"
        )
    if model is None:
        if model_name is None and name is not None and not is_model(str(name)):
            # The name came from the file. A file never names code: only the caller may
            # name a ``module:function`` builder, which is then imported and called.
            raise CheckpointError(
                f"checkpoint {str(path)!r} names the model {name!r}, which is not a built-in "
                "network; a file never names code to run - if you trust it, pass "
                f"--model {name} (model_name={name!r} in Python)"
            )
        try:
            model = create_model(name, **kwargs)
        except (ValueError, TypeError, RuntimeError) as e:  # e.g. num_classes=-1
            raise CheckpointError(
                f"cannot rebuild model {name!r} with arguments {kwargs}: {e}; "
                "check --model and --model-kwargs"
            ) from e
    bad = sorted(k for k, v in state_dict.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise CheckpointError(
            f"checkpoint {str(path)!r}: state_dict entries that are not tensors: "
            f"{', '.join(map(str, bad[:5]))}; the file is damaged or not a state_dict"
        )
    sparse = sorted(k for k, v in state_dict.items() if v.layout != torch.strided)
    if sparse:
        raise CheckpointError(
            f"checkpoint {str(path)!r}: sparse tensors in the state_dict "
            f"({', '.join(map(str, sparse[:5]))}); save dense weights (tensor.to_dense())"
        )
    for key, tensor in state_dict.items():  # a diverged run saves NaN weights
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            kind = "NaN" if torch.isnan(tensor).any() else "inf"
            raise CheckpointError(
                f"checkpoint {str(path)!r} has {kind} weights in {key} (a diverged run?); "
                "use a checkpoint from before it diverged"
            )
    load_state_dict_strict(model, state_dict, name=name)
    return LoadedCheckpoint(
        model=model,
        model_name=name,
        model_kwargs=kwargs,
        epoch=obj.get("epoch") if isinstance(obj.get("epoch"), int) else None,
        metrics=_mapping(obj.get("metrics")) or _original_accuracy(obj),
        dataset=_mapping(obj.get("dataset")),
        raw={k: v for k, v in obj.items() if k != "state_dict"},
    )
