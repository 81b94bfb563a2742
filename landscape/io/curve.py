"""The curve file of ``landscape connect``: a low-loss curve between two trained minima.

A `torch.save` dict that loads with ``weights_only=True`` (no arbitrary pickles)::

    {"format": "landscape-curve", "format_version": 1,
     "curve": "bezier" | "polychain", "bends": K,
     "ckpt":  {"path": str, "sha256": str},     # endpoint A (t = 0)
     "ckpt2": {"path": str, "sha256": str},     # endpoint B (t = 1)
     "bend_states": [{param name: tensor}, ...] # K bend points (parameters only)
     "epoch": int, "history": [{epoch, train_loss, train_error, lr, time}, ...],
     "config": {...},                           # the CurveConfig, flat
     "optimizer": {...}, "rng": {...}}          # to resume training

It is written whole after every epoch (`write_curve`), so the file is its own
checkpoint: a rerun resumes from it.

`write_bend` writes the bend of a one-bend curve as a checkpoint of the network
(``curve_bend.pt``, the third model of the plane ``landscape connect --plane`` computes),
marked ``"bend_of": {"file", "sha256"}`` (the curve file it came from).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from landscape.io.surface_file import StoreError
from landscape.models.checkpoint import atomic_torch_save, clean_state_dict, save_checkpoint

__all__ = ["CURVE_FORMAT", "read_curve", "write_bend", "write_curve"]

CURVE_FORMAT = "landscape-curve"
CURVE_VERSION = 1
_REQUIRED = ("curve", "bends", "ckpt", "ckpt2", "bend_states", "epoch", "config")


def write_curve(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write the curve `record` (the keys of the module's docstring) whole to `path`.

    Args:
        path: the curve file (``.pt``).
        record: what the file holds, without ``format`` and ``format_version``.

    Returns:
        The path written.
    """
    atomic_torch_save({"format": CURVE_FORMAT, "format_version": CURVE_VERSION, **record}, path)
    return Path(path)


def read_curve(path: str | os.PathLike) -> dict[str, Any]:
    """The record of a curve file (tensors on the CPU).

    Args:
        path: a file written by `write_curve` (``landscape connect --out``).

    Returns:
        The dict of the module's docstring.

    Raises:
        StoreError: the file is missing, not a curve file, or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(
            f"curve file {str(path)!r} does not exist; train one with "
            "landscape connect --ckpt A --ckpt2 B --out CURVE.pt"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable content is a damaged or foreign file
        raise StoreError(
            f"{str(path)!r} is not a readable curve file ({type(e).__name__}); give the file "
            "landscape connect --out wrote"
        ) from e
    if not isinstance(obj, dict) or obj.get("format") != CURVE_FORMAT:
        raise StoreError(
            f"{str(path)!r} is not a landscape curve file (no format={CURVE_FORMAT!r}); give "
            "the file landscape connect --out wrote"
        )
    missing = [k for k in _REQUIRED if k not in obj]
    bends = obj.get("bend_states")
    if missing or not isinstance(bends, list) or not all(isinstance(b, dict) for b in bends):
        raise StoreError(
            f"{str(path)!r} is damaged (missing {missing or ['bend_states']}); "
            "train the curve again into a new --out"
        )
    return obj


def write_bend(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_name: str,
    model_kwargs: dict[str, Any],
    epoch: int,
    bend_of: dict[str, Any],
) -> Path:
    """Write a curve's bend as a checkpoint of its network (`save_checkpoint`, atomically).

    A file already holding the same weights, network and ``bend_of`` is left as it is (its
    sha256 stays, so a surface computed from it resumes); one written for another curve,
    or the same curve trained on, is replaced; any other file is refused.

    Args:
        path: the checkpoint (``.pt``), e.g. ``curve_bend.pt``.
        model: the network with the bend's weights.
        model_name, model_kwargs: its builder, as the endpoints' checkpoints give it.
        epoch: the curve's epoch.
        bend_of: ``{"file": the curve file, "sha256": its hash}``.

    Returns:
        The path.

    Raises:
        StoreError: `path` exists and is not the bend of a curve.
    """
    path = Path(path)
    state = clean_state_dict(model.state_dict())
    if path.exists():
        try:
            old = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - any unreadable content is someone else's file
            old = None
        if not isinstance(old, dict) or not isinstance(old.get("bend_of"), dict):
            raise StoreError(
                f"{str(path)!r} exists and is not the bend of a curve; move it away (the "
                "plane's third model is written there)"
            )
        same = (
            old.get("model") == model_name
            and old.get("model_kwargs") == dict(model_kwargs)
            and old.get("bend_of") == bend_of
            and _same_state(old.get("state_dict"), state)
        )
        if same:
            return path
    save_checkpoint(
        path,
        model,
        model_name=model_name,
        model_kwargs=dict(model_kwargs),
        epoch=epoch,
        extra={"bend_of": dict(bend_of)},
    )
    return path


def _same_state(old: Any, new: dict[str, torch.Tensor]) -> bool:
    if not isinstance(old, dict) or set(old) != set(new):
        return False
    return all(
        isinstance(old[k], torch.Tensor)
        and old[k].dtype == v.dtype
        and old[k].shape == v.shape
        and torch.equal(old[k], v)
        for k, v in new.items()
    )
