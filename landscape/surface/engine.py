"""The engine, top-down: f(alpha, beta) = L(theta* + alpha*dx + beta*dy) into one file.

    (Li et al. 2018, Eq. 1)

`run` is the one entry point of a ``compute``: it loads what a `SurfaceConfig` names
(`load_inputs`), then `compute_surface` takes over, which any caller may use with a
model and data of its own. Its steps are the same in one process and on each rank of a
``torchrun`` job (`landscape.surface.distributed`: `Solo` or `Team`, a strategy used here):

1. `prepare`: a private eval copy of the model and the data on the device, and the
   fingerprints of what is evaluated (the model's state, the samples);
2. `open_surface`: the file is created, or checked for resume (settings, grid,
   checkpoints, the state and data evaluated, directions), and opened once: one
   `SurfaceFile` handle answers everything asked of the file and writes it; the
   directions come from the direction policy (`landscape.surface.direction_policy`);
3. `fill_surface`: the pending points are handed out coarse-to-fine, evaluated in
   chunks and each chunk written the moment it is done (under ``torchrun`` the ranks
   share the hand-out; rank 0 alone holds the file).

Running again with the same output resumes; a file made with other settings, inputs
or directions is refused with every difference named.

The loss is the built-in classification loss of ``model(x)`` on ``(x, y)`` images
(``config.loss``), or a task: ``loss_fn(model, batch)`` (and ``metrics_fn``) on any
batches (`landscape.surface.task`), given to `compute_surface` or named by
``config.task``. A parameter selection (``config.params`` / ``exclude``) zeroes the
directions of the rest (`landscape.surface.direction_policy.select_directions`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from landscape import models
from landscape.core.checkpoints import load_model, resolve_checkpoint
from landscape.core.device import resolve_device
from landscape.core.errors import InputError
from landscape.core.files import provenance
from landscape.core.progress import progress_bar
from landscape.data import (
    DataError,
    DataSpec,
    DataTensors,
    check_model_fits,
    check_sizes,
    load_split,
    take_subset,
)
from landscape.io.surface_file import (
    PER_SAMPLE,
    STORED_METRICS,
    OutError,
    Surface,
    SurfaceFile,
)
from landscape.surface import distributed
from landscape.surface.config import PER_SAMPLE_AUTO_BYTES, SurfaceConfig
from landscape.surface.direction_policy import (
    config_directions,
    file_directions,
    moving_parameters,
    select_directions,
    state_of,
    surface_directions,
)
from landscape.surface.directions import check_direction, cosine
from landscape.surface.evaluate import (
    EvalData,
    Evaluator,
    make_evaluator,
)
from landscape.surface.grid import grid_origin, parse_axis
from landscape.surface.points import AdaptivePoints, PendingPoints, WriteFn
from landscape.surface.refine import Refinement, Walk
from landscape.surface.task import (
    LossFn,
    MetricsFn,
    Task,
    TaskData,
    TaskEvaluator,
    TaskShape,
    materialize,
    probe,
    tree_sha256,
)

__all__ = [
    "compute_surface",
    "load_inputs",
    "run",
    "run_seeds",
    "seed_paths",
    "state_of",
    "surface_directions",
]

log = logging.getLogger(__name__)


def run(
    config: SurfaceConfig,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool = True,
    dist_timeout_min: float = distributed.DEFAULT_TIMEOUT_MIN,
) -> Surface | None:
    """Load what `config` names, then compute (or finish) the surface into `out`.

    The one entry point of a ``compute``: in one process, or, under ``torchrun``, as
    one rank of a job whose ranks share the points (`landscape.surface.distributed`).

    Args:
        config: every setting, the checkpoint (`ckpt`) and data (`data`) included.
        out: the surface file (.h5); an existing one of the same settings is resumed.
        overwrite: replace `out` instead of resuming it.
        progress: show a progress bar.
        dist_timeout_min: under torchrun, minutes a rank waits for another.

    Returns:
        The surface; None on ranks other than 0.
    """
    if not distributed.launched():
        job = load_inputs(config)
        return _compute_one(
            job.model,
            job.data,
            job.config,
            out=out,
            provenance=job.provenance,
            bn_data=job.bn_data,
            overwrite=overwrite,
            progress=progress,
            task=job.task,
        )
    team = distributed.Team.start(
        config.device, timeout=datetime.timedelta(minutes=dist_timeout_min)
    )
    try:
        job = team.agree(lambda: load_inputs(config, team.device))
        surface = _compute(
            team,
            job.model,
            job.data,
            job.config,
            Path(out),
            provenance=job.provenance,
            bn_data=job.bn_data,
            overwrite=overwrite,
            progress=progress,
            task=job.task,
        )
    except KeyboardInterrupt:
        if team.rank == 0:
            raise
        raise distributed.QuietExit(130) from None
    # Now only after a clean finish: a rank stopping early may have a peer still talking
    # to it. On every other path the group is destroyed at exit (see `Team`).
    team.close()
    return surface


def seed_paths(out: str | os.PathLike, seeds: Sequence[int]) -> list[Path]:
    """``OUT_seed{N}.h5`` for each seed: the files of `run_seeds`."""
    out = Path(out)
    return [out.with_name(f"{out.stem}_seed{s}{out.suffix}") for s in seeds]


def run_seeds(
    config: SurfaceConfig,
    seeds: Sequence[int],
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Surface]:
    """One surface per direction seed, each its own file (`seed_paths`), the checkpoint
    and data loaded once. Rerunning resumes every file; finished ones are kept as they are.

    Args:
        config: every setting but the direction seed.
        seeds: the direction seeds, one surface each.
        out: the base file name: ``s.h5`` gives ``s_seed0.h5``, ``s_seed1.h5``, ...
        overwrite: replace existing files instead of resuming them.
        progress: show a progress bar.

    Returns:
        The surfaces, in the order of `seeds`.
    """
    job = load_inputs(config)
    return [
        _compute_one(
            job.model,
            job.data,
            dataclasses.replace(job.config, seed=int(seed)),
            out=path,
            provenance=job.provenance,
            bn_data=job.bn_data,
            overwrite=overwrite,
            progress=progress,
            task=job.task,
        )
        for seed, path in zip(seeds, seed_paths(out, seeds), strict=True)
    ]


class Inputs(NamedTuple):
    """What a config names, loaded: see `load_inputs`."""

    config: SurfaceConfig  # with its label filled in
    model: nn.Module
    data: dict[str, Any]  # DataTensors; with a task that brings its data, its batches
    bn_data: DataTensors | None
    provenance: dict[str, Any]
    task: Task | None = None


def load_inputs(config: SurfaceConfig, device: torch.device | None = None) -> Inputs:
    """Load the checkpoint and data `config` names (provenance recorded for `device`)."""
    if not config.ckpt:
        raise InputError("--ckpt is required: a checkpoint file or pretrained:NAME")
    loaded = _load(config.ckpt, config)
    spec = config.data
    task, task_data = load_task(config.task) if config.task else (None, None)
    if task_data is not None:
        data = dict(_by_split(task_data, config, task=True))
    else:
        data = {s: spec.load(s) for s in config.split}
    bn_data = None
    if config.bn == "recompute":
        bn_data = load_split(
            spec.dataset, "train", data_root=spec.data_root, download=spec.download
        )
        if config.bn_samples > len(bn_data):
            raise DataError(
                f"--bn-samples {config.bn_samples} exceeds the {len(bn_data)} training samples "
                f"of {spec.dataset}; use at most {len(bn_data)}"
            )
        bn_data = take_subset(bn_data, samples=config.bn_samples, subset="first", seed=0)
    info = {
        s: d.info if isinstance(d, DataTensors) else {"task": config.task} for s, d in data.items()
    }
    device = device if device is not None else resolve_device(config.device)
    prov = _provenance(config, device, info)
    prov["model"] = loaded.model_name
    if config.label is None:
        config = dataclasses.replace(config, label=_short_name(loaded.model_name))
    return Inputs(config, loaded.model, data, bn_data, prov, task)


def load_task(spec: str) -> tuple[Task, Any]:
    """The task a ``module:function`` names (``SurfaceConfig.task``, ``--task``) and its
    data (None when it brings none): the function is called without arguments and returns
    a dict or an object with ``loss_fn``, optional ``metrics_fn`` and ``data``."""
    try:
        factory = models.import_function(spec, f"task {spec!r}")
    except models.ModelError as e:
        raise InputError(str(e), arg="task") from e
    return Task.from_object(factory(), f"task {spec!r}")


def compute_surface(
    model: nn.Module,
    data: Mapping[str, DataTensors | EvalData | tuple[Tensor, Tensor]],
    config: SurfaceConfig,
    *,
    out: str | os.PathLike,
    directions: Mapping[str, Mapping[str, Tensor]] | None = None,
    provenance: Mapping[str, Any] | None = None,
    bn_data: DataTensors | EvalData | tuple[Tensor, Tensor] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    loss_fn: LossFn | None = None,
    metrics_fn: MetricsFn | None = None,
) -> Surface:
    """Compute (or finish) the surface of `model` on `data` and return it.

    Args:
        model: the trained network at theta* (never modified).
        data: split name -> data (`DataTensors`, `EvalData` or an ``(x, y)`` pair
            of ready, normalized tensors); one split's data alone for a config of one
            split. With `loss_fn`, also any batches: a list of batches (tensors, tuples,
            dicts, dataclasses: any nesting), a `DataLoader` or a map-style `Dataset`
            (read once; the same samples at every point).
        config: the settings; its ``split`` names the keys of `data` used.
        out: the surface file; an existing one with the same settings, model state
            (parameters and buffers) and data is resumed, any other is refused.
        directions: ``{"x": {...}, "y": {...}}`` to use instead of the config's
            (e.g. Hessian eigenvectors); ignored when resuming (the file's win).
        provenance: extra facts recorded with the file (checkpoint hashes, ...).
        bn_data: training samples for ``bn="recompute"``.
        overwrite: replace an existing file instead of resuming it.
        progress: show a progress bar.
        loss_fn: ``loss_fn(model, batch) -> Tensor (B,)``, the per-sample losses of a
            batch (a 0-dim mean is taken too: means only, no standard errors), instead of
            the built-in classification loss (``config.loss``). It sees the perturbed
            weights through `model` without knowing it.
        metrics_fn: ``metrics_fn(model, batch) -> {name: Tensor (B,)}``, stored as
            ``/{split}_{name}`` with standard errors ``/{split}_{name}_se``.

    Returns:
        The surface as written to `out`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; load a checkpoint "
            "with landscape.load_model(...).model, or use landscape.run_surface(config)"
        )
    if not isinstance(config, SurfaceConfig):
        raise TypeError(f"config must be a SurfaceConfig, got {type(config).__name__}")
    if metrics_fn is not None and loss_fn is None:
        raise InputError("metrics_fn needs a loss_fn: give loss_fn=... too", arg="metrics_fn")
    task = Task(loss_fn, metrics_fn) if loss_fn is not None else None
    if config.task:
        if task is not None:
            raise InputError(
                f"config.task {config.task!r} and loss_fn both give the loss; give one of them",
                arg="task",
            )
        task = load_task(config.task)[0]
    return _compute_one(
        model,
        data,
        config,
        out=out,
        directions=directions,
        provenance=provenance,
        bn_data=bn_data,
        overwrite=overwrite,
        progress=progress,
        task=task,
    )


