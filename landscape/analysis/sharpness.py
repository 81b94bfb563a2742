"""Sharpness numbers at theta*: worst-case (an ascent in a ball) and average-case (noise).

* Worst-case: ``S = max_{|delta / c|_p <= rho} L(theta + delta) - L(theta)``, ``p`` 2 or inf,
  found by projected gradient ascent (SAM's inner problem, Foret et al. 2021; Keskar et al.
  2017's sensitivity), from ``delta = 0`` and ``restarts - 1`` random points in the ball,
  keeping the best. The radius is ``absolute`` (``c = 1``), ``adaptive``
  (``c = |theta|`` elementwise: ASAM, Kwon et al. 2021) or ``filter`` (``c`` = the norm of
  theta's filter, the scale of the filter-normalized plotting directions).
* Average-case: ``E_d L(theta + sigma d) - L(theta)`` over Gaussian directions ``d`` scaled
  like the plotting directions (`landscape.surface.directions.random_direction`:
  ``filter`` gives every filter of ``d`` the norm of theta's filter, so sigma is a relative
  size; ``adaptive`` is ``|theta|``-scaled noise, ``absolute`` plain N(0, I)).

Both are computed per batch of ``m`` samples (the data subset split into batches: the
"m-sharpness" of Foret et al. and Andriushchenko et al. 2023) and reported as the mean over
batches with its standard error; the average case also over perturbations.

Caveats (Andriushchenko et al. 2023, "A modern look at the relationship between
sharpness and generalization"): no sharpness definition they tested -- worst-case or
average-case, adaptive or not -- correlated reliably with generalization across
architectures, training settings and datasets; the numbers depend on rho, on m, on the
norm, on whether BN/biases move, and on reparametrization (only the adaptive / filter
scalings are invariant to rescaling a ReLU layer's filters, Dinh et al. 2017). Compare
sharpness only between networks of the same kind, on the same data subset, with the
same settings; a difference within the intervals is not one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from landscape.analysis.hessian import _eval_mode
from landscape.analysis.objective import Objective
from landscape.analysis.spectrum import _setup, t_quantile
from landscape.core.errors import InputError
from landscape.core.losses import mean_loss
from landscape.core.progress import progress_bar
from landscape.surface.directions import random_direction

__all__ = [
    "NORMS",
    "SCALES",
    "AscentResult",
    "ascent",
    "radius_scale",
    "loss_and_grad_fn",
    "SharpnessResult",
    "worst_case_sharpness",
    "average_case_sharpness",
]

NORMS = ("l2", "linf")
SCALES = ("absolute", "adaptive", "filter")
# The average case draws its noise as the plotting directions do, with these norms.
_DIRECTION_NORM = {"absolute": "none", "adaptive": "weight", "filter": "filter"}

LossGrad = Callable[..., tuple[float, Tensor]]


@dataclass(frozen=True)
class AscentResult:
    """The best point of a projected gradient ascent.

    Attributes:
        value: the largest loss found, ``L(theta + delta)``.
        delta: the flat perturbation that gave it.
        evaluations: loss-and-gradient evaluations spent.
        per_restart: the best value of each restart (a spread shows local maxima).
    """

    value: float
    delta: Tensor
    evaluations: int
    per_restart: list[float]


def _project(u: Tensor, radius: float, norm: str) -> Tensor:
    if norm == "linf":
        return u.clamp(-radius, radius)
    n = float(u.norm())
    return u if n <= radius else u * (radius / n)


def _direction(g: Tensor, norm: str) -> Tensor:
    if norm == "linf":
        return g.sign()
    n = float(g.norm())
    return g / n if n > 0 else g


def ascent(
    loss_grad: LossGrad,
    dim: int,
    *,
    radius: float,
    norm: str = "l2",
    scale: Tensor | None = None,
    steps: int = 20,
    restarts: int = 1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> AscentResult:
    """Maximize ``L(delta)`` over ``|delta / scale|_p <= radius`` by projected gradient ascent.

    In the coordinates ``u = delta / scale`` the ball is round (L2) or a box (L-inf); a step
    moves ``u`` by ``eta`` along the normalized gradient (L2) or its sign (L-inf) and
    projects back. ``eta`` starts at `radius` (the first step from 0 is SAM's
    ``rho g / |g|``), grows by 1.5 after a step that raised the loss and halves (the step
    undone) after one that did not, so the loss never decreases.

    Args:
        loss_grad: ``delta -> (loss, gradient)``, flat tensors of size `dim`.
        dim: the number of coordinates.
        radius: rho, in units of `scale`.
        norm: ``"l2"`` or ``"linf"``.
        scale: per coordinate (default 1): the absolute / adaptive / filter scaling.
        steps: loss-and-gradient evaluations per restart (after the one at the start).
        restarts: the first starts at 0, the others at uniform random points of the ball.
        generator: for the random starts (default seeded 0).
        dtype, device: of the vectors.

    Returns:
        The `AscentResult` of the best restart.
    """
    if norm not in NORMS:
        raise InputError(f"norm must be one of {NORMS}; got {norm!r}", arg="norm")
    if not (isinstance(radius, int | float) and radius > 0 and math.isfinite(radius)):
        raise InputError(f"radius must be a positive number; got {radius!r}", arg="radius")
    for name, value in (("steps", steps), ("restarts", restarts)):
        if not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}", arg=name)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    c = torch.ones(dim, dtype=dtype, device=device) if scale is None else scale.to(device, dtype)
    best: AscentResult | None = None
    per_restart, evaluations = [], 0
    for r in range(restarts):
        if r == 0:
            u = torch.zeros(dim, dtype=dtype, device=device)
        elif norm == "linf":
            u = ((torch.rand(dim, generator=gen, dtype=torch.float64) * 2 - 1) * radius).to(
                device, dtype
            )
        else:
            z = torch.randn(dim, generator=gen, dtype=torch.float64)
            rr = radius * float(torch.rand(1, generator=gen, dtype=torch.float64)) ** (1 / dim)
            u = (z / z.norm() * rr).to(device, dtype)
        value, g = loss_grad(c * u)
        evaluations += 1
        eta = radius
        for _ in range(steps):
            gu = c * g
            if not bool(gu.any()):
                break
            cand = _project(u + eta * _direction(gu, norm), radius, norm)
            v_new, g_new = loss_grad(c * cand)
            evaluations += 1
            if v_new > value:
                u, value, g = cand, v_new, g_new
                eta = min(eta * 1.5, 2 * radius)
            else:
                eta /= 2
        per_restart.append(value)
        if best is None or value > best.value:
            best = AscentResult(value, (c * u).detach(), 0, [])
    assert best is not None
    return AscentResult(best.value, best.delta, evaluations, per_restart)


def radius_scale(params: Mapping[str, Tensor], scale: str) -> dict[str, Tensor]:
    """Per parameter, the scaling ``c`` of the ball: ``absolute`` 1, ``adaptive`` ``|theta|``,
    ``filter`` the norm of theta's slice along dim 0 (a 1-D tensor: its whole norm)."""
    if scale not in SCALES:
        raise InputError(f"scale must be one of {SCALES}; got {scale!r}", arg="scale")
    out = {}
    for n, w in params.items():
        w = w.detach()
        if scale == "absolute":
            out[n] = torch.ones_like(w)
        elif scale == "adaptive":
            out[n] = w.abs()
        elif w.dim() <= 1:
            out[n] = torch.full_like(w, float(w.norm()))
        else:
            dims = tuple(range(1, w.dim()))
            out[n] = torch.linalg.vector_norm(w, dim=dims, keepdim=True).expand_as(w).clone()
    return out


