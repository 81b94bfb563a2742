"""Layer responses and gradient norms, plain vs residual (He et al. 2015, Sec. 4.2, Fig. 7).

* The response of a 3x3 layer is its output after BN, before the addition and ReLU;
  its standard deviation is taken over every element (samples, channels, positions)
  of the data subset. ResNets' responses come out smaller than plain nets': the
  residual functions are closer to zero.
* Per-layer gradient norms of the dataset-mean loss, at initialization and after
  training: plain nets' are healthy too, so their degradation is not vanishing
  gradients.

Their file (`ResponseSeries`, `write_responses`, `read_responses`) is `landscape.io.responses`.

These make sense for the shipped CNNs only (3x3 convolutions followed by BatchNorm, plain
vs residual, He et al.'s Fig. 7), on ``(x, y)`` images: unlike the curvature and
sharpness analyses they take no task (``task=`` is refused in one line).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from landscape.core.checkpoints import as_model
from landscape.core.errors import InputError
from landscape.core.losses import LOSSES, mean_loss
from landscape.data import DataTensors, as_tensors

__all__ = [
    "layer_response_std",
    "gradient_norms",
]


@contextlib.contextmanager
def _mode(model: nn.Module, *, train: bool) -> Iterator[None]:
    """Train or eval mode for the duration; every module's own flag restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.train(train)
    try:
        yield
    finally:
        for m, flag in flags:
            m.train(flag)


class _Moments:
    """Running mean and variance over batches (Chan et al.'s pairwise update), float64."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, t: Tensor) -> None:
        t = t.detach().double()
        n_b = t.numel()
        mean_b = float(t.mean())
        m2_b = float(((t - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else math.nan


def _is_3x3(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (3, 3)


@torch.no_grad()
def _refuse_task(task: Any, name: str) -> None:
    if task is not None:
        raise InputError(
            f"{name} is for the shipped CNNs (3x3 convolutions and BatchNorm) on (x, y) "
            "images and takes no task; drop task=, or use hessian_spectrum, "
            "spectral_density or the sharpness functions, which do",
            arg="task",
        )


def layer_response_std(
    model: nn.Module | str | os.PathLike,
    x: Tensor | DataTensors,
    *,
    batch_size: int = 256,
    batch_stats: bool = False,
    task: Any = None,
) -> list[tuple[str, float]]:
    """Standard deviation of every 3x3 layer's response, in the order the network runs them.

    The response is the output of the BatchNorm that directly consumes the conv's output
    (after BN, before addition and ReLU), or the conv's own output when no BN follows.
    Found with forward hooks, so any architecture works.

    Args:
        model: the network (left unchanged: hooks removed, modes and buffers restored), or
            a checkpoint (a path or ``pretrained:NAME``).
        x: inputs of the data subset, (N, C, H, W), or a `DataTensors` (normalized here).
        batch_size: samples per forward pass.
        batch_stats: BN normalizes with each batch's statistics (train mode) instead of its
            running statistics; the model's buffers are not updated either way.
        task: refused: layer responses are the shipped CNNs' (see the module).

    Returns:
        ``[(conv_name, std), ...]``, e.g. ``("layer1.0.conv1", 0.83)``.
    """
    _refuse_task(task, "layer_response_std")
    model = as_model(model)
    if isinstance(x, DataTensors):
        x = x.normalized(next(model.parameters()).device)
    convs = {m: n for n, m in model.named_modules() if _is_3x3(m)}
    own: dict[str, _Moments] = {}  # conv outputs, used where no BN follows
    after_bn: dict[str, _Moments] = {}
    last: list[tuple[str, Tensor]] = []

    def conv_hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        name = convs[module]
        own.setdefault(name, _Moments()).add(output)
        last[:] = [(name, output)]

    def bn_hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        # Read now: an in-place ReLU overwrites this tensor right after.
        if last and inputs[0] is last[0][1]:
            after_bn.setdefault(last[0][0], _Moments()).add(output)
        last.clear()

    handles = [m.register_forward_hook(conv_hook) for m in convs]
    handles += [
        m.register_forward_hook(bn_hook)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    device = next(model.parameters()).device
    try:
        with _mode(model, train=batch_stats):
            for start in range(0, len(x), batch_size):
                xb = x[start : start + batch_size].to(device)
                last.clear()
                if batch_stats:  # BN would update running stats: run on copies of buffers
                    bufs = {n: b.clone() for n, b in model.named_buffers()}
                    functional_call(model, bufs, (xb,), strict=False)
                else:
                    model(xb)
    finally:
        for h in handles:
            h.remove()
    return [(name, (after_bn.get(name) or own[name]).std) for name in own]


def gradient_norms(
    model: nn.Module | str | os.PathLike,
    x: Tensor | DataTensors,
    y: Tensor | None = None,
    *,
    batch_size: int = 256,
    loss: str | Callable[[Tensor, Tensor], Tensor] = "ce",
    batch_stats: bool = True,
    task: Any = None,
) -> list[tuple[str, float]]:
    """L2 norm of the gradient of the dataset-mean loss for each conv and linear weight.

    Args:
        model: the network (left unchanged: no ``.grad`` set, buffers and modes restored), or
            a checkpoint (a path or ``pretrained:NAME``).
        x: inputs, (N, ...), or a `DataTensors` (then `y` comes from it).
        y: targets, (N,) class indices for "ce".
        batch_size: samples per forward pass; per-batch gradients are weighted by batch size.
        loss: "ce" | "mse" | a callable ``(output, target) -> mean loss``.
        batch_stats: BN uses each batch's statistics, as during training (default).
        task: refused: these per-layer numbers are the shipped CNNs' (see the module).

    Returns:
        ``[(param_name, norm), ...]`` in module order, e.g. ``("layer1.0.conv1.weight", 0.02)``.
    """
    _refuse_task(task, "gradient_norms")
    model = as_model(model)
    if isinstance(x, DataTensors):
        x, y = as_tensors(x, next(model.parameters()).device)
    if y is None:
        raise TypeError("gradient_norms needs targets: pass y, or a DataTensors as x")
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise InputError(f"loss must be one of {LOSSES} or a callable, got {loss!r}")
        name = loss

        def loss_fn(out: Tensor, target: Tensor) -> Tensor:
            return mean_loss(out, target, name)
    else:
        loss_fn = loss
    wanted = [
        f"{n}.weight" if n else "weight"
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    params = {n: p.detach() for n, p in model.named_parameters()}
    leaves = {n: params[n].clone().requires_grad_(True) for n in wanted}
    grads = {n: torch.zeros_like(t) for n, t in leaves.items()}
    device = leaves[wanted[0]].device
    with _mode(model, train=batch_stats):
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device)
            yb = y[start : start + batch_size].to(device)
            bufs = {n: b.clone() for n, b in model.named_buffers()}
            out = functional_call(model, ({**params, **leaves}, bufs), (xb,))
            value = loss_fn(out, yb) * (len(xb) / len(x))
            for n, g in zip(wanted, torch.autograd.grad(value, list(leaves.values())), strict=True):
                grads[n] += g
    return [(n, float(g.norm())) for n, g in grads.items()]