def _compute_one(
    model: nn.Module,
    data: Any,
    config: SurfaceConfig,
    *,
    out: str | os.PathLike,
    directions: Mapping[str, Mapping[str, Tensor]] | None = None,
    provenance: Mapping[str, Any] | None = None,
    bn_data: Any = None,
    overwrite: bool = False,
    progress: bool = True,
    task: Task | None = None,
) -> Surface:
    """`compute_surface` in one process, its arguments checked and its task resolved."""
    data = _by_split(data, config, task=task is not None)
    if config.label is None and getattr(model, "model_name", None):
        config = dataclasses.replace(config, label=_short_name(model.model_name))
    device = resolve_device(config.device)
    if provenance is None:  # called from Python: the objects say what was evaluated
        config = _described_by(config, data)
        info = {s: d.info for s, d in data.items() if isinstance(d, DataTensors) and d.info}
        provenance = {
            **_provenance(config, device, info),
            "model": getattr(model, "model_name", None) or _class_name(model),
        }
    surface = _compute(
        distributed.Solo(device),
        model,
        data,
        config,
        Path(out),
        provenance=provenance,
        directions=directions,
        bn_data=bn_data,
        overwrite=overwrite,
        progress=progress,
        task=task,
    )
    assert surface is not None  # one process: it is rank 0
    return surface


