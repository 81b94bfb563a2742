"""A task is a function: any model, any loss, any batch.

    loss_fn(model, batch) -> Tensor (B,)                 per-sample losses (a 0-dim mean: no SEs)
    metrics_fn(model, batch) -> {name: Tensor (B,)}      optional, stored as /{split}_{name}

`batch` is whatever the data yields: a tensor, a tuple, a dict (``input_ids``,
``attention_mask``, ...), a dataclass, any nesting of them (a pytree of tensors). The data
of a split is fixed once (`materialize`): a list of batches, a `DataLoader` (iterated once,
after a memory estimate; an infinite or unseeded shuffling loader is refused), a map-style
`Dataset`, or a tuple of tensors / `DataTensors` cut into ``(x, y)`` batches. The same
samples are then evaluated at every grid point, and their content is the data's fingerprint
(`tree_sha256`: every tensor leaf) for the resume check.

The perturbed weights reach the user's function without it knowing: `TaskModule` wraps the
model in a module whose ``forward(batch)`` calls ``loss_fn(self.model, batch)``, and the
evaluator runs it with `torch.func.functional_call` on theta* + alpha*dx + beta*dy
(``pointwise``), or on K stacked points at once under `torch.func.vmap` (``vmap``, where the
model and the functions allow it; otherwise one logged line and pointwise).

What the functions return is checked (`check_value`): a wrong type, a Python float, a wrong
shape, or NaN at theta* is one `InputError` naming the function and what it returned; an
exception raised inside them is the user's bug and keeps its traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import logging
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from landscape.core.errors import InputError
from landscape.surface.evaluate import (
    EvalData,
    is_out_of_memory,
    perturbed_state,
    precision_context,
)

__all__ = [
    "MAX_DATA_BYTES",
    "Task",
    "TaskData",
    "TaskEvaluator",
    "TaskModule",
    "batch_size_of",
    "check_value",
    "materialize",
    "tree_bytes",
    "tree_map",
    "tree_sha256",
]

log = logging.getLogger(__name__)

# A DataLoader is materialized (held in memory, on the evaluation device) only when its
# estimated size is at most this; give a smaller subset (torch.utils.data.Subset) beyond.
MAX_DATA_BYTES = 8 * 2**30
DEFAULT_BATCH = 128  # samples per batch when data is cut into batches here
_METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

LossFn = Callable[[nn.Module, Any], Tensor]
MetricsFn = Callable[[nn.Module, Any], Mapping[str, Tensor]]


def _qualname(fn: Any) -> str | None:
    if fn is None:
        return None
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{name}"


@dataclass(frozen=True)
class Task:
    """What a surface measures: `loss_fn` and, optionally, `metrics_fn` (see the module).

    One task serves every analysis that takes one: ``compute_surface(..., loss_fn=,
    metrics_fn=)``, and ``task=`` of `hessian_spectrum`, `spectral_density`,
    `per_block_curvature`, the sharpness functions, `eigenvector_directions` and the
    curvature maps (a bare ``loss_fn`` is taken there as its task).

    Attributes:
        loss_fn: ``loss_fn(model, batch)`` -> per-sample losses (B,) (or their 0-dim mean).
        metrics_fn: ``metrics_fn(model, batch)`` -> ``{name: Tensor (B,)}``, optional.
    """

    loss_fn: LossFn
    metrics_fn: MetricsFn | None = None

    def __post_init__(self) -> None:
        for name in ("loss_fn", "metrics_fn"):
            fn = getattr(self, name)
            if fn is not None and not callable(fn):
                raise TypeError(
                    f"{name} must be a function (model, batch) -> Tensor, got "
                    f"{type(fn).__name__} {fn!r:.80}"
                )

    def describe(self) -> dict[str, Any]:
        """The functions by name, as a surface file records them (provenance ``task``)."""
        return {"loss_fn": _qualname(self.loss_fn), "metrics_fn": _qualname(self.metrics_fn)}

    @classmethod
    def from_object(cls, obj: Any, what: str) -> tuple[Task, Any]:
        """A task and its optional data from what a ``--task module:function`` returned: a
        dict or an object with ``loss_fn``, optional ``metrics_fn`` and ``data``."""
        get = obj.get if isinstance(obj, Mapping) else (lambda k, d=None: getattr(obj, k, d))
        loss_fn = get("loss_fn", None)
        if loss_fn is None or not callable(loss_fn):
            raise InputError(
                f"{what} returned {type(obj).__name__} without a callable loss_fn; return "
                "{'loss_fn': f, 'metrics_fn': g (optional), 'data': batches (optional)}",
                arg="task",
            )
        metrics_fn = get("metrics_fn", None)
        if metrics_fn is not None and not callable(metrics_fn):
            raise InputError(
                f"{what} returned a metrics_fn that is {type(metrics_fn).__name__}, not a function",
                arg="task",
            )
        return cls(loss_fn, metrics_fn), get("data", None)


class TaskModule(nn.Module):
    """The model and the task as one module: ``forward(batch)`` is ``(loss_fn(model, batch),
    metrics_fn(model, batch))``. Its parameters are the model's, named ``model.<name>``, so
    `functional_call` on it puts any weights into the user's functions unseen."""

    def __init__(self, model: nn.Module, task: Task) -> None:
        super().__init__()
        self.model = model
        self._task = task

    def forward(self, batch: Any) -> tuple[Any, Any]:
        loss = self._task.loss_fn(self.model, batch)
        metrics = self._task.metrics_fn(self.model, batch) if self._task.metrics_fn else {}
        return loss, metrics


