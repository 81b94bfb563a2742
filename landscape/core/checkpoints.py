"""Loading a trained network: the one checked loader every command and the API use.

A checkpoint is a path or ``pretrained:NAME`` (shipped inside the package). Loading
goes through `models.load_checkpoint`, which refuses a file that names code to run,
NaN or infinite weights, and weights that do not fit the architecture."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from landscape import models
from landscape.core.errors import InputError

__all__ = ["PREFIX", "as_model", "list_pretrained", "load_model", "resolve_checkpoint"]

PREFIX = "pretrained:"


def _folder() -> Path:
    return Path(str(resources.files("landscape") / "assets" / "pretrained"))


def list_pretrained() -> list[str]:
    """Names of the shipped checkpoints (``landscape pretrained`` prints them).

    Returns:
        The names, sorted; ``"pretrained:NAME"`` loads one.
    """
    folder = _folder()
    return sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []


def resolve_checkpoint(spec: str | os.PathLike) -> Path:
    """A checkpoint's file from a path or ``pretrained:NAME``; errors name what exists.

    Args:
        spec: a path, or ``pretrained:NAME`` (see `list_pretrained`).

    Returns:
        The file's path (a plain path is returned as it is, unchecked).
    """
    spec = os.fspath(spec)
    if not spec.startswith(PREFIX):
        return Path(spec)
    name = spec[len(PREFIX) :]
    path = _folder() / f"{name}.pt"
    if not path.is_file():
        known = ", ".join(list_pretrained()) or "none shipped in this version"
        raise InputError(f"no pretrained checkpoint {name!r}; available: {known}")
    return path


def load_model(
    spec: str | os.PathLike,
    *,
    model: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
) -> models.LoadedCheckpoint:
    """The network of a checkpoint (path or ``pretrained:NAME``), in eval mode.

    Args:
        spec: the checkpoint.
        model: the builder (a model name or ``module:function``); needed for a bare
            state_dict, and to trust a checkpoint that names a user's own builder.
        model_kwargs: builder arguments (default: the checkpoint's).
        device: where the weights go (default: the CPU).

    Returns:
        A `LoadedCheckpoint`: ``.model`` (in eval mode), ``.model_name``,
        ``.model_kwargs`` and the checkpoint's other records.
    """
    loaded = models.load_checkpoint(
        resolve_checkpoint(spec), model_name=model, model_kwargs=dict(model_kwargs or {}) or None
    )
    loaded.model.eval()
    if device is not None:
        loaded.model.to(device)
    return loaded


def as_model(model: Any, device: torch.device | str | None = None) -> torch.nn.Module:
    """A network from what a caller has: an ``nn.Module`` (used as is) or a checkpoint."""
    if isinstance(model, str | os.PathLike):
        return load_model(model, device=device).model
    if isinstance(model, torch.nn.Module):
        return model.to(device) if device is not None else model
    raise TypeError(
        "model must be a torch.nn.Module or a checkpoint (a path or 'pretrained:NAME'), "
        f"got {type(model).__name__}"
    )
