"""Which directions a surface uses: the direction policy, in one place.

A surface's directions come from, in this order: the file being resumed (its own, always);
directions given by the caller (e.g. Hessian eigenvectors); a second and third checkpoint
(``ckpt2``, ``ckpt3``: interpolation); a directions file (ours or the original code's);
else random directions drawn with the config's seed and normalized filter by filter
(Li et al. 2018, Sec. 4). A file published without its directions regenerates them from
its config and checks them against its ``directions_sha256``.

Used by the engine, and by the commands that must use a surface's own directions
(``trajectory``, the curvature map).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from landscape import models
from landscape.core.checkpoints import load_model
from landscape.core.errors import InputError
from landscape.io.legacy import is_legacy_directions, read_legacy_directions
from landscape.io.surface_file import (
    StoreError,
    SurfaceFile,
    directions_sha256,
    open_readonly,
)
from landscape.surface.config import SurfaceConfig
from landscape.surface.directions import (
    interpolation_direction,
    orthogonalize,
    random_direction,
    restrict_direction,
    selected_names,
)

__all__ = [
    "config_directions",
    "directions_made_by",
    "file_directions",
    "moving_parameters",
    "select_directions",
    "state_of",
    "surface_directions",
]


def state_of(model: nn.Module, device: torch.device | None = None) -> dict[str, Tensor]:
    """Parameters and buffers of `model` by name, detached copies (on `device`)."""
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {k: v.detach().to(device, copy=True) for k, v in state.items()}


def surface_directions(path: str | os.PathLike) -> dict[str, dict[str, Tensor]]:
    """The directions of a surface or directions file, on the CPU (see `file_directions`).

    Args:
        path: a surface file, a directions file (``eigendirs``, ``trajectory``) or one of
            the original code's direction files.

    Returns:
        ``{"x": {name: tensor}, "y": {...}}`` (``"y"`` only for two directions).
    """
    with SurfaceFile(path, write=False) as handle:
        return file_directions(handle)


def file_directions(handle: SurfaceFile) -> dict[str, dict[str, Tensor]]:
    """The directions of an open surface or directions file, on the CPU.

    Stored ones are read (and checked). A file published without them has its
    ``directions_sha256``: the directions are regenerated from its config (checkpoint,
    seed, norm, ignore) and must hash to it, so they are exactly the file's.
    """
    digest = handle.directions_sha256
    if handle.has_directions or digest is None:  # stored, or say what is missing
        return handle.directions()
    stored = handle.config
    where = f"{str(handle.path)!r} was published without its directions"
    if stored.get("ckpt2") or stored.get("directions") or not stored.get("ckpt"):
        raise StoreError(
            f"{where}, and they do not come from a seed (they came from other models or a "
            "directions file); use the full file"
        )
    config = SurfaceConfig.from_json(stored)
    try:
        loaded = load_model(
            config.ckpt,
            # a file never names code to run: only a built-in network is taken from it
            model=config.model if config.model and models.is_model(config.model) else None,
            model_kwargs=config.model_kwargs or None,
        )
    except (InputError, models.ModelError, OSError) as e:
        raise StoreError(
            f"{where}; regenerating them needs its checkpoint {config.ckpt!r} ({e})"
        ) from e
    dirs = config_directions(config, loaded.model, torch.device("cpu"))
    if directions_sha256(dirs) != digest:
        raise StoreError(
            f"{where}; the ones regenerated from checkpoint {config.ckpt!r} and seed "
            f"{config.seed} differ from the file's (directions_sha256): another checkpoint?"
        )
    return dirs


def config_directions(
    config: SurfaceConfig, model: nn.Module, device: torch.device
) -> dict[str, dict[str, Tensor]]:
    """The plotting directions the config asks for, by axis ("x", "y"), for `model`."""
    params = {k: v.detach().to(device) for k, v in model.named_parameters()}
    if config.ckpt2:
        state_a = state_of(model, device)
        out = {"x": interpolation_direction(state_a, _other_state(config.ckpt2, config, device))}
        if config.ckpt3:
            out["y"] = interpolation_direction(state_a, _other_state(config.ckpt3, config, device))
        return out
    if config.directions:
        if is_legacy_directions(config.directions):  # the original code's direction file
            stored = read_legacy_directions(
                config.directions,
                [(n, tuple(p.shape)) for n, p in model.named_parameters()],
                [(n, tuple(t.shape)) for n, t in model.state_dict().items()],
            )
        else:
            stored = surface_directions(Path(config.directions))
        axes = ["x", "y"] if config.is_2d else ["x"]
        missing = [a for a in axes if a not in stored]
        if missing:
            raise StoreError(
                f"{config.directions!r} has no '{missing[0]}' direction; "
                "use a 2-D directions file or drop --y"
            )
        out = {a: {k: v.to(device) for k, v in stored[a].items()} for a in axes}
    else:
        # An explicit generator: the same seed gives the same directions everywhere.
        gen = torch.Generator().manual_seed(config.seed)
        out = {"x": random_direction(params, generator=gen, norm=config.norm, ignore=config.ignore)}
        if config.is_2d:
            out["y"] = random_direction(
                params, generator=gen, norm=config.norm, ignore=config.ignore
            )
    out = select_directions(config, model, out)
    if config.orthogonalize and "y" in out:
        out["y"] = orthogonalize(out["y"], out["x"])
    return out


def select_directions(
    config: SurfaceConfig, model: nn.Module, dirs: dict[str, dict[str, Tensor]]
) -> dict[str, dict[str, Tensor]]:
    """`dirs` with zero directions for every tensor the config's ``params`` / ``exclude``
    do not select (unchanged without a selection). The globs match the names of the
    model's parameters and buffers (a buffer moves only in an interpolation)."""
    if not config.params and not config.exclude:
        return dirs
    names = [n for n, _ in model.named_parameters()]
    keep = selected_names(
        [*names, *(n for n, _ in model.named_buffers())],
        config.params,
        config.exclude,
        parameters=names,
    )
    out = {axis: restrict_direction(d, keep) for axis, d in dirs.items()}
    for axis, d in out.items():
        if not any(bool(torch.count_nonzero(v)) for v in d.values()):
            raise InputError(
                f"params {list(config.params)} with exclude {list(config.exclude)} select only "
                f"tensors whose {axis} direction is zero (1-D ones, with ignore='biasbn'?); "
                "select weight matrices too, or pass ignore='none'",
                arg=("params", "exclude", "ignore"),
            )
    return out