# ---------------------------------------------------------------------------- batches


def tree_map(fn: Callable[[Tensor], Any], tree: Any) -> Any:
    """`tree` with every tensor leaf replaced by ``fn(leaf)``: tensors, mappings, lists,
    tuples (named ones too) and dataclasses, nested; other leaves are kept as they are."""
    if isinstance(tree, Tensor):
        return fn(tree)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        changes = {
            f.name: tree_map(fn, getattr(tree, f.name)) for f in dataclasses.fields(tree) if f.init
        }
        return dataclasses.replace(tree, **changes)
    if isinstance(tree, Mapping):
        items = {k: tree_map(fn, v) for k, v in tree.items()}
        try:
            return type(tree)(items)
        except Exception:  # noqa: BLE001 - a mapping type that cannot be rebuilt: a dict
            return items
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a namedtuple
        return type(tree)(*(tree_map(fn, v) for v in tree))
    if isinstance(tree, list | tuple):
        return type(tree)(tree_map(fn, v) for v in tree)
    return tree


def _leaves(tree: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) in a fixed order: the structure and every leaf, for hashing and sizes."""
    if isinstance(tree, Tensor):
        yield path, tree
    elif dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        yield path, f"<{type(tree).__qualname__}>"
        for f in dataclasses.fields(tree):
            yield from _leaves(getattr(tree, f.name), f"{path}.{f.name}")
    elif isinstance(tree, Mapping):  # a dict or any mapping (BatchEncoding): the same
        yield path, f"<mapping {len(tree)}>"
        for k, v in tree.items():
            yield from _leaves(v, f"{path}[{k!r}]")
    elif isinstance(tree, list | tuple):  # a DataLoader's [x, y] is a list's (x, y)
        yield path, f"<sequence {len(tree)}>"
        for i, v in enumerate(tree):
            yield from _leaves(v, f"{path}[{i}]")
    elif tree is None or isinstance(tree, bool | int | float | str | bytes):
        yield path, repr(tree)
    else:
        yield path, f"<{type(tree).__qualname__}>"


def tensor_leaves(tree: Any) -> list[Tensor]:
    return [leaf for _, leaf in _leaves(tree) if isinstance(leaf, Tensor)]


def tree_bytes(tree: Any) -> int:
    """Bytes held by the tensor leaves of `tree`."""
    return sum(t.element_size() * t.numel() for t in tensor_leaves(tree))


def tree_sha256(batches: Sequence[Any]) -> str:
    """sha256 of a sequence of batches: the structure, every tensor leaf (dtype, shape,
    bytes) and every plain leaf (its repr), in order. The data's fingerprint for resume."""
    h = hashlib.sha256()
    h.update(f"batches {len(batches)};".encode())
    for batch in batches:
        for path, leaf in _leaves(batch):
            h.update(path.encode())
            if isinstance(leaf, Tensor):
                t = leaf.detach().to("cpu").contiguous()
                h.update(f"{t.dtype}{tuple(t.shape)};".encode())
                if t.numel():
                    h.update(t.reshape(-1).view(torch.uint8).numpy().data)
            else:
                h.update(f"={leaf};".encode())
    return h.hexdigest()


def batch_size_of(batch: Any, where: str) -> int:
    """B of a batch: the first dimension of its first tensor leaf with one (in order)."""
    for t in tensor_leaves(batch):
        if t.dim() >= 1:
            return int(t.shape[0])
    raise InputError(
        f"{where} holds no tensor with a batch dimension (got {type(batch).__name__}); a batch "
        "is a tensor, or a tuple, dict or dataclass of tensors whose first dimension is B"
    )


