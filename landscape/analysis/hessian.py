"""Hessian curvature of the dataset-mean loss: HVPs, Lanczos eigenvalues, Hutchinson trace.

The loss is the mean over the whole data subset (per-batch means weighted by batch
size), so eigenvalues are those of one well-defined function and do not grow with
the number of batches. The model is evaluated with `torch.func.functional_call` in
eval mode (BatchNorm uses its running statistics) and is never modified.

Li et al. 2018, Sec. 6: the map of ``|lambda_min / lambda_max|`` over a surface
grid tells convex regions (near 0) from regions of strong negative curvature.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from landscape.core.errors import InputError
from landscape.core.losses import LOSSES, mean_loss
from landscape.core.progress import progress_bar

__all__ = [
    "LOSSES",
    "LanczosResult",
    "hvp_fn",
    "task_hvp_fn",
    "lanczos",
    "top_eigenvalues",
    "min_eigenvalue",
    "extreme_eigenvalues",
    "hutchinson_trace",
    "curvature_ratio",
    "extreme_eigenvalue_map",
    "curvature_map",
    "eigenvector_directions",
    "HessianSpectrum",
    "hessian_spectrum",
    "weight_names",
    "LanczosWarnings",
]

log = logging.getLogger(__name__)

Params = dict[str, Tensor]
HVP = Callable[[Mapping[str, Tensor]], Params]
METHODS = ("double_backward", "forward_over_reverse")


def _loss_fn(loss: str | Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise InputError(f"loss must be one of {LOSSES} or a callable, got {loss!r}", arg="loss")
    return lambda out, y: mean_loss(out, y, loss)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; every module's own flag restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.train(flag)


def hvp_fn(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    params: Mapping[str, Tensor] | None = None,
    buffers: Mapping[str, Tensor] | None = None,
    batch_size: int = 256,
    loss: str | Callable[[Tensor, Tensor], Tensor] = "ce",
    wrt: Sequence[str] | None = None,
    method: str = "double_backward",
) -> HVP:
    """Hessian-vector product of the dataset-mean loss at `params`.

    Args:
        model: the network; only its structure is used (and parameters missing from `params`).
        x: inputs of the data subset, (N, ...).
        y: targets, (N,) class indices for "ce".
        params: parameter values by name (default: the model's own).
        buffers: buffer values by name (default: the model's own); BN uses them as running
            statistics.
        batch_size: samples per forward pass; the result does not depend on it.
        loss: "ce" | "mse" | a callable ``(output, target) -> mean loss``.
        wrt: names of the parameters the Hessian is taken over (default: all of `params`);
            the others are held fixed.
        method: "double_backward" | "forward_over_reverse" (`torch.func.jvp` of `grad`).

    Returns:
        A function mapping a vector ``{name: tensor}`` over `wrt` to ``H v`` (same keys).
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if batch_size < 1:
        raise InputError(f"batch_size must be positive, got {batch_size!r}")
    if len(x) != len(y) or len(x) == 0:
        raise InputError(
            f"x and y must hold the same positive number of samples, got {len(x)}, {len(y)}"
        )
    loss_fn = _loss_fn(loss)
    base = {n: p.detach() for n, p in model.named_parameters()}
    base.update({n: p.detach() for n, p in (params or {}).items()})
    bufs = dict(model.named_buffers()) if buffers is None else dict(buffers)
    names = list(wrt) if wrt is not None else list(params or base)
    unknown = [n for n in names if n not in base]
    if unknown:
        raise InputError(f"wrt names not among the parameters: {unknown[:5]}")
    fixed = {n: t for n, t in base.items() if n not in set(names)}
    point = {n: base[n] for n in names}
    device = next(iter(point.values())).device
    n_total = len(x)

    def batch_loss(sub: Mapping[str, Tensor], xb: Tensor, yb: Tensor) -> Tensor:
        out = functional_call(model, ({**fixed, **sub}, bufs), (xb,))
        return loss_fn(out, yb)

    def hvp(v: Mapping[str, Tensor]) -> Params:
        result = {n: torch.zeros_like(point[n]) for n in names}
        with _eval_mode(model):
            for start in range(0, n_total, batch_size):
                xb = x[start : start + batch_size].to(device)
                yb = y[start : start + batch_size].to(device)
                weight = len(xb) / n_total  # the dataset mean, not a sum over batches
                tangents = {n: v[n].to(point[n]) for n in names}
                if method == "double_backward":
                    primals = {n: t.detach().requires_grad_(True) for n, t in point.items()}
                    inputs = list(primals.values())
                    grads = torch.autograd.grad(
                        batch_loss(primals, xb, yb), inputs, create_graph=True, allow_unused=True
                    )
                    terms = [
                        (g * tangents[n]).sum()
                        for n, g in zip(names, grads, strict=True)
                        if g is not None and g.requires_grad
                    ]
                    hv = dict.fromkeys(names)
                    if terms:
                        hv2 = torch.autograd.grad(sum(terms), inputs, allow_unused=True)
                        hv = dict(zip(names, hv2, strict=True))
                else:
                    grad_fn = torch.func.grad(lambda p: batch_loss(p, xb, yb))  # noqa: B023
                    _, hv = torch.func.jvp(grad_fn, (point,), (tangents,))
                for n in names:
                    if hv[n] is not None:
                        result[n].add_(hv[n].detach(), alpha=weight)
        return result

    return hvp


def task_hvp_fn(
    model: nn.Module,
    batches: Sequence[Any],
    loss_fn: Callable[[nn.Module, Any], Tensor],
    *,
    sizes: Sequence[int],
    wrt: Sequence[str] | None = None,
    params: Mapping[str, Tensor] | None = None,
) -> HVP:
    """Hessian-vector product of a task's sample-mean loss at the model's weights: any
    model, loss and batch, as `landscape.compute_surface` takes them.

    Args:
        model: the network (in eval mode while the products run).
        batches: the batches, fixed (`landscape.surface.task.materialize`).
        loss_fn: ``loss_fn(model, batch)`` -> per-sample losses (B,) or their mean; it
            sees the weights through `functional_call` without knowing it.
        sizes: each batch's B: the batches' means are weighted by it (the sample mean).
        wrt: the parameters the Hessian is taken over (default: all); the others fixed.
        params: parameter values by name, the point the Hessian is taken at (default: the
            model's own; those missing from it too).

    Returns:
        A function mapping a vector ``{name: tensor}`` over `wrt` to ``H v`` (same keys).
    """
    from landscape.surface.task import Task, TaskModule  # the engine's task, not a copy

    module = TaskModule(model, Task(loss_fn))
    base = {n: p.detach() for n, p in model.named_parameters()}
    base.update({n: p.detach() for n, p in (params or {}).items()})
    names = list(wrt) if wrt is not None else list(base)
    fixed = {f"model.{n}": t for n, t in base.items() if n not in set(names)}
    bufs = {f"model.{n}": b for n, b in model.named_buffers()}
    point = {n: base[n] for n in names}
    total = sum(sizes)

    def batch_loss(sub: Mapping[str, Tensor], batch: Any) -> Tensor:
        weights = {**fixed, **{f"model.{n}": t for n, t in sub.items()}}
        losses, _ = functional_call(module, (weights, bufs), (batch,))
        return losses.mean() if losses.dim() else losses

    def hvp(v: Mapping[str, Tensor]) -> Params:
        result = {n: torch.zeros_like(point[n]) for n in names}
        with _eval_mode(model):
            for batch, size in zip(batches, sizes, strict=True):
                tangents = {n: v[n].to(point[n]) for n in names}
                hv = products(batch, tangents)
                for n in names:
                    if hv[n] is not None:
                        result[n].add_(hv[n].detach(), alpha=size / total)
        return result

    forward_ad = [True]  # until an operation without forward-mode AD says otherwise

    def products(batch: Any, tangents: Params) -> dict[str, Tensor | None]:
        if forward_ad[0]:
            try:
                grad_fn = torch.func.grad(lambda p: batch_loss(p, batch))
                return torch.func.jvp(grad_fn, (point,), (tangents,))[1]
            except NotImplementedError as e:  # e.g. CPU flash attention (a Hugging Face model)
                if "forward AD" not in str(e):
                    raise
                log.info("no forward-mode AD here (%s); Hessian-vector products by double "
                         "backward", " ".join(str(e).split())[:120])  # fmt: skip
                forward_ad[0] = False
        primals = {n: t.detach().requires_grad_(True) for n, t in point.items()}
        inputs = list(primals.values())
        grads = torch.autograd.grad(
            batch_loss(primals, batch), inputs, create_graph=True, allow_unused=True
        )
        terms = [
            (g * tangents[n]).sum()
            for n, g in zip(names, grads, strict=True)
            if g is not None and g.requires_grad
        ]
        if not terms:
            return dict.fromkeys(names)
        try:
            hv = torch.autograd.grad(sum(terms), inputs, allow_unused=True)
        except RuntimeError as e:
            if "derivative for" not in str(e) or "not implemented" not in str(e):
                raise
            raise InputError(
                f"the model uses an operation without a second derivative ({str(e)[:100]}); "
                "a Hessian needs one: for a Hugging Face model, load it with "
                "attn_implementation='eager'",
                arg="task",
            ) from e
        return dict(zip(names, hv, strict=True))

    return hvp


class _Flat:
    """Maps ``{name: tensor}`` to one flat vector and back."""

    def __init__(self, template: Mapping[str, Tensor]) -> None:
        self.names = list(template)
        self.shapes = [template[n].shape for n in self.names]
        self.sizes = [template[n].numel() for n in self.names]
        first = template[self.names[0]]
        self.device, self.dtype = first.device, first.dtype
        self.dim = sum(self.sizes)

    def flatten(self, d: Mapping[str, Tensor]) -> Tensor:
        return torch.cat([d[n].reshape(-1).to(self.dtype) for n in self.names])

    def unflatten(self, v: Tensor) -> Params:
        parts = torch.split(v, self.sizes)
        return {n: p.reshape(s) for n, p, s in zip(self.names, parts, self.shapes, strict=True)}

    def random(self, generator: torch.Generator) -> Tensor:
        v = torch.randn(self.dim, generator=generator, dtype=torch.float64)
        return v.to(self.device, self.dtype)


@dataclass(frozen=True)
class LanczosResult:
    """Ritz pairs of the Lanczos tridiagonal, ascending.

    Attributes:
        eigenvalues: (m,) Ritz values, ascending.
        residuals: (m,) ``|beta_m * s_mi|``, an error bound on each.
        vectors: (m, P) flat Ritz vectors, unit norm, rows matching `eigenvalues`.
        iterations: Lanczos steps taken.
        converged: whether the wanted values converged.
    """

    eigenvalues: np.ndarray  # (m,) ascending
    residuals: np.ndarray  # (m,) |beta_m * s_mi|, an error bound on each Ritz value
    vectors: Tensor  # (m, P) flat Ritz vectors, unit norm, rows match eigenvalues
    iterations: int
    converged: bool


def _generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def lanczos(
    hvp: HVP,
    params: Mapping[str, Tensor],
    *,
    iters: int = 100,
    tol: float = 1e-4,
    which: str = "both",
    k: int = 1,
    generator: torch.Generator | None = None,
    progress: Callable[[], None] | None = None,
) -> LanczosResult:
    """Lanczos with full reorthogonalization on the operator `hvp`.

    Stops when the `k` wanted Ritz values (``which``: "largest" | "smallest" | "both")
    have residual below ``tol * max|theta|`` or after `iters` steps. An invariant
    subspace restarts from a fresh random vector orthogonal to the basis, so repeated
    eigenvalues are found too. Memory: ``iters`` vectors of the parameter count.

    Args:
        hvp: the operator, from `hvp_fn`.
        params: a template of the vectors `hvp` takes (names, shapes, dtype, device).
        iters: most Lanczos steps.
        tol: relative residual at which a Ritz value counts as converged.
        which: the end(s) of the spectrum that must converge.
        k: how many Ritz values at that end.
        generator: for the random start vector (default: a fresh one seeded 0).
        progress: called after every Hessian-vector product.

    Returns:
        The `LanczosResult`: Ritz values (ascending), residuals, vectors, convergence.
    """
    if which not in ("largest", "smallest", "both"):
        raise InputError(f"which must be largest | smallest | both, got {which!r}")
    flat = _Flat(params)
    gen = _generator(generator)
    m_max = min(iters, flat.dim)
    if k > m_max:
        raise InputError(f"k={k} exceeds the Krylov dimension {m_max}; raise iters")
    basis = torch.zeros(m_max + 1, flat.dim, device=flat.device, dtype=flat.dtype)
    alphas: list[float] = []
    betas: list[float] = []  # betas[j] couples q_j and q_{j+1}; 0 after a restart
    breakdown = torch.finfo(flat.dtype).eps ** (2 / 3)
    q = flat.random(gen)
    basis[0] = q / q.norm()
    theta, s, resid, converged = np.zeros(0), np.zeros((0, 0)), np.zeros(0), False
    for j in range(m_max):
        w = flat.flatten(hvp(flat.unflatten(basis[j])))
        if progress is not None:
            progress()
        a = float(w @ basis[j])
        alphas.append(a)
        for _ in range(2):  # full reorthogonalization, twice is enough (Parlett)
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        b = float(w.norm())
        tri = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta, s = np.linalg.eigh(tri)
        anorm = max(np.abs(theta).max(), 1e-30)
        if j + 1 == m_max:
            b_eff = b if m_max < flat.dim else 0.0
            resid = np.abs(b_eff * s[-1])
            converged = bool(_wanted(resid, which, k).max() <= tol * anorm)
            break
        if b <= breakdown * anorm:
            # Invariant subspace: restart orthogonally to the basis and keep going, since
            # a random start misses the extra copies of a repeated eigenvalue.
            w = flat.random(gen)
            for _ in range(2):
                w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
            resid = np.zeros(len(theta))
            basis[j + 1] = w / w.norm()
            betas.append(0.0)
            continue
        basis[j + 1] = w / b
        resid = np.abs(b * s[-1])
        if len(alphas) >= k and _wanted(resid, which, k).max() <= tol * anorm:
            converged = True
            break
        betas.append(b)
    m = len(alphas)
    if not converged:
        log.warning("Lanczos did not converge in %d steps (tol %g)", m, tol)
    s_t = torch.from_numpy(s).to(flat.device, flat.dtype)  # (m, m)
    vectors = s_t.T @ basis[:m]  # (m, P)
    return LanczosResult(theta, resid, vectors, m, converged)


def _wanted(resid: np.ndarray, which: str, k: int) -> np.ndarray:
    if which == "largest":
        return resid[-k:]
    if which == "smallest":
        return resid[:k]
    return np.concatenate([resid[:k], resid[-k:]])


def top_eigenvalues(
    hvp: HVP,
    params: Mapping[str, Tensor],
    k: int = 1,
    *,
    iters: int = 100,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, list[Params]]:
    """The `k` largest (algebraic) Hessian eigenvalues, descending, and unit eigenvectors.

    Args:
        hvp: from `hvp_fn`.
        params: a template of the vectors `hvp` takes (names, shapes, dtype, device).
        k: how many.
        iters: most Lanczos steps.
        tol: relative residual at which a Ritz value counts as converged.
        generator: for the random start vector (default: a fresh one seeded 0).

    Returns:
        ``(eigenvalues, eigenvectors)``: (k,) descending, and k ``{name: tensor}``.
    """
    res = lanczos(hvp, params, iters=iters, tol=tol, which="largest", k=k, generator=generator)
    flat = _Flat(params)
    order = np.arange(len(res.eigenvalues) - 1, len(res.eigenvalues) - 1 - k, -1)
    return res.eigenvalues[order], [flat.unflatten(res.vectors[i]) for i in order]


def min_eigenvalue(
    hvp: HVP,
    params: Mapping[str, Tensor],
    *,
    iters: int = 100,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> tuple[float, Params]:
    """The most negative (smallest algebraic) eigenvalue and its unit eigenvector (Lanczos).

    Args:
        hvp, params, iters, tol, generator: as in `top_eigenvalues`.

    Returns:
        ``(lambda_min, eigenvector)``, the vector as ``{name: tensor}``.
    """
    res = lanczos(hvp, params, iters=iters, tol=tol, which="smallest", generator=generator)
    return float(res.eigenvalues[0]), _Flat(params).unflatten(res.vectors[0])


def extreme_eigenvalues(
    hvp: HVP,
    params: Mapping[str, Tensor],
    *,
    iters: int = 100,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """``(lambda_min, lambda_max)`` from one Lanczos run converged at both ends."""
    res = lanczos(hvp, params, iters=iters, tol=tol, which="both", generator=generator)
    return float(res.eigenvalues[0]), float(res.eigenvalues[-1])


def curvature_ratio(
    hvp: HVP,
    params: Mapping[str, Tensor],
    *,
    iters: int = 100,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> float:
    """``|lambda_min / lambda_max|`` (Li et al. 2018, Sec. 6); NaN when lambda_max is 0."""
    lo, hi = extreme_eigenvalues(hvp, params, iters=iters, tol=tol, generator=generator)
    return abs(lo / hi) if hi != 0 else math.nan


def hutchinson_trace(
    hvp: HVP,
    params: Mapping[str, Tensor],
    *,
    samples: int = 100,
    generator: torch.Generator | None = None,
    progress: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Hutchinson's estimate of tr(H) with Rademacher probes: ``(trace, standard error)``.

    Args:
        hvp: the operator, from `hvp_fn`.
        params: a template of the vectors `hvp` takes.
        samples: how many probes.
        generator: for the probes (default: a fresh one seeded 0).
        progress: called after every Hessian-vector product.

    Returns:
        ``(trace, standard error)``: the error is the sample standard deviation of
        ``v^T H v`` over sqrt(samples) (NaN for one sample).
    """
    if samples < 1:
        raise InputError(f"samples must be positive, got {samples!r}")
    flat = _Flat(params)
    gen = _generator(generator)
    est = []
    for _ in range(samples):
        v = torch.randint(0, 2, (flat.dim,), generator=gen).to(flat.device, flat.dtype) * 2 - 1
        est.append(float(v @ flat.flatten(hvp(flat.unflatten(v)))))
        if progress is not None:
            progress()
    arr = np.asarray(est)
    stderr = float(arr.std(ddof=1) / math.sqrt(samples)) if samples > 1 else math.nan
    return float(arr.mean()), stderr


def _hvp_at(
    model: nn.Module,
    x: Any,
    y: Tensor | None,
    *,
    task: Any,
    buffers: Mapping[str, Tensor] | None,
    batch_size: int,
    loss: str | Callable[[Tensor, Tensor], Tensor],
) -> Callable[[Mapping[str, Tensor], Sequence[str]], HVP]:
    """``(point, wrt) -> hvp`` of the built-in loss on ``(x, y)``, or of `task` on the
    batches `x` (`y` None; see `landscape.analysis.objective`)."""
    if task is None:
        if y is None:
            raise InputError("targets y are needed for the built-in loss; or pass task=")
        return lambda point, wrt: hvp_fn(
            model, x, y, params=point, buffers=buffers, batch_size=batch_size, loss=loss, wrt=wrt
        )
    if y is not None:
        raise InputError(
            "with a task the data is one argument: pass the batches as x and no y", arg="task"
        )
    if buffers is not None:
        raise InputError("with a task the model's own buffers are used; drop buffers", arg="task")
    from landscape.analysis.objective import objective  # it imports this module

    device = next(model.parameters()).device
    obj = objective(model, x, task=task, batch_size=batch_size, device=device)
    return lambda point, wrt: obj.hvp(wrt, params=point)


def _default_params(model: nn.Module, params: Mapping[str, Tensor] | None) -> Params:
    base = {n: p.detach() for n, p in model.named_parameters()}
    base.update({n: p.detach() for n, p in (params or {}).items()})
    return base


def extreme_eigenvalue_map(
    model: nn.Module,
    directions: Mapping[str, Mapping[str, Tensor]],
    x: Any,
    y: Tensor | None = None,
    *,
    alpha: np.ndarray,
    beta: np.ndarray | None = None,
    params: Mapping[str, Tensor] | None = None,
    buffers: Mapping[str, Tensor] | None = None,
    batch_size: int = 256,
    wrt: Sequence[str] | None = None,
    loss: str | Callable[[Tensor, Tensor], Tensor] = "ce",
    iters: int = 50,
    tol: float = 1e-3,
    generator: torch.Generator | None = None,
    progress: Callable[[int, int], None] | None = None,
    task: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(lambda_min, lambda_max)`` of the Hessian at every grid point of a surface.

    The point ``(i, j)`` is ``params + alpha[i] * directions["x"] + beta[j] * directions["y"]``
    (as in the surface file; `params` default to the model's own). The Hessian is taken
    over `wrt`, by default the parameters whose direction is nonzero in some axis (with
    ``ignore=biasbn``, the weights). With `task` (a `landscape.Task` or a
    ``loss_fn(model, batch)``), the loss is the task's sample mean over the batches `x`
    (`y` None), as for `hessian_spectrum`.

    Returns:
        Two float64 arrays of shape (nx, ny), or (nx,) when `beta` is None.
    """
    base = _default_params(model, params)
    dx = directions["x"]
    dy = directions.get("y") if beta is not None else None
    if beta is not None and dy is None:
        raise InputError("a 2-D grid (beta given) needs directions['y']")
    if wrt is None:
        wrt = [
            n for n in base if any(d is not None and n in d and bool(d[n].any()) for d in (dx, dy))
        ]
    if not wrt:
        raise InputError("no parameter has a nonzero direction; pass wrt=[...] names")
    hvp_at = _hvp_at(model, x, y, task=task, buffers=buffers, batch_size=batch_size, loss=loss)
    alpha = np.asarray(alpha, dtype=np.float64)
    shape = (len(alpha),) if beta is None else (len(alpha), len(beta))
    lo, hi = np.full(shape, np.nan), np.full(shape, np.nan)
    gen = _generator(generator)
    total = int(np.prod(shape))
    for done, idx in enumerate(np.ndindex(*shape)):
        point = dict(base)
        for d, coord in ((dx, alpha[idx[0]]), (dy, None if beta is None else beta[idx[1]])):
            if d is None or coord is None:
                continue
            for n, t in d.items():
                if n in point:
                    point[n] = point[n] + float(coord) * t.to(point[n])
        hvp = hvp_at(point, wrt)
        template = {n: point[n] for n in wrt}
        lo[idx], hi[idx] = extreme_eigenvalues(hvp, template, iters=iters, tol=tol, generator=gen)
        if progress is not None:
            progress(done + 1, total)
    return lo, hi


def curvature_map(
    model: nn.Module,
    directions: Mapping[str, Mapping[str, Tensor]],
    x: Any,
    y: Tensor | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """``|lambda_min / lambda_max|`` over a surface grid (Li et al. 2018, Sec. 6, Fig. 8).

    Near 0: locally convex (no significant negative curvature); large: strong negative
    curvature. (`surface_curvature_map` does it for a surface file, in one call.)

    Args:
        model: the network at theta*.
        directions: ``{"x": {name: tensor}, "y": ...}``, the surface's directions.
        x, y: the data (inputs and targets); with ``task=``, the batches as x and no y.
        **kwargs: the grid and settings, as in `extreme_eigenvalue_map` (``task=`` too).

    Returns:
        The ratio at every grid point, the grid's shape; NaN where undefined.
    """
    lo, hi = extreme_eigenvalue_map(model, directions, x, y, **kwargs)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(lo / hi)
    ratio[~np.isfinite(ratio)] = np.nan
    return ratio


def eigenvector_directions(
    model: nn.Module,
    x: Any,
    y: Tensor | None = None,
    *,
    params: Mapping[str, Tensor] | None = None,
    buffers: Mapping[str, Tensor] | None = None,
    batch_size: int = 256,
    wrt: Sequence[str] | None = None,
    loss: str | Callable[[Tensor, Tensor], Tensor] = "ce",
    iters: int = 100,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    task: Any = None,
) -> dict[str, Params]:
    """The two sharpest Hessian eigenvectors as plotting directions ``{"x": ..., "y": ...}``.

    The Hessian is taken over `wrt`, by default every parameter with more than one
    dimension (bias and BN held fixed, like ``ignore=biasbn``); every other parameter gets
    a zero direction. Each direction has unit norm (use them with ``norm=none``: the
    coordinates are then Euclidean distances) and a fixed sign (largest entry positive).

    Args:
        model: the network at theta*.
        x, y: the data (inputs and targets); with `task`, any batches as x and no y.
        params, buffers: theta* (default the model's own).
        batch_size: samples per pass.
        wrt: the parameters the Hessian is over (default: those with dim > 1).
        loss: ``"ce"``, ``"mse"`` or a callable ``(output, target) -> mean loss``.
        iters, tol, generator: as in `top_eigenvalues`.
        task: a `landscape.Task` or a ``loss_fn(model, batch)``: the Hessian of its sample
            mean over the batches `x` instead of `loss` (`landscape.analysis.objective`).

    Returns:
        ``{"x": {name: tensor}, "y": {name: tensor}}`` over every parameter.
    """
    base = _default_params(model, params)
    if wrt is None:
        wrt = [n for n, t in base.items() if t.dim() > 1]
    hvp = _hvp_at(model, x, y, task=task, buffers=buffers, batch_size=batch_size, loss=loss)(
        base, wrt
    )
    _, vecs = top_eigenvalues(
        hvp, {n: base[n] for n in wrt}, 2, iters=iters, tol=tol, generator=generator
    )
    out = {}
    for axis, vec in zip(("x", "y"), vecs, strict=True):
        flat = torch.cat([t.reshape(-1) for t in vec.values()])
        sign = 1.0 if float(flat[flat.abs().argmax()]) >= 0 else -1.0
        out[axis] = {
            n: (sign * vec[n]).float() if n in vec else torch.zeros_like(t, dtype=torch.float32)
            for n, t in base.items()
        }
    return out


@dataclass(frozen=True)
class HessianSpectrum:
    """What `hessian_spectrum` found at theta*.

    Attributes:
        top_eigenvalues: the k largest, descending (`lambda_max` is the first).
        lambda_min: the smallest; `ratio` is ``|lambda_min / lambda_max|``.
        trace, trace_stderr: Hutchinson's estimate and its standard error (NaN if skipped).
        parameters: the Hessian's side (the parameters in `wrt`).
        samples: the data points used.
        largest, smallest: the two `LanczosResult` runs.
    """

    top_eigenvalues: np.ndarray  # the k largest, descending
    lambda_min: float
    trace: float  # Hutchinson's estimate; NaN when not asked for
    trace_stderr: float
    parameters: int  # the size of the Hessian's side (the parameters in `wrt`)
    samples: int
    largest: LanczosResult
    smallest: LanczosResult

    @property
    def lambda_max(self) -> float:
        return float(self.top_eigenvalues[0])

    @property
    def ratio(self) -> float:
        """|lambda_min / lambda_max| (Li et al. 2018, Sec. 6): near 0, locally convex."""
        return abs(self.lambda_min / self.lambda_max) if self.lambda_max != 0 else math.nan

    @property
    def converged(self) -> bool:
        return self.largest.converged and self.smallest.converged

    def __repr__(self) -> str:
        top = ", ".join(f"{v:.4g}" for v in self.top_eigenvalues)
        trace = f"{self.trace:.4g} +- {self.trace_stderr:.2g}" if math.isfinite(self.trace) else "-"
        return (
            f"HessianSpectrum(top=[{top}], lambda_min={self.lambda_min:.4g}, "
            f"ratio={self.ratio:.3g}, trace={trace}, {self.parameters:,} parameters, "
            f"{self.samples} samples{'' if self.converged else ', NOT converged'})"
        )


def hessian_spectrum(
    model: nn.Module | str | os.PathLike,
    data: Any,
    *,
    k: int = 3,
    iters: int = 100,
    tol: float = 1e-4,
    trace_samples: int = 50,
    wrt: str = "weights",
    params: Sequence[str] | str = (),
    exclude: Sequence[str] | str = (),
    loss: str = "ce",
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    task: Any = None,
    loss_fn: Callable[[nn.Module, Any], Tensor] | None = None,
) -> HessianSpectrum:
    """The Hessian of the mean loss at theta*, in one call: top eigenvalues, lambda_min, trace.

    Args:
        model: a network, or a checkpoint (path or ``pretrained:NAME``).
        data: a `DataTensors` (``landscape.load_split``) or ready tensors ``(x, y)``; with
            a task, any batches as `landscape.compute_surface` takes them.
        k: how many of the largest eigenvalues.
        iters, tol: most Lanczos steps, and the relative residual of a converged value.
        trace_samples: Rademacher probes of Hutchinson's trace (0: no trace).
        wrt: ``"weights"`` (conv and linear weights, as ``ignore=biasbn``) or ``"all"``.
        params, exclude: a parameter selection within `wrt` (fnmatch globs over parameter
            names, or groups such as ``"stage2"``: `landscape.analysis.spectrum.
            select_parameters`); the Hessian is then the sub-Hessian over them.
        loss: ``"ce"`` or ``"mse"``.
        batch_size: samples per pass; the result does not depend on it.
        seed: each estimate starts from its own generator with this seed (reproducible).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        progress: a progress bar over the Hessian-vector products.
        task: a `landscape.Task` or its ``loss_fn(model, batch)`` (per-sample losses)
            instead of `loss`: the Hessian of its sample mean over `data`'s batches
            (`landscape.analysis.objective`; every curvature analysis takes it the same way).
        loss_fn: the same as ``task=loss_fn`` (kept for earlier callers).

    Returns:
        The `HessianSpectrum` (eigenvalues, lambda_min, ratio, trace, both Lanczos runs).

    A Lanczos run that stops before converging warns once (`UserWarning`), as the
    command line does; raise `iters` for sharper values.
    """
    for name, value in (("k", k), ("iters", iters), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}", arg=name)
    if k > iters:
        raise InputError(f"k {k} needs at least as many iters; got iters {iters}", arg="k")
    if loss_fn is not None and task is not None:
        raise InputError("give the task once: task= or loss_fn=, not both", arg="task")
    from landscape.analysis.objective import objective  # it imports this module
    from landscape.analysis.spectrum import select_parameters

    obj = objective(
        model, data, task=task if task is not None else loss_fn, loss=loss,
        batch_size=batch_size, device=device,
    )  # fmt: skip
    model = obj.model
    names = select_parameters(model, params, exclude, wrt=wrt)
    template = {n: p.detach() for n, p in model.named_parameters() if n in names}
    hvp = obj.hvp(names)
    n_samples = obj.n
    # The cost, said up front: each Hessian-vector product is about two passes (forward and
    # double backward) over every sample; iters and trace_samples set how many there are.
    n_params = sum(t.numel() for t in template.values())
    bar = progress_bar(
        progress,
        total=2 * iters + trace_samples,
        unit="hvp",
        desc=f"Hessian of {n_params:,} parameters on {n_samples:,} samples "
        f"(up to {2 * iters} Lanczos + {trace_samples} trace products)",
    )
    step = bar.update

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    def settle(result: LanczosResult) -> LanczosResult:
        """A run that converged early took fewer steps: the bar's total follows."""
        bar.total -= iters - result.iterations
        bar.refresh()
        return result

    with bar, LanczosWarnings():
        top = settle(
            lanczos(
                hvp, template, iters=iters, tol=tol, which="largest", k=k, generator=gen(),
                progress=step,
            )
        )  # fmt: skip
        low = settle(
            lanczos(
                hvp,
                template,
                iters=iters,
                tol=tol,
                which="smallest",
                generator=gen(),
                progress=step,
            )
        )
        trace = stderr = math.nan
        if trace_samples:
            trace, stderr = hutchinson_trace(
                hvp, template, samples=trace_samples, generator=gen(), progress=step
            )
    unconverged = [w for w, r in (("largest", top), ("smallest", low)) if not r.converged]
    if unconverged:
        warnings.warn(
            f"Lanczos did not converge for the {' and '.join(unconverged)} eigenvalues within "
            f"{iters} steps (tol {tol:g}); raise iters for sharper values",
            stacklevel=2,
        )
    return HessianSpectrum(
        top_eigenvalues=top.eigenvalues[::-1][:k].copy(),
        lambda_min=float(low.eigenvalues[0]),
        trace=trace,
        trace_stderr=stderr,
        parameters=sum(t.numel() for t in template.values()),
        samples=n_samples,
        largest=top,
        smallest=low,
    )


def weight_names(model: nn.Module, wrt: str = "weights") -> list[str]:
    """Parameters the Hessian is taken over.

    Args:
        model: the network.
        wrt: ``"weights"`` (those with dim > 1, as ignore=biasbn) or ``"all"``.

    Returns:
        Their names, in ``named_parameters()`` order.
    """
    named = list(model.named_parameters())
    if wrt == "all":
        return [n for n, _ in named]
    if wrt != "weights":
        raise InputError(f"wrt must be weights or all; got {wrt!r}", arg="wrt")
    return [n for n, p in named if p.dim() > 1]


class LanczosWarnings(logging.Filter):
    """Counts (and silences) this module's per-run "did not converge" warnings.

    A caller reports them once, in its own words, instead of one line per run::

        with LanczosWarnings() as warned:
            ...
        if warned.count: ...
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._logger = logging.getLogger(__name__)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Lanczos did not converge"):
            self.count += 1
            return False
        return True

    def __enter__(self) -> LanczosWarnings:
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeFilter(self)