def loss_and_grad_fn(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    names: Sequence[str],
    *,
    loss: str = "ce",
    batch_size: int = 256,
) -> LossGrad:
    """``delta -> (mean loss, gradient)`` at ``theta* + delta`` over the parameters `names`
    (flat, in that order), BN in eval mode, the model left unchanged. Called with
    ``grad=False`` it skips the backward pass (the gradient is then zero)."""
    base = {n: p.detach() for n, p in model.named_parameters()}
    bufs = dict(model.named_buffers())
    names = list(names)
    shapes = [base[n].shape for n in names]
    sizes = [base[n].numel() for n in names]
    theta = torch.cat([base[n].reshape(-1) for n in names])
    fixed = {n: t for n, t in base.items() if n not in set(names)}
    n_total = len(x)

    def loss_grad(delta: Tensor, grad: bool = True) -> tuple[float, Tensor]:
        point = (theta + delta.to(theta)).detach().requires_grad_(grad)
        pieces = point.split(sizes)
        sub = {n: p.reshape(s) for n, p, s in zip(names, pieces, shapes, strict=True)}
        total, g_sum = 0.0, torch.zeros_like(theta)
        with _eval_mode(model), torch.set_grad_enabled(grad):
            for start in range(0, n_total, batch_size):
                xb, yb = x[start : start + batch_size], y[start : start + batch_size]
                out = functional_call(model, ({**fixed, **sub}, bufs), (xb,))
                value = mean_loss(out, yb, loss) * (len(xb) / n_total)
                if grad:
                    g_sum += torch.autograd.grad(value, point)[0]
                total += float(value.detach())
        return total, g_sum.to(delta)

    return loss_grad