@dataclass(frozen=True)
class TaskData:
    """One split's batches, fixed and resident on the evaluation device."""

    batches: list[Any]
    sizes: list[int]  # B of each batch

    @property
    def n(self) -> int:
        return sum(self.sizes)


def materialize(
    data: Any,
    *,
    split: str,
    device: torch.device,
    batch_size: int | None = None,
    max_bytes: int = MAX_DATA_BYTES,
) -> TaskData:
    """The batches of `data`, fixed once, on `device` (see the module for what is taken)."""
    from landscape.data import DataTensors  # the data package imports the engine's modules

    where = f"data for the {split} split"
    bs = batch_size or DEFAULT_BATCH
    if isinstance(data, DataTensors):
        data = (data.normalized(), data.y)
    elif isinstance(data, EvalData):
        data = (data.x, data.y)
    if isinstance(data, torch.utils.data.DataLoader):
        batches = _from_loader(data, where, max_bytes)
    elif isinstance(data, tuple) and data and all(isinstance(t, Tensor) for t in data):
        n = {int(t.shape[0]) if t.dim() else -1 for t in data}
        if len(n) != 1 or -1 in n:
            raise InputError(
                f"{where} is a tuple of tensors with first dimensions "
                f"{[tuple(t.shape)[:1] for t in data]}; a tuple of tensors is one dataset cut "
                "into batches along the first dimension (give a list to pass batches as they are)"
            )
        total = n.pop()
        batches = [tuple(t[s : s + bs] for t in data) for s in range(0, total, bs)]
    elif isinstance(data, torch.utils.data.IterableDataset):
        raise InputError(
            f"{where} is an IterableDataset, which may be endless and is read once only; give a "
            "map-style Dataset, a DataLoader over one, or a list of batches"
        )
    elif isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        loader = torch.utils.data.DataLoader(data, batch_size=bs, shuffle=False)
        batches = _from_loader(loader, where, max_bytes)
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        batches = list(data)
    else:
        raise InputError(
            f"{where} is {type(data).__name__}; give a list of batches (tensors, tuples, "
            "dicts of tensors), a DataLoader, or an (x, y) tuple of tensors"
            + (" (list(...) fixes an iterator or generator once)" if _is_iterator(data) else "")
        )
    if not batches:
        raise InputError(f"{where} has no batches; give at least one")
    sizes = [batch_size_of(b, f"batch {i} of the {split} split") for i, b in enumerate(batches)]
    on_device = [tree_map(lambda t: t.detach().to(device), b) for b in batches]
    return TaskData(on_device, sizes)


def _is_iterator(data: Any) -> bool:
    return hasattr(data, "__next__") or hasattr(data, "__iter__")


def _from_loader(loader: torch.utils.data.DataLoader, where: str, max_bytes: int) -> list[Any]:
    """Every batch of `loader`, once, after checking it is finite, fixed and small enough."""
    if isinstance(loader.dataset, torch.utils.data.IterableDataset):
        raise InputError(
            f"{where} is a DataLoader over an IterableDataset, which may be endless and need not "
            "give the same samples twice; use a map-style Dataset or a list of batches"
        )
    samplers = [loader.sampler, getattr(loader.batch_sampler, "sampler", None)]
    random_kinds = (
        torch.utils.data.RandomSampler,
        torch.utils.data.SubsetRandomSampler,
        torch.utils.data.WeightedRandomSampler,
    )
    for sampler in samplers:
        if isinstance(sampler, random_kinds) and getattr(sampler, "generator", None) is None:
            raise InputError(
                f"{where} is a shuffling DataLoader without a seeded generator, so a rerun would "
                "see other samples; use shuffle=False, or DataLoader(..., generator="
                "torch.Generator().manual_seed(0))"
            )
    try:
        n_batches = len(loader)
    except TypeError:
        raise InputError(
            f"{where} is a DataLoader without a length (it may be endless); give a map-style "
            "Dataset or a list of batches"
        ) from None
    batches: list[Any] = []
    for i, batch in enumerate(loader):
        if i == 0:
            estimate = tree_bytes(batch) * n_batches
            if estimate > max_bytes:
                raise InputError(
                    f"{where}: {n_batches} batches of about {tree_bytes(batch) / 2**20:.1f} MiB "
                    f"are about {estimate / 2**30:.1f} GiB, more than the "
                    f"{max_bytes / 2**30:.1f} GiB held in memory for a surface; evaluate a "
                    "subset (torch.utils.data.Subset) - the surface's mean needs only a few "
                    "thousand samples"
                )
        batches.append(batch)
    return batches