def _compute(
    team: distributed.Solo | distributed.Team,
    model: nn.Module,
    data: Mapping[str, DataTensors | EvalData | tuple[Tensor, Tensor]],
    config: SurfaceConfig,
    out: Path,
    *,
    provenance: Mapping[str, Any],
    directions: Mapping[str, Mapping[str, Tensor]] | None = None,
    bn_data: DataTensors | EvalData | tuple[Tensor, Tensor] | None = None,
    overwrite: bool,
    progress: bool,
    task: Task | None = None,
) -> Surface | None:
    """The steps of a compute, the same in one process (`distributed.Solo`) and on each
    rank of a torchrun job (`distributed.Team`): every rank prepares and evaluates, rank
    0 alone opens the file (once) and writes it. Returns the surface on rank 0."""
    lead = team.rank == 0
    job = team.agree(
        lambda: prepare(model, data, config, device=team.device, bn_data=bn_data, task=task)
    )
    with contextlib.ExitStack() as stack:

        def open_file() -> tuple[SurfaceFile, dict[str, dict[str, Tensor]]]:
            prov = {**provenance, **job.fingerprints}
            handle, dirs = open_surface(
                out, config, job, provenance=prov, directions=directions, overwrite=overwrite
            )
            return stack.enter_context(handle), dirs

        opened = team.agree(open_file if lead else None)
        dirs = team.share_directions(opened[1] if opened is not None else None)
        per_sample = team.share(opened[0].per_sample if opened is not None else None)
        evaluator = team.agree(lambda: job.evaluator(config, dirs, per_sample=per_sample))
        if opened is None:  # a rank other than 0
            team.work(evaluator)
            return None
        handle = opened[0]
        if team.world_size > 1:
            log.info("%s: %d ranks share the pending points", out, team.world_size)
        fill_surface(
            handle,
            evaluator,
            progress=progress,
            helpers=team.helpers(evaluator),
            tolerance=config.tolerance,
            seed=config.seed,
        )
        return handle.read()


