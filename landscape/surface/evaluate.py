"""Evaluating the loss at grid points: theta(alpha, beta) = theta* + alpha*dx + beta*dy.

The engine calls an evaluator with a chunk of K coordinates and gets back, for
every split, the exact dataset-mean loss and the accuracy at each point. Three
strategies share one interface and give the same numbers:

* ``pointwise``: one point at a time through `torch.func.functional_call`; the
  reference, and the only one that re-estimates BatchNorm statistics (``bn=recompute``).
* ``folded``: the CPU path. Eval-mode BatchNorm is folded into the preceding
  convolution per point (w' = w*s, b' = beta - mu*s, s = gamma/sqrt(var+eps)),
  which removes a full pass over every activation per BN layer.
* ``vmap``: the GPU path. K perturbed parameter sets are stacked and the network
  runs over all of them at once (`torch.func.vmap` over `functional_call`); K and
  the sample batch shrink automatically on out-of-memory and retry.

The user's model is never modified: evaluators work on a private copy.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.nn.utils.fusion import fuse_conv_bn_weights

from landscape.core.errors import InputError
from landscape.core.losses import LOSSES, per_sample_loss

__all__ = [
    "LOSSES",
    "EVAL_PRECISIONS",
    "STRATEGIES",
    "BN_MODES",
    "EvalData",
    "Evaluator",
    "make_evaluator",
    "perturbed_state",
    "evaluate_state",
    "point_statistics",
    "sample_losses",
    "is_out_of_memory",
]

log = logging.getLogger(__name__)

EVAL_PRECISIONS = ("fp32", "tf32", "bf16")
STRATEGIES = ("auto", "pointwise", "folded", "vmap")
BN_MODES = ("eval", "recompute")


@dataclass(frozen=True)
class EvalData:
    """One split, resident on the evaluation device: normalized inputs and labels."""

    x: Tensor  # (N, C, H, W) float
    y: Tensor  # (N,) int64


def perturbed_state(
    base: Mapping[str, Tensor],
    dx: Mapping[str, Tensor],
    dy: Mapping[str, Tensor] | None,
    alpha: float,
    beta: float = 0.0,
) -> dict[str, Tensor]:
    """theta* + alpha*dx + beta*dy over every tensor of `base` (untouched where no direction)."""
    out = {}
    for name, t in base.items():
        if name in dx or (dy is not None and name in dy):
            v = t.clone()
            if name in dx:
                v.add_(dx[name], alpha=alpha)
            if dy is not None and name in dy:
                v.add_(dy[name], alpha=beta)
            if name.endswith("running_var"):
                v.clamp_(min=0)  # extrapolated interpolation must not make a variance negative
            out[name] = v
        else:
            out[name] = t
    return out


def _sample_losses(logits: Tensor, y: Tensor, loss: str) -> Tensor:
    """Per-sample losses in float64. logits: (..., B, C); returns (..., B)."""
    return per_sample_loss(logits.float(), y, loss).double()


def point_statistics(
    split: str, losses: Tensor, correct: Tensor, *, per_sample: bool = False
) -> dict[str, np.ndarray]:
    """The stored values of K points from their per-sample losses and hits, (K, N) each.

    The mean loss and accuracy over the N samples, and their standard errors: the sample
    standard deviation (ddof 1) over sqrt(N), i.e. ``sqrt(p (1 - p) / (N - 1))`` for the
    accuracy; NaN for N = 1. With `per_sample`, the losses themselves as
    ``per_sample/{split}_loss`` (K, N) float32.
    """
    n = losses.shape[-1]
    losses, hits = losses.double(), correct.double()
    mean, acc = losses.mean(-1), hits.mean(-1)
    if n > 1:
        loss_se = losses.std(-1, correction=1) / math.sqrt(n)
        acc_se = (acc * (1 - acc) / (n - 1)).clamp(min=0).sqrt()
    else:
        loss_se = acc_se = torch.full_like(mean, math.nan)
    out = {
        f"{split}_loss": mean,
        f"{split}_accuracy": acc,
        f"{split}_loss_se": loss_se,
        f"{split}_accuracy_se": acc_se,
    }
    out = {k: v.cpu().numpy() for k, v in out.items()}
    if per_sample:
        out[f"per_sample/{split}_loss"] = losses.float().cpu().numpy()
    return out


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def sample_losses(
    forward: Callable[[Tensor], Tensor], data: EvalData, *, batch_size: int, loss: str = "ce"
) -> tuple[Tensor, Tensor]:
    """Per-sample losses (N,) float64 and hits (N,) bool of `forward` over `data`."""
    losses, hits = [], []
    for s in _batches(len(data.y), batch_size):
        logits = forward(data.x[s])  # (B, C)
        losses.append(_sample_losses(logits, data.y[s], loss))
        hits.append(logits.argmax(-1) == data.y[s])
    return torch.cat(losses), torch.cat(hits)


def evaluate_state(
    forward: Callable[[Tensor], Tensor], data: EvalData, *, batch_size: int, loss: str = "ce"
) -> tuple[float, float]:
    """(mean loss, accuracy) of `forward` over `data`; the mean is exact (sample-weighted)."""
    losses, hits = sample_losses(forward, data, batch_size=batch_size, loss=loss)
    return float(losses.mean()), float(hits.double().mean())


def _to_channels_last(t: Tensor) -> Tensor:
    return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
    )


@contextmanager
def precision_context(precision: str, device: torch.device) -> Iterator[None]:
    """fp32 (exact), tf32 (CUDA TensorFloat-32 matmuls/convs) or bf16 (autocast)."""
    if precision not in EVAL_PRECISIONS:
        raise InputError(
            f"precision must be one of {EVAL_PRECISIONS}, got {precision!r}", arg="precision"
        )
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    elif precision == "tf32" and device.type == "cuda":
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            with torch.backends.cudnn.flags(enabled=True, allow_tf32=True):
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old
    else:
        # fp32 on CUDA: make sure TF32 is off even if the user enabled it globally.
        if device.type == "cuda":
            old = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            try:
                with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                    yield
            finally:
                torch.backends.cuda.matmul.allow_tf32 = old
        else:
            yield


class Evaluator:
    """Evaluates chunks of grid points. Subclasses define `_evaluate_chunk`.

    Args:
        model: the network (copied; never modified).
        base: theta* as a full state (parameters and buffers) on the device.
        dx, dy: directions (dy None for 1-D), on the device.
        splits: split name -> EvalData on the device.
        batch_size: samples per forward pass.
        loss: ``ce`` or ``mse``.
        precision: one of `EVAL_PRECISIONS`.
        per_sample: also return every sample's loss (``per_sample/{split}_loss``).
    """

    name = "base"

    def __init__(
        self,
        model: nn.Module,
        base: Mapping[str, Tensor],
        dx: Mapping[str, Tensor],
        dy: Mapping[str, Tensor] | None,
        splits: Mapping[str, EvalData],
        *,
        batch_size: int,
        loss: str = "ce",
        precision: str = "fp32",
        channels_last: bool = False,
        per_sample: bool = False,
    ) -> None:
        if loss not in LOSSES:
            raise InputError(f"loss must be one of {LOSSES}, got {loss!r}", arg="loss")
        self.model = copy.deepcopy(model).eval()
        self.base, self.dx, self.dy = dict(base), dict(dx), (dict(dy) if dy is not None else None)
        self.channels_last = channels_last
        # NHWC inputs make oneDNN pick its fast convolution kernels on CPU (measured
        # in benchmarks/bench_surface.py); the output of every conv follows the input.
        self.splits = {
            k: EvalData(_to_channels_last(d.x) if channels_last else d.x, d.y)
            for k, d in splits.items()
        }
        self.batch_size = int(batch_size)
        self.loss = loss
        self.precision = precision
        self.per_sample = per_sample
        self.device = next(iter(self.base.values())).device
        self.chunk_size = 1

    def value_names(self) -> list[str]:
        """The grid arrays each point fills: loss and accuracy, and their standard errors."""
        return [
            f"{s}_{m}" for s in self.splits for m in ("loss", "accuracy", "loss_se", "accuracy_se")
        ]

    def value_widths(self) -> dict[str, int]:
        """Numbers per point of every value returned: 1, or N for per-sample losses."""
        widths = dict.fromkeys(self.value_names(), 1)
        if self.per_sample:
            widths |= {f"per_sample/{s}_loss": len(d.y) for s, d in self.splits.items()}
        return widths

    def __call__(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        """Values at each of the K points ``coords`` (K, 2): name -> (K,) float64."""
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        with torch.inference_mode(), precision_context(self.precision, self.device):
            return self._evaluate_chunk(coords)

    def _evaluate_chunk(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        per_point = []
        for a, b in coords:
            forward = self._point_forward(float(a), float(b))
            values = {}
            for split, data in self.splits.items():
                losses, hits = sample_losses(
                    forward, data, batch_size=self.batch_size, loss=self.loss
                )
                values |= point_statistics(
                    split, losses[None], hits[None], per_sample=self.per_sample
                )
            per_point.append(values)
        return {k: np.concatenate([v[k] for v in per_point]) for k in per_point[0]}

    def _point_forward(self, alpha: float, beta: float) -> Callable[[Tensor], Tensor]:
        raise NotImplementedError


class PointwiseEvaluator(Evaluator):
    """The reference: `functional_call` at each point, BN in eval mode or re-estimated."""

    name = "pointwise"

    def __init__(self, *args, bn: str = "eval", bn_data: EvalData | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if bn not in BN_MODES:
            raise InputError(f"bn must be one of {BN_MODES}, got {bn!r}", arg="bn")
        if bn == "recompute" and bn_data is None:
            raise InputError("bn='recompute' needs bn_data (training samples)")
        self.bn, self.bn_data = bn, bn_data
        if bn == "recompute":
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.momentum = None  # cumulative average over the re-estimation batches

    def _point_forward(self, alpha: float, beta: float) -> Callable[[Tensor], Tensor]:
        state = perturbed_state(self.base, self.dx, self.dy, alpha, beta)
        if self.bn == "recompute":
            state = self._recompute_bn(state)
        return lambda x: functional_call(self.model, state, (x,))

    def _recompute_bn(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Re-estimate running statistics at this point from the fixed training batches."""
        state = dict(state)
        for name, t in state.items():
            if name.endswith("running_mean"):
                state[name] = torch.zeros_like(t)
            elif name.endswith("running_var"):
                state[name] = torch.ones_like(t)
            elif name.endswith("num_batches_tracked"):
                state[name] = torch.zeros_like(t)
        self.model.train()
        try:
            for s in _batches(len(self.bn_data.y), self.batch_size):
                functional_call(self.model, state, (self.bn_data.x[s],))
        finally:
            self.model.eval()
        return state


