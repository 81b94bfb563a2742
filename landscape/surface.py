"""Computing a surface: settings, directions, the grid loop, and resume.

    f(alpha, beta) = L(theta* + alpha*dx + beta*dy)        (Li et al. 2018, Eq. 1)

`SurfaceConfig` is the one record of a job's settings: the command line fills
it, `compute_surface` takes it, and the surface file stores it as JSON. Points
are evaluated coarse-to-fine and streamed to the file chunk by chunk; running
again with the same output resumes, and a file made with other settings,
directions or checkpoint is refused with the difference named.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

import models

from .data import (
    DEFAULT_DATASET,
    DataError,
    DataTensors,
    check_model_fits,
    load_split,
    take_subset,
)
from .directions import (
    IGNORES,
    NORMS,
    check_direction,
    cosine,
    interpolation_direction,
    orthogonalize,
    random_direction,
)
from .errors import InputError
from .evaluate import (
    BN_MODES,
    LOSSES,
    PRECISIONS,
    STRATEGIES,
    EvalData,
    Evaluator,
    make_evaluator,
)
from .fileio import provenance
from .grid import coarse_to_fine, parse_axis
from .pretrained import resolve_checkpoint
from .store import (
    METRICS,
    StoreError,
    Surface,
    SurfaceWriter,
    create_surface_file,
    read_directions,
    read_surface,
    replacing,
    value_name,
)

__all__ = ["SurfaceConfig", "compute_surface", "run", "resolve_device", "state_of"]

log = logging.getLogger(__name__)

# Each value array of a surface file is then at most 80 MB; a 51x51 grid is 2,601 points.
MAX_POINTS = 10_000_000

# Settings that change how fast a surface is computed, not its values: a resumed
# run may use others (e.g. start on a laptop, finish on a GPU).
RUNTIME_FIELDS = ("device", "batch_size", "chunk_size", "strategy", "label", "progress")


@dataclass(frozen=True)
class SurfaceConfig:
    """Every setting of a surface job (see ``python -m landscape.compute --help``)."""

    ckpt: str | None = None
    model: str | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    ckpt2: str | None = None
    ckpt3: str | None = None
    directions: str | None = None
    dataset: str = DEFAULT_DATASET
    data_root: str | None = None
    split: tuple[str, ...] = ("train",)
    samples: int | None = None
    subset: str = "first"
    data_seed: int = 0
    x: str = "-1:1:51"
    y: str | None = None
    norm: str = "filter"
    ignore: str = "biasbn"
    seed: int = 0
    orthogonalize: bool = False
    bn: str = "eval"
    bn_samples: int = 2048
    loss: str = "ce"
    precision: str = "fp32"
    batch_size: int | None = None
    chunk_size: int | None = None
    strategy: str = "auto"
    device: str = "auto"
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", tuple(self.split))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        for name, value, allowed in (
            ("norm", self.norm, NORMS),
            ("ignore", self.ignore, IGNORES),
            ("bn", self.bn, BN_MODES),
            ("loss", self.loss, LOSSES),
            ("precision", self.precision, PRECISIONS),
            ("strategy", self.strategy, STRATEGIES),
        ):
            if value not in allowed:
                raise InputError(
                    f"{name} must be one of {', '.join(allowed)}; got {value!r}", arg=name
                )
        if not self.split or any(s not in ("train", "test") for s in self.split):
            raise InputError(
                f"split must be train, test or train,test; got {','.join(self.split)!r}",
                arg="split",
            )
        if len(set(self.split)) != len(self.split):
            raise InputError(f"split lists a split twice: {','.join(self.split)!r}", arg="split")
        nx = parse_axis(self.x, name="x").num
        ny = parse_axis(self.y, name="y").num if self.y is not None else 1
        if nx * ny > MAX_POINTS:
            raise InputError(
                f"a grid of {nx * ny:,} points (x times y) is beyond what one file holds and "
                f"one run finishes; use at most {MAX_POINTS:,} (e.g. -1:1:1001 on both axes)"
            )
        if self.ckpt3 and not self.ckpt2:
            raise InputError(
                "ckpt3 needs ckpt2 (a plane through three models)", arg=("ckpt3", "ckpt2")
            )
        if self.ckpt3 and self.y is None:
            raise InputError("ckpt3 makes a plane: give y MIN:MAX:NUM too", arg=("ckpt3", "y"))
        if self.ckpt2 and self.directions:
            raise InputError(
                "ckpt2 and directions both choose the plane; give one of them",
                arg=("ckpt2", "directions"),
            )
        for name in ("samples", "batch_size", "chunk_size", "bn_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name} must be a positive integer; got {value}", arg=name)

    @property
    def is_2d(self) -> bool:
        return self.y is not None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        return d

    def differences(self, stored: Mapping[str, Any]) -> list[str]:
        """Settings that differ from a stored config, runtime-only settings excepted."""
        mine = self.to_json()
        return sorted(
            f"{k}: file has {stored.get(k)!r}, now {mine[k]!r}"
            for k in mine
            if k not in RUNTIME_FIELDS and stored.get(k) != mine[k]
        )


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when present) | ``cpu`` | ``cuda`` | ``cuda:N``, checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N; got {name!r}") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: no CUDA device here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s); use cuda:0.."
            )
    elif device.type != "cpu":
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N; got {name!r}")
    return device


def state_of(model: nn.Module, device: torch.device | None = None) -> dict[str, Tensor]:
    """Parameters and buffers of `model` by name, detached copies (on `device`)."""
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {k: v.detach().to(device, copy=True) for k, v in state.items()}


def _load(spec: str, config: SurfaceConfig) -> models.LoadedCheckpoint:
    # NaN weights (a diverged run) are refused by load_checkpoint, as in every command.
    return models.load_checkpoint(
        resolve_checkpoint(spec), model_name=config.model, model_kwargs=config.model_kwargs or None
    )


def _directions(
    config: SurfaceConfig, model: nn.Module, device: torch.device
) -> dict[str, dict[str, Tensor]]:
    """The plotting directions the config asks for, by axis ("x", "y")."""
    params = {k: v.detach().to(device) for k, v in model.named_parameters()}
    if config.ckpt2:
        state_a = state_of(model, device)
        out = {
            "x": interpolation_direction(
                state_a, state_of(_load(config.ckpt2, config).model, device)
            )
        }
        if config.ckpt3:
            out["y"] = interpolation_direction(
                state_a, state_of(_load(config.ckpt3, config).model, device)
            )
        return out
    if config.directions:
        stored = read_directions(config.directions)
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
    if config.orthogonalize and "y" in out:
        out["y"] = orthogonalize(out["y"], out["x"])
    return out


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
        check_model_fits(model, d.x, d.y, what=f"the {split} split")


def copy_eval(model: nn.Module) -> nn.Module:
    """A private eval-mode copy: the user's model is never modified."""
    return copy.deepcopy(model).eval()