@dataclass(frozen=True)
class Prepared:
    """A job's model, data and theta* resident on its device, ready for an evaluator."""

    model: nn.Module  # a private eval-mode copy
    splits: dict[str, Any]  # EvalData; with a task, TaskData
    base: dict[str, Tensor]  # theta*: parameters and buffers by name
    bn_data: EvalData | None
    device: torch.device
    # What was evaluated, for the resume check: state_sha256 (theta*), data_sha256 (per
    # split) and bn_data_sha256 (see `fingerprints`).
    fingerprints: dict[str, Any] = dataclasses.field(default_factory=dict)
    task: Task | None = None
    task_shape: TaskShape | None = None  # what the task's functions return (`probe`)

    def sizes(self) -> dict[str, int]:
        """Samples per split."""
        return {s: d.n if isinstance(d, TaskData) else len(d.y) for s, d in self.splits.items()}

    def metrics(self) -> tuple[str, ...]:
        """The values stored per split, beside their standard errors."""
        if self.task_shape is None:
            return STORED_METRICS
        return ("loss", *self.task_shape.metrics)

    def keeps_per_sample(self) -> bool:
        """Whether per-sample losses exist (a task returning means has none)."""
        return self.task_shape is None or self.task_shape.per_sample

    def evaluator(
        self,
        config: SurfaceConfig,
        dirs: Mapping[str, Mapping[str, Tensor]],
        *,
        per_sample: bool = False,
    ) -> Evaluator | TaskEvaluator:
        """The evaluator `config` asks for, at theta* along `dirs` (see `open_surface`);
        `per_sample`: also every sample's loss (when the file has room for them)."""
        if self.task is not None:
            assert self.task_shape is not None
            return TaskEvaluator(
                self.model,
                self.task,
                self.task_shape,
                self.base,
                dirs["x"],
                dirs.get("y"),
                self.splits,
                strategy=_task_strategy(config, self.device),
                chunk_size=config.chunk_size or (16 if self.device.type == "cuda" else 8),
                precision=config.precision,
                per_sample=per_sample,
            )
        return make_evaluator(
            self.model,
            self.base,
            dirs["x"],
            dirs.get("y"),
            self.splits,
            strategy=config.strategy,
            batch_size=config.batch_size,
            chunk_size=config.chunk_size,
            loss=config.loss,
            precision=config.precision,
            bn=config.bn,
            bn_data=self.bn_data,
            per_sample=per_sample,
        )