def moving_parameters(config: SurfaceConfig, model: nn.Module) -> list[str]:
    """The parameters a direction must cover: every one of the model's, or those the
    config's ``params`` / ``exclude`` select (the rest may be absent: they stay put)."""
    names = [n for n, _ in model.named_parameters()]
    if not config.params and not config.exclude:
        return names
    keep = selected_names(
        [*names, *(n for n, _ in model.named_buffers())],
        config.params,
        config.exclude,
        parameters=names,
    )
    return [n for n in names if n in keep]


def directions_made_by(path: str | os.PathLike) -> str | None:
    """Which command made the directions file `path`: its config's ``kind``
    (``hessian_eigenvectors``: ``eigendirs``; ``trajectory_pca``: ``trajectory``), or None
    for a file that does not say (or cannot be read). A command replaces only its own
    without ``--overwrite`` (`landscape.core.files.check_output`'s ``same_job``)."""
    import json

    try:
        with open_readonly(path, "directions file") as f:
            config = json.loads(f.attrs.get("config", "{}"))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, RecursionError):
        return None  # StoreError (not ours, links) is a ValueError too
    kind = config.get("kind") if isinstance(config, dict) else None
    return kind if isinstance(kind, str) else None


def _other_state(spec: str, config: SurfaceConfig, device: torch.device) -> dict[str, Tensor]:
    loaded = load_model(spec, model=config.model, model_kwargs=config.model_kwargs)
    return state_of(loaded.model, device)