def _provenance(config: SurfaceConfig, device: torch.device, data_info: dict) -> dict[str, Any]:
    files = {
        key: resolve_checkpoint(spec) if key != "directions" else spec
        for key in ("ckpt", "ckpt2", "ckpt3", "directions")
        if (spec := getattr(config, key))
    }
    return {**provenance(device, files), "data": data_info}


def _check_resume(path: Path, config: SurfaceConfig, provenance: Mapping[str, Any]) -> None:
    try:
        existing = read_surface(path)
    except StoreError as e:  # never overwritten unasked: it may be someone's result
        raise StoreError(f"--out: {e}; use another --out, or --overwrite to replace it") from e
    diffs = config.differences(existing.config)
    for axis, name, text in (("alpha", "x", config.x), ("beta", "y", config.y)):
        stored = getattr(existing, axis)
        wanted = parse_axis(text, name=name).values() if text is not None else None
        if (stored is None) != (wanted is None) or (
            stored is not None and not np.array_equal(stored, wanted)
        ):
            diffs.append(f"/{axis} differs from the grid {name}={text} (coordinates edited?)")
    for key in ("ckpt_sha256", "ckpt2_sha256", "ckpt3_sha256", "directions_sha256"):
        if existing.provenance.get(key) != provenance.get(key):
            diffs.append(f"{key.split('_')[0]} content differs from the one the file was made with")
    stored, now = existing.provenance.get("data_sha256"), provenance.get("data_sha256")
    if isinstance(stored, dict) and isinstance(now, dict):  # files before 0.2 have none
        diffs += [
            f"the {s} samples' content differs from those the file was computed on "
            "(same dataset name and settings, other images or labels)"
            for s in sorted(now)
            if s in stored and stored[s] != now[s]
        ]
    if diffs:
        raise StoreError(
            f"{str(path)!r} was computed with other settings ({diffs[0]}"
            f"{f'; +{len(diffs) - 1} more' if len(diffs) > 1 else ''}); "
            "use another --out, or --overwrite to replace it"
        )


@dataclass(frozen=True)
class Prepared:
    """A job's model, data and theta* resident on its device, ready for an evaluator."""

    model: nn.Module  # a private eval-mode copy
    splits: dict[str, EvalData]
    base: dict[str, Tensor]  # theta*: parameters and buffers by name
    bn_data: EvalData | None
    device: torch.device

    def evaluator(
        self, config: SurfaceConfig, dirs: Mapping[str, Mapping[str, Tensor]]
    ) -> Evaluator:
        """The evaluator `config` asks for, at theta* along `dirs` (see `open_surface`)."""
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
        )