def prepare(
    model: nn.Module,
    data: Mapping[str, DataTensors | EvalData | tuple[Tensor, Tensor]],
    config: SurfaceConfig,
    *,
    device: torch.device,
    bn_data: DataTensors | EvalData | tuple[Tensor, Tensor] | None = None,
    task: Task | None = None,
) -> Prepared:
    """Copy the model and the config's splits to `device`; check the labels fit the model.

    With a `task`, the splits' batches are fixed (`landscape.surface.task.materialize`)
    and the task is run once at theta* on the first batch to check what it returns."""
    _check_parameters(model)
    model = copy_eval(model).to(device)
    if task is not None:
        return _prepare_task(model, data, config, device=device, bn_data=bn_data, task=task)
    splits = _eval_splits({s: data[s] for s in config.split}, device)
    _check_labels(model, splits)
    bn = _eval_splits({"bn": bn_data}, device)["bn"] if bn_data is not None else None
    base = state_of(model, device)
    prints: dict[str, Any] = {
        "state_sha256": state_sha256(base),
        "data_sha256": {s: data_sha256(data[s]) for s in config.split},
    }
    if bn_data is not None:
        prints["bn_data_sha256"] = data_sha256(bn_data)
    return Prepared(model, splits, base, bn, device, prints)


def _check_parameters(model: nn.Module) -> None:
    """A model must have parameters to move, named as a file can store them."""
    names = [n for n, _ in model.named_parameters()]
    if not names:
        raise InputError(
            f"model {_class_name(model)} has no parameters: a surface moves the parameters; "
            "give a model with parameters (nn.Parameter attributes or submodules)",
            arg="model",
        )
    for name in [*names, *(n for n, _ in model.named_buffers())]:
        if "/" in name or name in ("", ".", ".."):
            raise InputError(
                f"model tensor name {name!r} cannot be stored in a surface file (HDF5 names "
                "hold no '/' and are not '', '.' or '..'); register it under a name without "
                "'/' (e.g. with '_')",
                arg="model",
            )


def _prepare_task(
    model: nn.Module,
    data: Mapping[str, Any],
    config: SurfaceConfig,
    *,
    device: torch.device,
    bn_data: Any,
    task: Task,
) -> Prepared:
    if bn_data is not None or config.bn == "recompute":
        raise InputError(
            "bn='recompute' re-estimates BatchNorm with the built-in (x, y) task only; with "
            "loss_fn use bn='eval'",
            arg="bn",
        )
    if config.strategy == "folded":
        raise InputError(
            "strategy='folded' folds BatchNorm of the built-in networks on (x, y) images; with "
            "loss_fn use strategy='pointwise' or 'vmap' (or 'auto')",
            arg="strategy",
        )
    splits = {
        s: materialize(data[s], split=s, device=device, batch_size=config.batch_size)
        for s in config.split
    }
    base = state_of(model, device)
    shape = probe(model, task, base, splits)
    prints: dict[str, Any] = {
        "state_sha256": state_sha256(base),
        "data_sha256": {s: tree_sha256(splits[s].batches) for s in config.split},
        "task": {**task.describe(), "metrics": list(shape.metrics)},
    }
    return Prepared(model, splits, base, None, device, prints, task, shape)


def _task_strategy(config: SurfaceConfig, device: torch.device) -> str:
    """A task's evaluation: ``vmap`` (which falls back to pointwise where it cannot batch
    the task) or ``pointwise``; ``auto`` is vmap on the GPU and pointwise on the CPU, where
    batching points gains little over one thread's matrix products (measured in
    benchmarks/bench_task.py)."""
    if config.strategy == "auto":
        return "vmap" if device.type == "cuda" else "pointwise"
    return config.strategy