@dataclass(frozen=True)
class SharpnessResult:
    """A sharpness number with its uncertainty.

    Attributes:
        kind: ``"worst"`` or ``"average"``.
        value: the mean over batches (and perturbations) of ``L(theta + delta) - L(theta)``.
        stderr: its standard error (batches and perturbations combined).
        stderr_samples: the part from the data: over batches of `m` samples.
        stderr_perturbations: the part from the random perturbations (average case).
        per_batch: (batches,) the sharpness of each batch.
        per_perturbation: (perturbations,) the average case's value per perturbation.
        base_loss: the loss at theta* (mean over batches).
        radius, norm, scale: the ball (worst) or noise size sigma (average).
        m: samples per batch; steps, restarts: of the ascent; perturbations: average case.
        parameters: the perturbed parameters' count; seconds: compute time.
    """

    kind: str
    value: float
    stderr: float
    stderr_samples: float
    stderr_perturbations: float
    per_batch: np.ndarray
    per_perturbation: np.ndarray
    base_loss: float
    radius: float
    norm: str
    scale: str
    m: int
    steps: int
    restarts: int
    perturbations: int
    parameters: int
    seconds: float

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """A `level` interval, Student t: (batches - 1) dof for the worst case; for the
        average case the Welch-Satterthwaite dof of its two parts (perturbations, batches).
        """
        dof = float(len(self.per_batch) - 1)
        if self.kind == "average":
            parts = [
                (se**2, n - 1)
                for se, n in ((self.stderr_perturbations, len(self.per_perturbation)),
                              (self.stderr_samples, len(self.per_batch)))
                if n > 1 and math.isfinite(se)
            ]  # fmt: skip
            total = sum(v for v, _ in parts)
            denom = sum(v**2 / k for v, k in parts)
            dof = total**2 / denom if denom > 0 else math.nan
        if not dof >= 1:
            return math.nan, math.nan
        half = t_quantile(int(dof), level) * self.stderr
        return self.value - half, self.value + half

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.interval()
        return {
            "kind": self.kind,
            "value": self.value,
            "stderr": self.stderr,
            "interval95": [lo, hi],
            "stderr_samples": self.stderr_samples,
            "stderr_perturbations": self.stderr_perturbations,
            "per_batch": self.per_batch,
            "per_perturbation": self.per_perturbation,
            "base_loss": self.base_loss,
            "radius": self.radius,
            "norm": self.norm,
            "scale": self.scale,
            "m": self.m,
            "steps": self.steps,
            "restarts": self.restarts,
            "perturbations": self.perturbations,
            "parameters": self.parameters,
            "seconds": self.seconds,
        }

    def __repr__(self) -> str:
        lo, hi = self.interval()
        return (
            f"SharpnessResult({self.kind}, {self.value:.4g} +- {self.stderr:.2g} "
            f"(95% [{lo:.4g}, {hi:.4g}]), rho {self.radius:g} {self.norm} {self.scale}, "
            f"m={self.m} x {len(self.per_batch)} batches)"
        )


