"""The Hessian over a computed surface: |lambda_min / lambda_max| at every grid point.

Li et al. 2018, Fig. 8: near 0, the surface is locally convex there; large values mark
non-convex regions. `surface_curvature_map` rebuilds the network and the data a surface
file was computed with (from its stored config, checking the checkpoint's sha256),
evaluates the map along the file's own directions, and stores it in the file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landscape import models
from landscape.analysis import hessian
from landscape.analysis.spectrum import select_parameters, split_names
from landscape.core.checkpoints import load_model, resolve_checkpoint
from landscape.core.device import resolve_device
from landscape.core.errors import InputError
from landscape.core.files import sha256
from landscape.data import check_model_fits
from landscape.data.spec import DATA_FIELDS, DataSpec
from landscape.io.curvature import refuse_if_being_written, write_curvature_map
from landscape.io.surface_file import StoreError, Surface, read_surface
from landscape.surface.direction_policy import surface_directions

__all__ = [
    "CurvatureMap",
    "surface_curvature_map",
    "value_at_origin",
]

log = logging.getLogger(__name__)

SAMPLES = 128  # per grid point: a map of 51x51 points runs 2,601 Lanczos solves
ITERS = 20
TOL = 1e-2


@dataclass(frozen=True)
class CurvatureMap:
    """A curvature map and how it was made (the attributes stored with it).

    Attributes:
        surface: the surface it was computed over.
        ratio: ``|lambda_min / lambda_max|``, the grid's shape; NaN where undefined.
        lambda_min, lambda_max: the two ends of the spectrum at each point.
        split: the data split.
        label: the surface's name.
        attrs: the settings stored with the map.
    """

    surface: Surface
    ratio: np.ndarray  # |lambda_min / lambda_max|, the grid's shape; NaN where undefined
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    split: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def unconverged_points(self) -> int:
        return int(self.attrs.get("unconverged_points", 0))


def _builtin(name: Any) -> str | None:
    """`name` when it is a built-in network, else None."""
    return name if isinstance(name, str) and models.is_model(name) else None


def value_at_origin(surface: Surface, values: np.ndarray) -> float:
    """`values` (the grid's shape) at the grid point nearest theta*."""
    i = int(np.argmin(np.abs(surface.alpha)))
    if surface.beta is None:
        return float(values[i])
    return float(values[i, int(np.argmin(np.abs(surface.beta)))])


def surface_curvature_map(
    path: str | os.PathLike,
    *,
    ckpt: str | os.PathLike | None = None,
    model: str | torch.nn.Module | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    split: str | None = None,
    data: DataSpec | Mapping[str, Any] | Any = None,
    wrt: str = "weights",
    params: Sequence[str] | str = (),
    exclude: Sequence[str] | str = (),
    loss: str | None = None,
    iters: int = ITERS,
    tol: float = TOL,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    write: bool = True,
    progress: Callable[[int, int], None] | None = None,
    task: Any = None,
) -> CurvatureMap:
    """|lambda_min / lambda_max| of the Hessian at every point of the surface file `path`.

    The network and data are those the surface was computed with: its checkpoint (or
    `ckpt`, which must have the same sha256 as the one recorded), its data settings
    (or `data`, a `DataSpec`; by default the surface's, at most 1,000 samples) and its
    directions. With `write`, the map is stored in the
    file as ``/{split}_curvature_ratio`` beside ``lambda_min`` and ``lambda_max``.

    A surface of a task (``compute_surface(loss_fn=...)``, ``--task``) is mapped with the
    Hessian of that task's loss: a ``--task module:function`` recorded in the file is
    imported again (its data too, else the surface's dataset); a surface computed from
    Python needs the same ``task=`` (a `landscape.Task` or its ``loss_fn``), its batches
    as ``data=`` and, without a checkpoint, ``model=`` the network at theta* (checked
    against the weights the file recorded).

    Args:
        path: a surface file with its directions.
        ckpt: theta*, replacing the file's checkpoint path (same content required).
        model, model_kwargs: the network, where the checkpoint does not name it; for a
            task's surface also the network itself (an ``nn.Module`` at theta*).
        split: train | test (default: train, or the surface's first).
        data: the data: a `DataSpec`, or settings that replace the surface's own (by
            default its own, at most 1,000 samples unless `samples` is given).
        wrt: ``"weights"`` (as ``ignore=biasbn``) or ``"all"``.
        params, exclude: the part of the weights the Hessian is taken over: globs over
            parameter names or the built-in networks' groups (``"stage1"``, ``"head"``;
            `landscape.analysis.spectrum.select_parameters`); empty: all of `wrt`.
        loss: the loss whose Hessian is taken (default: the surface's).
        iters, tol: Lanczos steps and convergence per point.
        seed: of the random start vectors.
        batch_size: samples per pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        write: store the map in the file.
        progress: ``progress(done, total)``, called after every point.
        task: for a surface of a task computed from Python: its task (see above).

    Returns:
        The `CurvatureMap` (draw it with `curvature_map_figure`).
    """
    path = Path(path)
    surface = read_surface(path)
    if write:
        refuse_if_being_written(path)
    cfg = surface.config
    recorded_task = surface.provenance.get("task")
    if cfg.get("task") or isinstance(recorded_task, dict) or task is not None:
        return _task_map(
            path, surface, task, ckpt=ckpt, model=model, model_kwargs=model_kwargs,
            split=split, data=data, wrt=wrt, params=params, exclude=exclude, loss=loss,
            iters=iters, tol=tol, seed=seed, batch_size=batch_size, device=device,
            write=write, progress=progress,
        )  # fmt: skip
    if isinstance(model, torch.nn.Module):
        raise InputError(
            "model= takes a network name here (the surface's checkpoint holds the weights); "
            "a network object serves a task's surface",
            arg="model",
        )
    spec = ckpt or cfg.get("ckpt")
    if not spec:
        raise StoreError(f"{str(path)!r} names no checkpoint; pass ckpt", arg="ckpt")
    ckpt_path = _surface_checkpoint(spec, surface, path)
    if cfg.get("ckpt2") or cfg.get("bn") == "recompute":
        log.warning(
            "this surface also moves BatchNorm statistics; the Hessian keeps theta*'s running "
            "statistics at every point"
        )
    stored_loss = cfg.get("loss", "ce")
    if loss is not None and loss != stored_loss:
        raise InputError(
            f"the surface was computed with loss {stored_loss!r}; its curvature map is of the "
            f"same loss - drop loss {loss}",
            arg="loss",
        )
    loss = stored_loss
    if loss not in hessian.LOSSES:
        raise InputError(f"the surface's loss {loss!r} has no Hessian here ({hessian.LOSSES})")
    device = resolve_device(device)
    loaded = load_model(
        ckpt_path,
        # The checkpoint names its own network; the surface's name only fills in a bare
        # state_dict, and only when it is a built-in one (a file never names code).
        model=model or _builtin(cfg.get("model")),
        model_kwargs=model_kwargs or cfg.get("model_kwargs"),
        device=device,
    )
    split = split or (cfg.get("split") or ["train"])[0]
    if not isinstance(data, DataSpec):  # the surface's own samples, at most SAMPLES
        given = dict(data or {})
        data = DataSpec.from_config(cfg, **{**given, "samples": given.get("samples")})
        if given.get("samples") is None:
            data = dataclasses.replace(data, samples=None)
    samples = data.load(split, at_most=min(SAMPLES, cfg.get("samples") or SAMPLES))
    x, y = samples.normalized(device), samples.y.to(device)
    net = loaded.model
    check_model_fits(net, x, y, what="the data")
    stored = surface_directions(path)
    directions = {a: stored[a] for a in (("x", "y") if surface.is_2d else ("x",))}
    with hessian.LanczosWarnings() as unconverged:
        lo, hi = hessian.extreme_eigenvalue_map(
            net,
            directions,
            x,
            y,
            alpha=surface.alpha,
            beta=surface.beta,
            batch_size=batch_size,
            wrt=select_parameters(net, params, exclude, wrt=wrt),
            loss=loss,
            iters=iters,
            tol=tol,
            generator=torch.Generator().manual_seed(seed),
            progress=progress,
        )
    # As hessian.curvature_map, keeping lambda_min and lambda_max beside the ratio.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(lo / hi)
    ratio[~np.isfinite(ratio)] = np.nan
    attrs = {
        "ckpt": str(spec),
        "model": loaded.model_name,
        "split": split,
        "wrt": wrt,
        "params": ",".join(split_names(params)),
        "exclude": ",".join(split_names(exclude)),
        "iters": iters,
        "tol": tol,
        "seed": seed,
        "loss": loss,
        "unconverged_points": unconverged.count,
        "data": samples.info,
    }
    if write:
        write_curvature_map(
            path, ratio, split=split, attrs=attrs, extra={"lambda_min": lo, "lambda_max": hi}
        )
    label = cfg.get("label") or loaded.model_name or path.stem
    return CurvatureMap(surface, ratio, lo, hi, split, label, attrs)


def _surface_checkpoint(spec: str, surface: Surface, path: Path) -> Path:
    """The checkpoint `spec` of the surface at `path`, resolved: it exists here and holds
    the weights the surface recorded (its ``ckpt_sha256``)."""
    ckpt_path = resolve_checkpoint(spec)
    if not ckpt_path.is_file():
        raise InputError(
            f"the surface's checkpoint {str(spec)!r} does not exist here; pass ckpt PATH to it",
            arg="ckpt",
        )
    recorded = surface.provenance.get("ckpt_sha256")
    if recorded and sha256(ckpt_path) != recorded:
        raise InputError(
            f"checkpoint {str(spec)!r} differs from the one {str(path)!r} was computed with; "
            "pass ckpt with the original weights",
            arg="ckpt",
        )
    return ckpt_path


def _task_map(
    path: Path,
    surface: Surface,
    task: Any,
    *,
    ckpt: str | os.PathLike | None,
    model: str | torch.nn.Module | None,
    model_kwargs: Mapping[str, Any] | None,
    split: str | None,
    data: Any,
    wrt: str,
    params: Sequence[str] | str,
    exclude: Sequence[str] | str,
    loss: str | None,
    iters: int,
    tol: float,
    seed: int,
    batch_size: int,
    device: str | torch.device,
    write: bool,
    progress: Callable[[int, int], None] | None,
) -> CurvatureMap:
    """`surface_curvature_map` of a task's surface: the Hessian of the task's loss."""
    from landscape.analysis.objective import as_task
    from landscape.surface.engine import load_task, state_sha256

    cfg = surface.config
    recorded = surface.provenance.get("task")
    name = cfg.get("task") or (recorded or {}).get("loss_fn") or "a task"
    if loss is not None:
        raise InputError(
            f"{str(path)!r} is a surface of a task ({name}); its map is of that task's loss - "
            f"drop loss {loss}",
            arg="loss",
        )
    task_data = None
    if task is None and cfg.get("task"):
        task, task_data = load_task(cfg["task"])
    if task is None:
        raise InputError(
            f"{str(path)!r} is a surface of the task {name}, computed from Python; pass the "
            "same task= (its loss_fn) and its batches as data=",
            arg="task",
        )
    task = as_task(task)
    mapped = task.describe()["loss_fn"]
    if isinstance(recorded, dict) and recorded.get("loss_fn") not in (None, mapped):
        log.warning(
            "the surface was computed with %s; mapping the Hessian of %s",
            recorded["loss_fn"],
            mapped,
        )
    device = resolve_device(device)
    splits = cfg.get("split") or ["train"]
    split = split or splits[0]
    if isinstance(model, torch.nn.Module):
        net, model_name, spec = model.to(device), type(model).__name__, None
        want = surface.provenance.get("state_sha256")
        from landscape.surface.direction_policy import state_of

        if want and state_sha256(state_of(net)) != want:
            raise InputError(
                f"model= holds other weights than the ones {str(path)!r} was computed at; pass "
                "the network at theta* (the surface's model, unchanged)",
                arg="model",
            )
    else:
        spec = ckpt or cfg.get("ckpt")
        if not spec:
            raise InputError(
                f"{str(path)!r} names no checkpoint; pass model= (the network at theta*) or ckpt",
                arg="model",
            )
        ckpt_path = _surface_checkpoint(spec, surface, path)
        loaded = load_model(
            ckpt_path,
            model=model or _builtin(cfg.get("model")),
            model_kwargs=model_kwargs or cfg.get("model_kwargs"),
            device=device,
        )
        net, model_name = loaded.model, loaded.model_name
    given, spec_options = data, {}
    if isinstance(given, Mapping) and split not in given and set(given) <= set(DATA_FIELDS):
        given, spec_options = None, dict(given)  # data options, as for the built-in loss
    if given is None:
        given = task_data
    if isinstance(given, Mapping) and split in given:
        given = given[split]
    if given is None:  # the task brings no data: the surface's images in (x, y) batches
        given = DataSpec.from_config(cfg, **spec_options).load(split, at_most=SAMPLES)
    stored = surface_directions(path)
    directions = {a: stored[a] for a in (("x", "y") if surface.is_2d else ("x",))}
    with hessian.LanczosWarnings() as unconverged:
        lo, hi = hessian.extreme_eigenvalue_map(
            net, directions, given, alpha=surface.alpha, beta=surface.beta,
            batch_size=batch_size, wrt=select_parameters(net, params, exclude, wrt=wrt),
            iters=iters, tol=tol, generator=torch.Generator().manual_seed(seed),
            progress=progress, task=task,
        )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(lo / hi)
    ratio[~np.isfinite(ratio)] = np.nan
    attrs = {
        "ckpt": str(spec) if spec else "",
        "model": model_name,
        "split": split,
        "wrt": wrt,
        "params": ",".join(split_names(params)),
        "exclude": ",".join(split_names(exclude)),
        "iters": iters,
        "tol": tol,
        "seed": seed,
        "loss": "task",
        "task": mapped,
        "unconverged_points": unconverged.count,
        "data": {"task": name},
    }
    if write:
        write_curvature_map(
            path, ratio, split=split, attrs=attrs, extra={"lambda_min": lo, "lambda_max": hi}
        )
    label = cfg.get("label") or model_name or path.stem
    return CurvatureMap(surface, ratio, lo, hi, split, label, attrs)