def state_sha256(state: Mapping[str, Tensor]) -> str:
    """sha256 of a model's state (parameters and buffers, by name in sorted order): the
    weights actually evaluated, whatever object or file they came from."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(f"{name}:".encode())
        _hash_tensor(h, state[name])
    return h.hexdigest()


def data_sha256(data: DataTensors | EvalData | tuple[Tensor, Tensor]) -> str:
    """sha256 of the samples actually used: `DataTensors.fingerprint` (inputs, labels and
    normalization), else the inputs and labels as given."""
    if isinstance(data, DataTensors):
        return data.fingerprint()
    x, y = (data.x, data.y) if isinstance(data, EvalData) else data
    h = hashlib.sha256()
    for t in (x, y):
        _hash_tensor(h, t)
    return h.hexdigest()


def _hash_tensor(h: Any, t: Tensor) -> None:
    t = t.detach().to("cpu").contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)};".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)


def open_surface(
    out: Path,
    config: SurfaceConfig,
    job: Prepared,
    *,
    provenance: Mapping[str, Any],
    directions: Mapping[str, Mapping[str, Tensor]] | None = None,
    overwrite: bool = False,
) -> tuple[SurfaceFile, dict[str, dict[str, Tensor]]]:
    """The surface file, open for writing (created, or checked for resume), and its
    directions: the one open of `out` in a run (the writers' lock aside).

    The directions come back on the job's device in theta*'s dtypes: the file's
    when resuming, else `directions` or the config's.
    """
    base, device = job.base, job.device
    if out.exists() and not overwrite:
        handle = SurfaceFile(out)
        try:
            handle.check_resume(
                lambda existing: _differences(config, existing, provenance), provenance
            )
            stored = file_directions(handle)
            expected = ("x", "y") if config.is_2d else ("x",)
            if tuple(sorted(stored)) != expected:
                raise OutError(
                    f"{str(out)!r} stores directions {sorted(stored)}, the grid needs "
                    f"{list(expected)}"
                )
            moves = moving_parameters(config, job.model)
            for axis, d in stored.items():
                check_direction(
                    d, base, f"the stored direction {axis} of {str(out)!r}", moves=moves
                )
        except BaseException:
            handle.close()
            raise
        dirs = {a: {k: v.to(device) for k, v in d.items()} for a, d in stored.items()}
    else:
        needed = ("x", "y") if config.is_2d else ("x",)
        if directions and [a for a in needed if a not in directions]:
            missing = [a for a in needed if a not in directions][0]
            raise InputError(
                f"directions has no {missing!r} direction but the config's grid needs "
                f"{' and '.join(repr(a) for a in needed)}; give directions={{'x': ..., "
                f"'y': ...}} or a 1-D config (no y)",
                arg="directions",
            )
        dirs = (
            select_directions(config, job.model, {a: dict(d) for a, d in directions.items()})
            if directions
            else config_directions(config, job.model, device)
        )
        moves = moving_parameters(config, job.model)
        for axis, d in dirs.items():
            where = f"{config.directions!r}'s" if config.directions and not directions else ""
            check_direction(d, base, f"{where} direction {axis}".strip(), moves=moves)
        alpha = parse_axis(config.x, name="x").values()
        beta = parse_axis(config.y, name="y").values() if config.is_2d else None
        attrs = {"cosine_xy": cosine(dirs["x"], dirs["y"])} if "y" in dirs else {}
        n_points = len(alpha) * (len(beta) if beta is not None else 1)
        sizes = job.sizes()
        n_samples = sum(sizes[s] for s in config.split)
        per_sample = job.keeps_per_sample() and (
            config.per_sample == "on"
            or (config.per_sample == "auto" and 4 * n_points * n_samples <= PER_SAMPLE_AUTO_BYTES)
        )
        handle = SurfaceFile.create(
            out,
            alpha=alpha,
            beta=beta,
            splits=config.split,
            per_sample={s: sizes[s] for s in config.split} if per_sample else None,
            metrics=job.metrics(),
            directions=dirs,
            config=config.to_json(),
            provenance=provenance,
            extra_attrs=attrs,
            refinement=config.tolerance is not None,
        )
    try:
        dirs = {a: {k: v.to(device, base[k].dtype) for k, v in d.items()} for a, d in dirs.items()}
    except BaseException:
        handle.close()
        raise
    return handle, dirs


def fill_surface(
    handle: SurfaceFile,
    evaluator: Evaluator,
    *,
    progress: bool = True,
    helpers: Callable[[PendingPoints, WriteFn], AbstractContextManager[object]] | None = None,
    tolerance: float | None = None,
    seed: int = 0,
) -> None:
    """Evaluate every pending point of the file `handle` writes, streaming each chunk to it.

    `helpers` lets other processes share the work (see `landscape.surface.distributed`): it
    is entered with the queue of pending points and the thread-safe write function,
    and its exit waits until they are done. Nothing is written after this returns.
    `tolerance`: adaptive refinement (`landscape.surface.refine`; `seed` picks its checked
    points): the points it skips are stored as predictions, flagged interpolated. Without
    it, points a run with one left interpolated are evaluated.
    """
    path = handle.path
    names = evaluator.value_names()
    alpha, beta = handle.alpha, handle.beta
    lock = threading.RLock()  # the file's writes, and the adaptive plan made under them
    if tolerance is not None:
        handle.add_refinement()
    handle.set_tolerance(tolerance)
    pending = handle.pending(names) | handle.interpolated()
    total = int(np.prod(pending.shape))
    bar = progress_bar(
        progress,
        total=total,
        initial=total - int(pending.sum()),
        unit="pt",
        desc=path.name,
        dynamic_ncols=True,
    )
    points: PendingPoints
    if tolerance is None:
        points = PendingPoints(pending, alpha, beta)
    else:
        refinement = Refinement(pending.shape, grid_origin(alpha, beta), tolerance, seed=seed)
        losses = [n for n in names if n.endswith("_loss")]
        known = handle.values(losses)
        for v in known.values():
            v[pending] = np.nan
        walk = Walk(refinement, {n: v.reshape(-1) for n, v in known.items()}, ~pending.ravel())

        def skip(level: int, flat: np.ndarray) -> None:  # under `lock`
            index = np.unravel_index(flat, pending.shape)
            values = {
                n: refinement.interpolate(level, grid, flat)
                for n, grid in handle.values(names).items()
            }
            for split in (n.removesuffix("_loss") for n in losses):
                rows = handle.per_sample_grid(split)
                if rows is not None:
                    values[f"{PER_SAMPLE}/{split}_loss"] = refinement.interpolate(level, rows, flat)
            handle.write(index, values, interpolated=True)
            bar.update(len(flat))

        points = AdaptivePoints(walk, alpha, beta, skip, lock)
    log.info(
        "%s: %d of %d points to compute with the %s evaluator%s",
        path,
        int(pending.sum()),
        total,
        evaluator.name,
        f", adaptively within {tolerance:g}" if tolerance is not None else "",
    )
    open_ = True

    def write(flat: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        with lock:
            if open_:
                handle.write(np.unravel_index(flat, points.shape), values)
                points.record(flat, values)
                bar.update(len(flat))

    start = time.perf_counter()
    try:
        with bar, helpers(points, write) if helpers else contextlib.nullcontext():
            while (chunk := points.take(evaluator.chunk_size)) is not None:
                flat, coords = chunk
                write(flat, evaluator(coords))
    finally:
        with lock:
            open_ = False
        points.close()
    if isinstance(points, AdaptivePoints):
        log.info(
            "%s: %d points evaluated, %d interpolated within %g",
            path,
            points.evaluated,
            points.skipped,
            tolerance,
        )
    log.info("%s: done in %.1f s", path, time.perf_counter() - start)


def _load(spec: str, config: SurfaceConfig) -> models.LoadedCheckpoint:
    return load_model(spec, model=config.model, model_kwargs=config.model_kwargs)


def copy_eval(model: nn.Module) -> nn.Module:
    """A private eval-mode copy: the user's model is never modified."""
    return copy.deepcopy(model).eval()


def _short_name(model_name: str) -> str:
    """A figure label for a network: a builder ``module:function`` by its function."""
    return model_name.rsplit(":", 1)[-1]


def _by_split(data: Any, config: SurfaceConfig, *, task: bool = False) -> Mapping[str, Any]:
    """`data` as split -> data; one dataset alone serves a config of one split (with a
    task: anything but a mapping, e.g. a list of batches or a DataLoader)."""
    if (
        isinstance(data, DataTensors | EvalData)
        or (isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Tensor))
        or (task and not isinstance(data, Mapping))
    ):
        if len(config.split) != 1:
            raise InputError(
                f"data is one dataset but the config asks for splits {', '.join(config.split)}; "
                "give data={'train': ..., 'test': ...}"
            )
        return {config.split[0]: data}
    if not isinstance(data, Mapping):
        raise TypeError(
            "data must map split names to datasets, e.g. {'train': landscape.load_split(...)}, "
            f"got {type(data).__name__}"
        )
    if task and data and all(isinstance(v, Tensor) for v in data.values()):
        raise InputError(
            f"data is one batch (a dict of tensors: {', '.join(map(str, data))}); give a list "
            "of batches, e.g. data=[batch], or {'train': [batch, ...]}"
        )
    missing = [s for s in config.split if s not in data]
    if missing:
        raise InputError(
            f"data has no {missing[0]!r} split (it has {', '.join(map(repr, data)) or 'none'}); "
            f"give data={{{missing[0]!r}: ...}} or a config with split="
            f"{','.join(s for s in config.split if s in data) or 'train'!r}"
        )
    return data