def _fold_batchnorm(model: nn.Module) -> tuple[nn.Module, dict[str, tuple[str, str]]] | None:
    """Trace `model` and remove every BatchNorm2d that directly follows a Conv2d.

    Returns the traced module (convs now with bias) and ``conv -> (conv, bn)`` names,
    or None when the model cannot be traced.
    """
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - any tracing failure means "use the reference path"
        log.info("BN folding unavailable (%s: %s); using pointwise evaluation", type(e).__name__, e)
        return None
    modules = dict(gm.named_modules())
    pairs: dict[str, tuple[str, str]] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if (
            isinstance(prev, torch.fx.Node)
            and prev.op == "call_module"
            and isinstance(modules[prev.target], nn.Conv2d)
            and len(prev.users) == 1
        ):
            pairs[prev.target] = (prev.target, node.target)
            node.replace_all_uses_with(prev)
            gm.graph.erase_node(node)
    for conv_name in pairs:
        conv = modules[conv_name]
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels, device=conv.weight.device))
    gm.graph.lint()
    gm.recompile()
    return gm, pairs


class FoldedEvaluator(Evaluator):
    """CPU path: eval-mode BatchNorm folded into the convolution weights at each point."""

    name = "folded"

    def __init__(self, *args, folded: tuple[nn.Module, dict[str, tuple[str, str]]], **kwargs):
        super().__init__(*args, **kwargs)
        self.graph_module, self.pairs = folded
        self.eps = {bn: self.model.get_submodule(bn).eps for _, bn in self.pairs.values()}

    def _point_forward(self, alpha: float, beta: float) -> Callable[[Tensor], Tensor]:
        state = perturbed_state(self.base, self.dx, self.dy, alpha, beta)
        params = dict(state)
        for conv, bn in self.pairs.values():
            weight, bias = fuse_conv_bn_weights(
                state[f"{conv}.weight"],
                state.get(f"{conv}.bias"),
                state[f"{bn}.running_mean"],
                state[f"{bn}.running_var"],
                self.eps[bn],
                state[f"{bn}.weight"],
                state[f"{bn}.bias"],
            )
            params[f"{conv}.weight"] = _to_channels_last(weight) if self.channels_last else weight
            params[f"{conv}.bias"] = bias
            for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                params.pop(f"{bn}.{suffix}", None)
        return lambda x: functional_call(self.graph_module, params, (x,))