def prepare(
    model: nn.Module,
    data: Mapping[str, DataTensors | EvalData | tuple[Tensor, Tensor]],
    config: SurfaceConfig,
    *,
    device: torch.device,
    bn_data: DataTensors | EvalData | tuple[Tensor, Tensor] | None = None,
) -> Prepared:
    """Copy the model and the config's splits to `device`; check the labels fit the model."""
    model = copy_eval(model).to(device)
    splits = _eval_splits({s: data[s] for s in config.split}, device)
    _check_labels(model, splits)
    bn = _eval_splits({"bn": bn_data}, device)["bn"] if bn_data is not None else None
    return Prepared(model, splits, state_of(model, device), bn, device)


def open_surface(
    out: Path,
    config: SurfaceConfig,
    job: Prepared,
    *,
    provenance: Mapping[str, Any],
    directions: Mapping[str, Mapping[str, Tensor]] | None = None,
    overwrite: bool = False,
) -> dict[str, dict[str, Tensor]]:
    """Create the surface file, or check an existing one can be resumed; its directions.

    The directions come back on the job's device in theta*'s dtypes: the file's
    when resuming, else `directions` or the config's.
    """
    base, device = job.base, job.device
    if out.exists() and not overwrite:
        _check_resume(out, config, provenance)
        stored = read_directions(out)
        expected = ("x", "y") if config.is_2d else ("x",)
        if tuple(sorted(stored)) != expected:
            raise StoreError(
                f"{str(out)!r} stores directions {sorted(stored)}, the grid needs {list(expected)}"
                "; use another --out, or --overwrite to replace it"
            )
        for axis, d in stored.items():
            check_direction(d, base, f"the stored direction {axis} of {str(out)!r}")
        dirs = {a: {k: v.to(device) for k, v in d.items()} for a, d in stored.items()}
    else:
        dirs = (
            {a: dict(d) for a, d in directions.items()}
            if directions
            else _directions(config, job.model, device)
        )
        for axis, d in dirs.items():
            check_direction(d, base, f"direction {axis}")
        alpha = parse_axis(config.x, name="x").values()
        beta = parse_axis(config.y, name="y").values() if config.is_2d else None
        attrs = {"cosine_xy": cosine(dirs["x"], dirs["y"])} if "y" in dirs else {}
        with replacing(out):
            create_surface_file(
                out,
                alpha=alpha,
                beta=beta,
                value_names=[value_name(s, m) for s in config.split for m in METRICS],
                directions=dirs,
                config=config.to_json(),
                provenance=provenance,
                extra_attrs=attrs,
            )
    return {a: {k: v.to(device, base[k].dtype) for k, v in d.items()} for a, d in dirs.items()}


class PendingPoints:
    """The grid points still to compute, coarse-to-fine, handed out in chunks (thread-safe).

    Args:
        pending: mask of the points to compute, the grid's shape.
        alpha, beta: the grid's coordinates (beta None for a 1-D surface).
    """

    def __init__(self, pending: np.ndarray, alpha: np.ndarray, beta: np.ndarray | None) -> None:
        self.shape = pending.shape
        self.alpha, self.beta = alpha, beta
        self._order = np.array(
            [i for i in coarse_to_fine(pending.shape) if pending.flat[i]], dtype=np.int64
        )
        self._next = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Points not handed out yet."""
        return len(self._order) - self._next

    def take(self, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to `k` next points: flat indices (K,) and coordinates (K, 2); None at the end."""
        with self._lock:
            flat = self._order[self._next : self._next + k]
            self._next += len(flat)
        return (flat, self.coords(flat)) if len(flat) else None

    def coords(self, flat: np.ndarray) -> np.ndarray:
        """(alpha, beta) of flat grid indices: (K, 2), beta 0 on a 1-D surface."""
        index = np.unravel_index(flat, self.shape)
        beta = self.beta[index[1]] if self.beta is not None else np.zeros(len(flat))
        return np.stack([self.alpha[index[0]], beta], axis=1)  # (K, 2)

    def close(self) -> None:
        """Hand out nothing more (a run that stops early)."""
        with self._lock:
            self._next = len(self._order)


# Writes computed values: flat grid indices (K,) and name -> (K,) values.
WriteFn = Callable[[np.ndarray, Mapping[str, np.ndarray]], None]