def _eval_splits(
    data: Mapping[str, DataTensors | EvalData | tuple[Tensor, Tensor]], device: torch.device
) -> dict[str, EvalData]:
    out = {}
    for split, d in data.items():
        if isinstance(d, DataTensors):
            out[split] = EvalData(d.normalized(device), d.y.to(device))
        elif isinstance(d, EvalData):
            out[split] = EvalData(d.x.to(device), d.y.to(device))
        else:
            x, y = d
            out[split] = EvalData(x.to(device, torch.float32), y.to(device))
    return out


def _check_labels(model: nn.Module, splits: Mapping[str, EvalData]) -> None:
    for split, d in splits.items():
        check_sizes(d.x, d.y, what=f"data[{split!r}]")
        check_model_fits(model, d.x, d.y, what=f"the {split} split")


def _class_name(model: nn.Module) -> str:
    cls = type(model)
    return (
        cls.__qualname__ if cls.__module__ == "__main__" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _described_by(config: SurfaceConfig, data: Mapping[str, Any]) -> SurfaceConfig:
    """`config` with the data record the data objects carry (`DataTensors.info`: their
    dataset and choice of samples): a file records what was evaluated, not the defaults
    of a config that loaded nothing. Objects without that record leave it as it is."""
    infos = [d.info for d in data.values() if isinstance(d, DataTensors) and d.info]
    if not infos or not all(isinstance(i.get("dataset"), str) for i in infos):
        return config
    first = infos[0]
    samples = first.get("samples")
    spec = DataSpec(
        dataset=first["dataset"],
        data_root=config.data.data_root,
        samples=samples if isinstance(samples, int) and samples > 0 else None,
        subset=first.get("subset") or "first",
        data_seed=first.get("seed") if isinstance(first.get("seed"), int) else 0,
    )
    return dataclasses.replace(config, data=spec)


def _provenance(config: SurfaceConfig, device: torch.device, data_info: dict) -> dict[str, Any]:
    files = {
        key: resolve_checkpoint(spec) if key != "directions" else spec
        for key in ("ckpt", "ckpt2", "ckpt3", "directions")
        if (spec := getattr(config, key))
    }
    return {**provenance(device, files), "data": data_info}


def _differences(
    config: SurfaceConfig, existing: Surface, provenance: Mapping[str, Any] | None = None
) -> list[str]:
    """The resume policy for settings: what differs between `config` and the file's
    (runtime-only settings excepted), the grid included, and the task (its functions and
    metrics, by name). The inputs' content is compared by `SurfaceFile.check_resume`."""
    diffs = config.differences(existing.config)
    if provenance is not None:
        stored, now = existing.provenance.get("task"), provenance.get("task")
        if stored != now:
            diffs.append(f"task: file has {_task_text(stored)}, now {_task_text(now)}")
    for axis, name, text in (("alpha", "x", config.x), ("beta", "y", config.y)):
        stored = getattr(existing, axis)
        wanted = parse_axis(text, name=name).values() if text is not None else None
        if (stored is None) != (wanted is None) or (
            stored is not None and not np.array_equal(stored, wanted)
        ):
            diffs.append(f"/{axis} differs from the grid {name}={text} (coordinates edited?)")
    return diffs


def _task_text(task: Any) -> str:
    if not isinstance(task, Mapping):
        return "the built-in loss"
    metrics = ", ".join(task.get("metrics") or [])
    return f"loss_fn {task.get('loss_fn')}" + (f" with metrics {metrics}" if metrics else "")