class VmapEvaluator(Evaluator):
    """GPU path: K points per forward pass via `vmap` over stacked parameter sets."""

    name = "vmap"

    def __init__(self, *args, chunk_size: int = 8, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.chunk_size = max(1, int(chunk_size))
        moving = set(self.dx) | set(self.dy or {})
        self.moving = [n for n in self.base if n in moving]
        self.fixed = {n: t for n, t in self.base.items() if n not in moving}

    def _evaluate_chunk(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        while True:
            try:
                parts = [
                    self._evaluate_points(coords[i : i + self.chunk_size])
                    for i in range(0, len(coords), self.chunk_size)
                ]
                return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                self._back_off()

    def _back_off(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.chunk_size > 1:
            self.chunk_size //= 2
        elif self.batch_size > 1:
            self.batch_size //= 2
        else:
            raise MemoryError("out of memory even with one point and one sample per pass")
        log.warning(
            "out of memory: retrying with %d points x %d samples per pass",
            self.chunk_size,
            self.batch_size,
        )

    def _evaluate_points(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        k = len(coords)
        a = torch.as_tensor(coords[:, 0], dtype=torch.float32, device=self.device)
        b = torch.as_tensor(coords[:, 1], dtype=torch.float32, device=self.device)
        stacked = {}
        for name in self.moving:
            t = self.base[name]
            shape = (k,) + (1,) * t.dim()
            v = t.unsqueeze(0).expand(k, *t.shape).clone()
            if name in self.dx:
                v += a.view(shape).to(t.dtype) * self.dx[name]
            if self.dy is not None and name in self.dy:
                v += b.view(shape).to(t.dtype) * self.dy[name]
            if name.endswith("running_var"):
                v.clamp_(min=0)
            stacked[name] = v  # (K, *shape)

        def one(moving: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(self.model, {**self.fixed, **moving}, (x,))

        batched = vmap(one, in_dims=(0, None))
        out = {}
        for split, data in self.splits.items():
            losses, hits = [], []
            for s in _batches(len(data.y), self.batch_size):
                logits = batched(stacked, data.x[s])  # (K, B, C)
                losses.append(_sample_losses(logits, data.y[s], self.loss))
                hits.append(logits.argmax(-1) == data.y[s])
            out |= point_statistics(
                split, torch.cat(losses, -1), torch.cat(hits, -1), per_sample=self.per_sample
            )
        return out


def make_evaluator(
    model: nn.Module,
    base: Mapping[str, Tensor],
    dx: Mapping[str, Tensor],
    dy: Mapping[str, Tensor] | None,
    splits: Mapping[str, EvalData],
    *,
    strategy: str = "auto",
    batch_size: int | None = None,
    chunk_size: int | None = None,
    loss: str = "ce",
    precision: str = "fp32",
    bn: str = "eval",
    bn_data: EvalData | None = None,
    channels_last: bool | None = None,
    per_sample: bool = False,
) -> Evaluator:
    """The fastest evaluator for the device of `base` (or the one `strategy` names).

    ``auto`` picks ``vmap`` on CUDA and ``folded`` on CPU (measured fastest on
    each; see benchmarks/bench_surface.py), falling back to ``pointwise`` for
    ``bn=recompute`` or a model that torch.fx cannot trace. `channels_last`
    defaults to on for CPU.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"strategy must be one of {STRATEGIES}, got {strategy!r}", arg="strategy")
    device = next(iter(base.values())).device
    n_max = max(len(d.y) for d in splits.values())
    if strategy == "auto":
        if bn == "recompute":
            strategy = "pointwise"
        else:
            strategy = "vmap" if device.type == "cuda" else "folded"
    if bn == "recompute" and strategy != "pointwise":
        raise InputError(
            "bn='recompute' is evaluated one point at a time; use strategy='pointwise'"
        )
    if batch_size is None:
        # CPU: 128 keeps activations in cache; larger batches measured slower here.
        batch_size = min(n_max, 1024 if device.type == "cuda" else 128)
    if channels_last is None:
        # vmap has no channels-last batching rule for adaptive pooling (slow fallback).
        channels_last = device.type == "cpu" and strategy != "vmap"
    common = dict(
        batch_size=batch_size,
        loss=loss,
        precision=precision,
        channels_last=channels_last,
        per_sample=per_sample,
    )
    if strategy == "folded":
        folded = _fold_batchnorm(copy.deepcopy(model).eval())
        if folded is not None:
            return FoldedEvaluator(model, base, dx, dy, splits, folded=folded, **common)
        strategy = "pointwise"
    if strategy == "vmap":
        if chunk_size is None:
            chunk_size = _auto_chunk_size(device, n_points_hint=64)
        return VmapEvaluator(model, base, dx, dy, splits, chunk_size=chunk_size, **common)
    return PointwiseEvaluator(model, base, dx, dy, splits, bn=bn, bn_data=bn_data, **common)


def _auto_chunk_size(device: torch.device, *, n_points_hint: int) -> int:
    """Points per pass: as many as free memory suggests; OOM back-off corrects an overshoot."""
    if device.type != "cuda":
        return 4
    free, _ = torch.cuda.mem_get_info(device)
    # ~1 GiB of activations per point-batch of 1024 CIFAR images for ResNet-56 in fp32.
    return int(max(1, min(n_points_hint, 2 ** math.floor(math.log2(max(1, free / 2**30 / 2))))))