def fill_surface(
    writer: SurfaceWriter,
    evaluator: Evaluator,
    alpha: np.ndarray,
    beta: np.ndarray | None,
    *,
    progress: bool = True,
    helpers: Callable[[PendingPoints, WriteFn], AbstractContextManager[object]] | None = None,
) -> None:
    """Evaluate every pending point of `writer`'s file, streaming each chunk to it.

    `helpers` lets other processes share the work (see `landscape.distributed`): it
    is entered with the queue of pending points and the thread-safe write function,
    and its exit waits until they are done. Nothing is written after this returns.
    """
    path = writer.path
    points = PendingPoints(writer.pending(evaluator.value_names()), alpha, beta)
    total = int(np.prod(points.shape))
    log.info(
        "%s: %d of %d points to compute with the %s evaluator",
        path,
        len(points),
        total,
        evaluator.name,
    )
    bar = tqdm(
        total=total,
        initial=total - len(points),
        unit="pt",
        desc=path.name,
        disable=not progress,
        dynamic_ncols=True,
    )
    lock = threading.Lock()
    open_ = True

    def write(flat: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        with lock:
            if open_:
                writer.write(np.unravel_index(flat, points.shape), values)
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
    log.info("%s: done in %.1f s", path, time.perf_counter() - start)


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
) -> Surface:
    """Compute (or finish) the surface of `model` on `data` and return it.

    Args:
        model: the trained network at theta* (never modified).
        data: split name -> data (`DataTensors`, `EvalData` or an ``(x, y)`` pair
            of ready, normalized tensors).
        config: the settings; its ``split`` names the keys of `data` used.
        out: the surface file; an existing one with the same settings is resumed.
        directions: ``{"x": {...}, "y": {...}}`` to use instead of the config's
            (e.g. Hessian eigenvectors); ignored when resuming (the file's win).
        provenance: extra facts recorded with the file (checkpoint hashes, ...).
        bn_data: training samples for ``bn="recompute"``.
        overwrite: replace an existing file instead of resuming it.
        progress: show a progress bar.
    """
    out = Path(out)
    device = resolve_device(config.device)
    job = prepare(model, data, config, device=device, bn_data=bn_data)
    prov = dict(provenance) if provenance is not None else _provenance(config, device, {})
    if "data_sha256" not in prov and all(isinstance(data[s], DataTensors) for s in config.split):
        prov["data_sha256"] = {s: data[s].fingerprint() for s in config.split}
    dirs = open_surface(
        out, config, job, provenance=prov, directions=directions, overwrite=overwrite
    )
    evaluator = job.evaluator(config, dirs)
    surface = read_surface(out)
    with SurfaceWriter(out) as writer:
        fill_surface(writer, evaluator, surface.alpha, surface.beta, progress=progress)
    return read_surface(out)


class Inputs(NamedTuple):
    """What a config names, loaded: see `load_inputs`."""

    config: SurfaceConfig  # with its label filled in
    model: nn.Module
    data: dict[str, DataTensors]
    bn_data: DataTensors | None
    provenance: dict[str, Any]


def load_inputs(config: SurfaceConfig, device: torch.device | None = None) -> Inputs:
    """Load the checkpoint and data `config` names (provenance recorded for `device`)."""
    if not config.ckpt:
        raise InputError("--ckpt is required: a checkpoint file or pretrained:NAME")
    loaded = _load(config.ckpt, config)
    data = {
        s: load_split(
            config.dataset,
            s,
            data_root=config.data_root,
            samples=config.samples,
            subset=config.subset,
            seed=config.data_seed,
        )
        for s in config.split
    }
    bn_data = None
    if config.bn == "recompute":
        bn_data = load_split(config.dataset, "train", data_root=config.data_root)
        if config.bn_samples > len(bn_data):
            raise DataError(
                f"--bn-samples {config.bn_samples} exceeds the {len(bn_data)} training samples "
                f"of {config.dataset}; use at most {len(bn_data)}"
            )
        bn_data = take_subset(bn_data, samples=config.bn_samples, subset="first", seed=0)
    info = {s: d.info for s, d in data.items()}
    device = device if device is not None else resolve_device(config.device)
    prov = _provenance(config, device, info)
    # Names and settings can stay the same while the images change (an imagefolder
    # refilled): resume compares the content too.
    prov["data_sha256"] = {s: d.fingerprint() for s, d in data.items()}
    prov["model"] = loaded.model_name
    if config.label is None:
        config = dataclasses.replace(config, label=loaded.model_name)
    return Inputs(config, loaded.model, data, bn_data, prov)


def run(
    config: SurfaceConfig, out: str | os.PathLike, *, overwrite: bool = False, progress: bool = True
) -> Surface:
    """Load the checkpoint and data the config names, then `compute_surface`."""
    job = load_inputs(config)
    return compute_surface(
        job.model,
        job.data,
        job.config,
        out=out,
        provenance=job.provenance,
        bn_data=job.bn_data,
        overwrite=overwrite,
        progress=progress,
    )