# ---------------------------------------------------------------------------- checks


def _returned(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"a Python {type(value).__name__} ({value!r}); return a tensor (no .item())"
    return f"{type(value).__name__} {value!r:.60}"


def check_value(fn: str, value: Any, n: int, where: str) -> Tensor:
    """`value` returned by `fn` for a batch of `n` samples, as a float64 tensor (n,) or ()."""
    expected = f"a tensor of per-sample values of shape ({n},) or a 0-dim mean"
    if not isinstance(value, Tensor):
        raise InputError(f"{fn} returned {_returned(value)} {where}; it must return {expected}")
    if value.is_complex() or not (value.is_floating_point() or value.dtype in _REAL):
        raise InputError(f"{fn} returned {_returned(value)} {where}; it must return {expected}")
    if tuple(value.shape) not in ((n,), ()):
        raise InputError(f"{fn} returned {_returned(value)} {where}; it must return {expected}")
    return value.detach().double()


_REAL = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_metrics(value: Any, where: str) -> dict[str, Any]:
    """The mapping `metrics_fn` returned, its names checked."""
    if not isinstance(value, Mapping):
        raise InputError(
            f"metrics_fn returned {_returned(value)} {where}; it must return a dict "
            "{name: tensor of per-sample values}"
        )
    for name in value:
        if not isinstance(name, str) or not _METRIC_NAME.match(name):
            raise InputError(
                f"metrics_fn returned a metric named {name!r} {where}; names are letters, digits "
                "and _ (starting with a letter), stored as /{split}_{name}"
            )
        if name == "loss" or name.endswith(("_loss", "_se")) or name == "se":
            raise InputError(
                f"metrics_fn returned a metric named {name!r} {where}; 'loss' and names ending "
                "in _loss or _se are the file's own (loss_fn gives the loss)"
            )
    return dict(value)


@dataclass(frozen=True)
class TaskShape:
    """What the functions return, learnt at theta* on the first batch (`probe`)."""

    per_sample: bool  # loss_fn returns (B,); False: a 0-dim mean per batch
    metrics: tuple[str, ...]  # metrics_fn's names, in its order


def probe(
    model: nn.Module, task: Task, base: Mapping[str, Tensor], splits: Mapping[str, TaskData]
) -> TaskShape:
    """Run the task once at theta* on the first batch of every split: check what it returns,
    and learn whether losses are per sample and the metrics' names (the same for all)."""
    shapes = {s: _probe(model, task, base, d, s) for s, d in splits.items()}
    first, shape = next(iter(shapes.items()))
    for split, other in shapes.items():
        if other != shape:
            raise InputError(
                f"the task returns {_shape_text(other)} on the {split} split but "
                f"{_shape_text(shape)} on the {first} split; return the same for every split"
            )
    if not shape.per_sample:
        warnings.warn(
            "loss_fn returns a 0-dim mean per batch: the surface stores batch-size-weighted "
            "means only, without standard errors or per-sample losses; return per-sample "
            "losses, shape (B,), for those",
            stacklevel=3,
        )
    return shape


def _shape_text(shape: TaskShape) -> str:
    kind = "per-sample losses" if shape.per_sample else "mean losses"
    return f"{kind} and metrics {list(shape.metrics)}"


def _probe(
    model: nn.Module, task: Task, base: Mapping[str, Tensor], data: TaskData, split: str
) -> TaskShape:
    module = TaskModule(model, task).eval()
    state = {f"model.{k}": v for k, v in base.items()}
    where = f"at theta* on batch 0 of the {split} split"
    with torch.inference_mode():
        loss, metrics = functional_call(module, state, (data.batches[0],))
    n = data.sizes[0]
    loss = check_value("loss_fn", loss, n, where)
    if torch.isnan(loss).any():
        raise InputError(
            f"loss_fn returned NaN {where} (the unperturbed model); check the loss and the batch"
        )
    metrics = check_metrics(metrics, where)
    per_sample = loss.dim() == 1
    for name, v in metrics.items():
        v = check_value(f"metrics_fn[{name!r}]", v, n, where)
        if (v.dim() == 1) != per_sample:
            raise InputError(
                f"metrics_fn[{name!r}] returned shape {tuple(v.shape)} {where} while loss_fn "
                f"returned {tuple(loss.shape)}; return per-sample values from both, or means"
            )
    return TaskShape(per_sample, tuple(metrics))


# ---------------------------------------------------------------------------- evaluation


def task_statistics(
    split: str, values: Mapping[str, Tensor], sizes: Tensor | None, *, per_sample: bool
) -> dict[str, np.ndarray]:
    """Stored values of K points from per-sample values (K, N) of each name (``loss``, the
    metrics): the mean and its standard error std(ddof 1)/sqrt(N) (NaN for N = 1). With
    `sizes` (nb,), the values are per-batch means (K, nb): their batch-size-weighted mean,
    no standard error. `per_sample` adds ``per_sample/{split}_loss`` (K, N) float32."""
    out: dict[str, Tensor] = {}
    for name, v in values.items():
        v = v.double()
        if sizes is not None:
            w = sizes.to(v.device, torch.float64)
            out[f"{split}_{name}"] = (v * w).sum(-1) / w.sum()
            out[f"{split}_{name}_se"] = torch.full(v.shape[:-1], math.nan, dtype=torch.float64)
            continue
        n = v.shape[-1]
        out[f"{split}_{name}"] = v.mean(-1)
        out[f"{split}_{name}_se"] = (
            v.std(-1, correction=1) / math.sqrt(n)
            if n > 1
            else torch.full(v.shape[:-1], math.nan, dtype=torch.float64)
        )
    result = {k: t.cpu().numpy() for k, t in out.items()}
    if per_sample and sizes is None:
        result[f"per_sample/{split}_loss"] = values["loss"].float().cpu().numpy()
    return result


class TaskEvaluator:
    """Evaluates chunks of grid points of a task: the engine's evaluator interface.

    ``pointwise``: one point at a time, `functional_call` on the `TaskModule`. ``vmap``:
    K points per call, their parameter sets stacked, under `torch.func.vmap`; if the first
    try fails (a function vmap cannot batch: ``.item()``, data-dependent Python control
    flow, in-place updates, random numbers), one line is logged and the evaluator goes on
    pointwise. Out of memory halves K and retries.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        shape: TaskShape,
        base: Mapping[str, Tensor],
        dx: Mapping[str, Tensor],
        dy: Mapping[str, Tensor] | None,
        splits: Mapping[str, TaskData],
        *,
        strategy: str = "pointwise",
        chunk_size: int = 4,
        precision: str = "fp32",
        per_sample: bool = False,
    ) -> None:
        self.module = TaskModule(copy.deepcopy(model).eval(), task).eval()
        self.shape = shape
        self.base = {f"model.{k}": v for k, v in base.items()}
        # Only tensors that move are stacked (vmap) or copied (pointwise): a parameter
        # selection leaves most of a large model where it is.
        moves = {k for d in (dx, dy or {}) for k, v in d.items() if bool(torch.count_nonzero(v))}
        self.dx = {f"model.{k}": v for k, v in dx.items() if k in moves}
        self.dy = {f"model.{k}": v for k, v in (dy or {}).items() if k in moves}
        self.splits = dict(splits)
        self.strategy = strategy
        self.name = f"task-{strategy}"
        self.chunk_size = max(1, int(chunk_size)) if strategy == "vmap" else 1
        self.precision = precision
        self.per_sample = per_sample and shape.per_sample
        self.device = next(iter(self.base.values())).device
        self._vmap_works: bool | None = None if strategy == "vmap" else False

    def value_names(self) -> list[str]:
        names = ("loss", *self.shape.metrics)
        return [f"{s}_{m}" for s in self.splits for m in names] + [
            f"{s}_{m}_se" for s in self.splits for m in names
        ]

    def value_widths(self) -> dict[str, int]:
        widths = dict.fromkeys(self.value_names(), 1)
        if self.per_sample:
            widths |= {f"per_sample/{s}_loss": d.n for s, d in self.splits.items()}
        return widths

    def __call__(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        with torch.inference_mode(), precision_context(self.precision, self.device):
            if self._vmap_works is not False:
                try:
                    out = self._vmap_chunk(coords)
                    self._vmap_works = True
                    return out
                except InputError:
                    raise
                except Exception as e:
                    if self._vmap_works or is_out_of_memory(e) or isinstance(e, MemoryError):
                        raise
                    log.warning(
                        "vmap cannot batch this task (%s: %s); evaluating point by point",
                        type(e).__name__,
                        " ".join(str(e).split())[:200],
                    )
                    self._vmap_works = False
                    self.chunk_size = 1
                    self.name = "task-pointwise"
            return self._pointwise_chunk(coords)

    # pointwise ----------------------------------------------------------------------

    def _pointwise_chunk(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        per_point = []
        for a, b in coords:
            state = perturbed_state(self.base, self.dx, self.dy or None, float(a), float(b))
            run = functools.partial(self._call, state)
            per_point.append(self._split_values(run, k=None))
        return {k: np.concatenate([v[k] for v in per_point]) for k in per_point[0]}

    def _call(self, state: Mapping[str, Tensor], batch: Any) -> Any:
        return functional_call(self.module, state, (batch,))

    # vmap ---------------------------------------------------------------------------

    def _vmap_chunk(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        while True:
            try:
                parts = [
                    self._vmap_points(coords[i : i + self.chunk_size])
                    for i in range(0, len(coords), self.chunk_size)
                ]
                return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.chunk_size == 1:
                    raise MemoryError(
                        "out of memory with one point per pass; use smaller batches"
                    ) from e
                self.chunk_size //= 2
                log.warning("out of memory: retrying with %d points per pass", self.chunk_size)

    def _vmap_points(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        k = len(coords)
        a = torch.as_tensor(coords[:, 0], dtype=torch.float32, device=self.device)
        b = torch.as_tensor(coords[:, 1], dtype=torch.float32, device=self.device)
        stacked = {}
        for name in [n for n in self.base if n in self.dx or n in self.dy]:
            t = self.base[name]
            shape = (k,) + (1,) * t.dim()
            v = t.unsqueeze(0).expand(k, *t.shape).clone()
            if name in self.dx:
                v += a.view(shape).to(t.dtype) * self.dx[name]
            if name in self.dy:
                v += b.view(shape).to(t.dtype) * self.dy[name]
            if name.endswith("running_var"):
                v.clamp_(min=0)
            stacked[name] = v
        fixed = {n: t for n, t in self.base.items() if n not in stacked}

        def one(moving: dict[str, Tensor], batch: Any) -> Any:
            return functional_call(self.module, {**fixed, **moving}, (batch,))

        batched = vmap(one, in_dims=(0, None), randomness="error")
        return self._split_values(lambda batch: batched(stacked, batch), k=k)

    # both ---------------------------------------------------------------------------

    def _split_values(self, run: Callable[[Any], Any], *, k: int | None) -> dict[str, np.ndarray]:
        """Values of every split at one point (`k` None) or K stacked points."""
        out: dict[str, np.ndarray] = {}
        names = ("loss", *self.shape.metrics)
        for split, data in self.splits.items():
            parts: dict[str, list[Tensor]] = {m: [] for m in names}
            for i, (batch, n) in enumerate(zip(data.batches, data.sizes, strict=True)):
                loss, metrics = run(batch)
                where = f"on batch {i} of the {split} split"
                got = {"loss": self._check("loss_fn", loss, n, k, where)}
                metrics = check_metrics(metrics, where)
                if sorted(metrics) != sorted(self.shape.metrics):
                    raise InputError(
                        f"metrics_fn returned {sorted(metrics)} {where}, but "
                        f"{sorted(self.shape.metrics)} on the first batch; return the same "
                        "names for every batch"
                    )
                for m, v in metrics.items():
                    got[m] = self._check(f"metrics_fn[{m!r}]", v, n, k, where)
                for m, v in got.items():
                    parts[m].append(v if self.shape.per_sample else v.unsqueeze(-1))
            values = {m: torch.cat(p, -1) for m, p in parts.items()}
            if k is None:
                values = {m: v.unsqueeze(0) for m, v in values.items()}
            sizes = None if self.shape.per_sample else torch.tensor(data.sizes)
            out |= task_statistics(split, values, sizes, per_sample=self.per_sample)
        return out

    def _check(self, fn: str, value: Any, n: int, k: int | None, where: str) -> Tensor:
        if k is None:
            v = check_value(fn, value, n, where)
        else:  # under vmap: (K, n) or (K,); the checks see the per-point shape
            v = value
            if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] == k:
                check_value(fn, v[0], n, where)
                v = v.detach().double()
            else:
                check_value(fn, v, n, where)
        if (v.shape[-1:] == (n,) if k is None else v.dim() == 2) != self.shape.per_sample:
            raise InputError(
                f"{fn} returned {_returned(value)} {where}, but "
                f"{'per-sample values' if self.shape.per_sample else 'a 0-dim mean'} on the "
                "first batch; return the same kind for every batch"
            )
        return v