def _se(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def _batches(obj: Objective, m: int | None) -> list[Objective]:
    """The objective of each batch of `m` samples (whole batches only: a remainder is left
    out). A task's data is split by its own batches: each is one batch of the sharpness
    (`m` must then be None or their common size; cut tensors with ``batch_size=m``)."""
    if m is not None and (not isinstance(m, int) or m < 1):
        raise InputError(f"m must be a positive integer; got {m!r}", arg="m")
    if obj.task is not None:
        keep = list(range(len(obj.sizes)))
        if m is not None and len(keep) > 1 and obj.sizes[-1] < m:
            keep.pop()  # the remainder of tensors cut into batches of m
        if m is not None and any(obj.sizes[i] != m for i in keep):
            raise InputError(
                f"m {m}: with a task, each batch of the data is one batch of the sharpness, "
                f"and these have {sorted(set(obj.sizes))} samples; drop m, or give the data "
                "as tensors or a Dataset (cut into batches of m)",
                arg="m",
            )
        return [obj.subset(np.array([i])) for i in keep]
    n_all = obj.n
    m = n_all if m is None else m
    if m > n_all:
        raise InputError(f"m {m} exceeds the {n_all} samples; lower m", arg="m")
    n = n_all // m  # whole batches only: every one has m samples
    return [obj.subset(np.arange(i * m, (i + 1) * m)) for i in range(n)]


def worst_case_sharpness(
    model: nn.Module | str | os.PathLike,
    data: Any,
    *,
    radius: float = 0.05,
    norm: str = "l2",
    scale: str = "adaptive",
    m: int | None = None,
    steps: int = 20,
    restarts: int = 1,
    params: Sequence[str] | str = (),
    exclude: Sequence[str] | str = (),
    wrt: str = "weights",
    loss: str = "ce",
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    task: Any = None,
) -> SharpnessResult:
    """Worst-case (m-)sharpness: the largest loss rise in a ball, per batch of `m` samples.

    Args:
        model: a network, or a checkpoint (path or ``pretrained:NAME``).
        data: a `DataTensors` or ready tensors ``(x, y)``.
        radius: rho, in units of `scale`.
        norm: ``"l2"`` or ``"linf"``.
        scale: ``"absolute"``, ``"adaptive"`` (``|theta|``) or ``"filter"`` (filter norms).
        m: samples per batch (default: all, one batch and no interval); a remainder of
            fewer than m samples is left out.
        steps, restarts: of the ascent per batch.
        params, exclude, wrt: the parameters perturbed (`select_parameters`).
        loss, batch_size, seed, device, progress: as in `spectral_density`.
        task: a `landscape.Task` or a ``loss_fn(model, batch)`` instead of `loss`, on any
            batches (`landscape.analysis.objective`); each batch of the data is then one
            batch of the sharpness (a tuple of tensors is cut into batches of `m`).

    Returns:
        The `SharpnessResult`: mean over batches, standard error over batches.
    """
    obj, names = _setup(
        model, data, device, params, exclude, wrt, task=task, loss=loss,
        batch_size=m if task is not None and m else batch_size,
    )  # fmt: skip
    template = {n: p.detach() for n, p in obj.model.named_parameters() if n in set(names)}
    c = torch.cat([t.reshape(-1) for t in radius_scale(template, scale).values()])
    c = c.to(torch.float64)
    batches = _batches(obj, m)
    gen = torch.Generator().manual_seed(seed)
    bar = progress_bar(progress, total=len(batches) * restarts * (steps + 1), desc="ascent")
    start = time.perf_counter()
    rises, bases = [], []
    with bar:
        for part in batches:
            lg = part.loss_grad(names)

            def counted(delta: Tensor, lg: LossGrad = lg) -> tuple[float, Tensor]:
                bar.update()
                return lg(delta)

            base, _ = lg(torch.zeros_like(c))
            res = ascent(
                counted, len(c), radius=radius, norm=norm, scale=c, steps=steps,
                restarts=restarts, generator=gen, device=c.device,
            )  # fmt: skip
            rises.append(res.value - base)
            bases.append(base)
    per_batch = np.asarray(rises)
    se = _se(per_batch)
    return SharpnessResult(
        kind="worst",
        value=float(per_batch.mean()),
        stderr=se,
        stderr_samples=se,
        stderr_perturbations=math.nan,
        per_batch=per_batch,
        per_perturbation=np.zeros(0),
        base_loss=float(np.mean(bases)),
        radius=float(radius),
        norm=norm,
        scale=scale,
        m=batches[0].n,
        steps=steps,
        restarts=restarts,
        perturbations=0,
        parameters=len(c),
        seconds=time.perf_counter() - start,
    )


def average_case_sharpness(
    model: nn.Module | str | os.PathLike,
    data: Any,
    *,
    radius: float = 0.05,
    scale: str = "filter",
    perturbations: int = 20,
    antithetic: bool = True,
    m: int | None = None,
    params: Sequence[str] | str = (),
    exclude: Sequence[str] | str = (),
    wrt: str = "weights",
    loss: str = "ce",
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    task: Any = None,
) -> SharpnessResult:
    """Average-case sharpness: the mean loss rise under random Gaussian perturbations.

    ``delta = radius * d`` with ``d`` a random direction normalized like the plotting
    directions (`random_direction`; ``scale`` ``filter`` -> ``norm="filter"``, ``adaptive``
    -> ``"weight"``, ``absolute`` -> ``"none"``), over the selected parameters.

    Args:
        model, data: as in `worst_case_sharpness`.
        radius: sigma (``filter``: the perturbation's size relative to each filter's norm).
        scale: ``"filter"``, ``"adaptive"`` or ``"absolute"``.
        perturbations: random directions drawn.
        antithetic: evaluate each direction as a pair ``+-delta`` and average the two: the
            same expectation (the noise is symmetric) without the first-order term
            ``g . delta``, which otherwise dominates the spread at small radii.
        m: samples per batch (default all): the data part of the interval is over batches.
        params, exclude, wrt, loss, batch_size, seed, device, progress, task: as above.

    Returns:
        The `SharpnessResult`: the mean over perturbations and batches; the standard error
        combines the spread over perturbations and over batches (each of the two-way
        table's margins, added in quadrature: conservative).
    """
    if scale not in SCALES:
        raise InputError(f"scale must be one of {SCALES}; got {scale!r}", arg="scale")
    if not (isinstance(radius, int | float) and radius > 0 and math.isfinite(radius)):
        raise InputError(f"radius must be a positive number; got {radius!r}", arg="radius")
    if not isinstance(perturbations, int) or perturbations < 1:
        raise InputError(
            f"perturbations must be a positive integer; got {perturbations!r}",
            arg="perturbations",
        )
    obj, names = _setup(
        model, data, device, params, exclude, wrt, task=task, loss=loss,
        batch_size=m if task is not None and m else batch_size,
    )  # fmt: skip
    template = {n: p.detach() for n, p in obj.model.named_parameters() if n in set(names)}
    batches = _batches(obj, m)
    lgs = [part.loss_grad(names) for part in batches]
    dim = sum(t.numel() for t in template.values())
    zero = torch.zeros(dim, dtype=next(iter(template.values())).dtype)
    gen = torch.Generator().manual_seed(seed)
    evals = len(batches) * (1 + perturbations * (2 if antithetic else 1))
    bar = progress_bar(progress, total=evals, desc="perturb")
    start = time.perf_counter()
    device = next(iter(template.values())).device
    with bar:
        base = []
        for lg in lgs:
            base.append(lg(zero.to(device), grad=False)[0])
            bar.update()
        table = np.empty((perturbations, len(batches)))
        for k in range(perturbations):
            d = random_direction(
                template, generator=gen, norm=_DIRECTION_NORM[scale], ignore="none"
            )
            delta = radius * torch.cat([d[n].reshape(-1) for n in template])
            for b, lg in enumerate(lgs):
                rise = lg(delta, grad=False)[0] - base[b]
                if antithetic:
                    rise = (rise + lg(-delta, grad=False)[0] - base[b]) / 2
                    bar.update()
                table[k, b] = rise
                bar.update()
    se_p = _se(table.mean(axis=1))
    se_s = _se(table.mean(axis=0))
    parts = [v**2 for v in (se_p, se_s) if math.isfinite(v)]
    se = math.sqrt(sum(parts)) if parts else math.nan
    return SharpnessResult(
        kind="average",
        value=float(table.mean()),
        stderr=se,
        stderr_samples=se_s,
        stderr_perturbations=se_p,
        per_batch=table.mean(axis=0),
        per_perturbation=table.mean(axis=1),
        base_loss=float(np.mean(base)),
        radius=float(radius),
        norm="gaussian",
        scale=scale,
        m=batches[0].n,
        steps=0,
        restarts=0,
        perturbations=perturbations,
        parameters=dim,
        seconds=time.perf_counter() - start,
    )
