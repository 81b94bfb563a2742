"""The Hessian's whole spectrum and its curvature per block.

* Spectral density by stochastic Lanczos quadrature (SLQ; Golub & Meurant 2009, Lin, Saad
  & Yang 2016, Ghorbani et al. 2019, PyHessian's ``density()``): for each random probe
  ``v`` (Rademacher or Gaussian), `depth` Lanczos steps from ``v / |v|`` with full
  reorthogonalization give a tridiagonal ``T``; its eigenvalues are the quadrature
  ``nodes`` and the squared first components of its eigenvectors the ``weights``, so that
  ``v^T f(H) v / |v|^2 ~ sum_i weights_i f(nodes_i)`` (exact for polynomials of degree
  below ``2 * depth``). The spectral measure ``(1/P) sum_j delta(lambda_j)`` is estimated by
  the average over probes of ``sum_i weights_i delta(nodes_i)``; a density follows by
  Gaussian smoothing, at any width, from the stored nodes and weights.
* Curvature per block: top eigenvalue (Lanczos, with its residual bound) and trace
  (Hutchinson, with its standard error over probes) of the Hessian restricted to one
  stage, block or any glob-selected set of parameters (the sub-Hessian: the others held
  fixed).

Parameter selections are `fnmatch` globs over ``model.named_parameters()`` names and the
named groups of the built-in networks (`parameter_groups`): ``stem``, ``stage1`` ..
``stage4``, ``head`` and each block, ``stage2.block0`` etc.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from landscape.analysis.hessian import (
    HVP,
    LanczosResult,
    LanczosWarnings,
    _Flat,
    _generator,
    hutchinson_trace,
    lanczos,
    weight_names,
)
from landscape.analysis.objective import Objective, objective
from landscape.core.errors import InputError
from landscape.core.progress import progress_bar
from landscape.surface.directions import selected_names

__all__ = [
    "PROBES",
    "SLQResult",
    "slq",
    "SpectralDensity",
    "spectral_density",
    "density_curve",
    "wasserstein1",
    "parameter_groups",
    "select_parameters",
    "BlockCurvature",
    "block_curvature",
    "per_block_curvature",
    "t_quantile",
]

PROBES = ("rademacher", "gaussian")
_STAGE = re.compile(r"^layer(\d+)$")


# ---------------------------------------------------------------- parameter selection


def parameter_groups(model: nn.Module) -> dict[str, list[str]]:
    """Named groups of parameters of a network built of stages (`landscape.models`' ResNets
    and plain nets, torchvision's ResNets): ``stem``, ``stage1`` .. ``stageN``,
    ``stageK.blockI`` and ``head``, each a list of parameter names in model order.

    A stage is a top-level child ``layerK`` that is an `nn.Sequential` of blocks; the stem
    is every parameter before the first stage, the head every one after the last. A model
    without such children has no groups (an empty dict): select by globs instead.

    Args:
        model: the network.

    Returns:
        ``{group: [parameter names]}``, stages and their blocks in model order.
    """
    children = list(model.named_children())
    stages = [(n, m) for n, m in children if _STAGE.match(n) and isinstance(m, nn.Sequential)]
    if not stages:
        return {}
    groups: dict[str, list[str]] = {"stem": []}
    first = children.index(stages[0])
    last = children.index(stages[-1])
    head: list[str] = []
    for i, (name, child) in enumerate(children):
        names = [f"{name}.{p}" for p, _ in child.named_parameters()]
        if i < first:
            groups["stem"] += names
        elif i > last:
            head += names
        elif (stage := _STAGE.match(name)) and isinstance(child, nn.Sequential):
            key = f"stage{stage.group(1)}"
            groups[key] = names
            for b, block in child.named_children():
                groups[f"{key}.block{b}"] = [f"{name}.{b}.{p}" for p, _ in block.named_parameters()]
        else:  # something between stages: counted with the stage before it
            groups.setdefault("between", []).extend(names)
    groups["head"] = head
    # Parameters registered on the model itself (not in a child) go with the head.
    groups["head"] += [n for n, _ in model.named_parameters(recurse=False)]
    return {k: v for k, v in groups.items() if v}


def select_parameters(
    model: nn.Module,
    params: Sequence[str] | str = (),
    exclude: Sequence[str] | str = (),
    *,
    wrt: str = "weights",
) -> list[str]:
    """The names of the parameters a curvature is taken over, in model order.

    Args:
        model: the network.
        params: globs over ``named_parameters()`` names or group names of
            `parameter_groups` (``"stage2"``, ``"stage1.block0"``, ``"head"``); a string is
            split at commas. Empty: every parameter.
        exclude: globs or group names removed after `params`.
        wrt: ``"weights"`` (parameters with dim > 1, as ``ignore=biasbn``) or ``"all"``.

    Returns:
        The selected names that `wrt` admits; an empty selection is refused.
    """
    params, exclude = split_names(params), split_names(exclude)
    groups = parameter_groups(model)
    names = [n for n, _ in model.named_parameters()]

    globs = [p for p in params if p not in groups]
    keep_groups = {n for p in params if p in groups for n in groups[p]}
    keep = selected_names(names, globs, (), parameters=None) if globs else set()
    if not params:
        keep = set(names)
    keep |= keep_groups
    drop_groups = {n for p in exclude if p in groups for n in groups[p]}
    drop_globs = [p for p in exclude if p not in groups]
    keep -= drop_groups
    keep = selected_names(sorted(keep), (), drop_globs) if drop_globs else keep
    admitted = set(weight_names(model, wrt))
    chosen = [n for n in names if n in keep and n in admitted]
    if not chosen:
        known = ", ".join(groups) if groups else "none (this model has no layerK stages)"
        raise InputError(
            f"the selection params={params} exclude={exclude} (wrt {wrt}) leaves no parameter; "
            f"groups: {known}",
            arg="params",
        )
    return chosen


def split_names(value: Sequence[str] | str | None) -> list[str]:
    """Globs or names as a list: ``"a,b"`` or ``["a", "b"]``; blanks dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() for v in value if v.strip()]


# ---------------------------------------------------------------- SLQ


def t_quantile(dof: int, level: float = 0.95) -> float:
    """The two-sided Student-t quantile for `dof` degrees of freedom (NaN below 1)."""
    if dof < 1:
        return math.nan
    # Cornish-Fisher expansion around the normal quantile: < 1e-3 relative for dof >= 3,
    # worse at the smallest dof (torch has no t quantile): there, tabulated values at 95%.
    if level == 0.95 and dof <= 9:
        return (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)[dof - 1]
    z = math.sqrt(2) * float(torch.erfinv(torch.tensor(level, dtype=torch.float64)))
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3


@dataclass(frozen=True)
class SLQResult:
    """Stochastic Lanczos quadrature of one operator, per probe.

    Attributes:
        nodes: per probe, the Ritz values of its Lanczos tridiagonal, ascending.
        weights: per probe, the matching quadrature weights (they sum to 1).
        norms2: per probe, ``|v|^2`` (the dimension for Rademacher probes).
        quad_forms: per probe, ``v^T H v`` (``|v|^2 sum_i weights_i nodes_i``).
        residuals: per probe, ``|beta_m s_mi|`` of each node: a bound on the distance of
            that Ritz value to an eigenvalue.
        dimension: the operator's side P.
        depth: the Lanczos depth asked for (a probe stops sooner when its Krylov space is
            invariant: its quadrature is then exact).
        probe: ``"rademacher"`` or ``"gaussian"``.
    """

    nodes: list[np.ndarray]
    weights: list[np.ndarray]
    norms2: np.ndarray
    quad_forms: np.ndarray
    residuals: list[np.ndarray]
    dimension: int
    depth: int
    probe: str

    @property
    def probes(self) -> int:
        return len(self.nodes)

    @property
    def trace_samples(self) -> np.ndarray:
        """Per probe, Hutchinson's ``v^T H v``: unbiased for tr(H)."""
        return self.quad_forms

    @property
    def trace(self) -> float:
        return float(np.mean(self.quad_forms))

    @property
    def trace_stderr(self) -> float:
        n = len(self.quad_forms)
        return float(np.std(self.quad_forms, ddof=1) / math.sqrt(n)) if n > 1 else math.nan

    def trace_interval(self, level: float = 0.95) -> tuple[float, float]:
        """A `level` interval for tr(H) over probes (Student t, probes - 1 dof)."""
        half = t_quantile(self.probes - 1, level) * self.trace_stderr
        return self.trace - half, self.trace + half

    @property
    def lambda_min(self) -> float:
        """The smallest node over all probes (a Ritz value: >= lambda_min)."""
        return float(min(n[0] for n in self.nodes))

    @property
    def lambda_max(self) -> float:
        """The largest node over all probes (a Ritz value: <= lambda_max)."""
        return float(max(n[-1] for n in self.nodes))

    def measure(self) -> tuple[np.ndarray, np.ndarray]:
        """The estimated spectral measure: all nodes and their weights / probes (sum 1)."""
        nodes = np.concatenate(self.nodes)
        weights = np.concatenate(self.weights) / self.probes
        return nodes, weights

    def convergence(self) -> list[dict[str, Any]]:
        """Per probe: steps taken and the residual bounds of the two extreme nodes."""
        return [
            {
                "steps": len(n),
                "lambda_min": float(n[0]),
                "lambda_min_residual": float(r[0]),
                "lambda_max": float(n[-1]),
                "lambda_max_residual": float(r[-1]),
            }
            for n, r in zip(self.nodes, self.residuals, strict=True)
        ]


def slq(
    hvp: HVP,
    params: Mapping[str, Tensor],
    *,
    probes: int = 10,
    depth: int = 80,
    probe: str = "rademacher",
    generator: torch.Generator | None = None,
    progress: Callable[[], None] | None = None,
) -> SLQResult:
    """Stochastic Lanczos quadrature of the operator `hvp`, full reorthogonalization.

    Memory: ``depth + 1`` vectors of the parameter count; cost: ``probes * depth``
    Hessian-vector products.

    Args:
        hvp: the operator, from `hvp_fn`.
        params: a template of the vectors `hvp` takes (names, shapes, dtype, device).
        probes: how many random start vectors.
        depth: Lanczos steps per probe (at most the dimension).
        probe: ``"rademacher"`` (+-1 entries) or ``"gaussian"``.
        generator: for the probes (default: a fresh one seeded 0).
        progress: called after every Hessian-vector product.

    Returns:
        The `SLQResult`: per probe the nodes, weights and ``v^T H v``.
    """
    if probe not in PROBES:
        raise InputError(f"probe must be one of {PROBES}; got {probe!r}", arg="probe")
    for name, value in (("probes", probes), ("depth", depth)):
        if not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}", arg=name)
    flat = _Flat(params)
    gen = _generator(generator)
    m_max = min(depth, flat.dim)
    basis = torch.zeros(m_max + 1, flat.dim, device=flat.device, dtype=flat.dtype)
    nodes, weights, resids, norms2, quads = [], [], [], [], []
    for _ in range(probes):
        if probe == "rademacher":
            v = (torch.randint(0, 2, (flat.dim,), generator=gen) * 2 - 1).to(torch.float64)
        else:
            v = torch.randn(flat.dim, generator=gen, dtype=torch.float64)
        norm2 = float(v @ v)
        basis.zero_()
        basis[0] = (v / math.sqrt(norm2)).to(flat.device, flat.dtype)
        alphas: list[float] = []
        betas: list[float] = []
        b = 0.0
        for j in range(m_max):
            w = flat.flatten(hvp(flat.unflatten(basis[j])))
            if progress is not None:
                progress()
            alphas.append(float(w @ basis[j]))
            for _ in range(2):  # full reorthogonalization (twice is enough)
                w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
            b = float(w.norm())
            anorm = max(abs(a) for a in alphas) + (max(betas) if betas else 0.0)
            if j + 1 == m_max or b <= torch.finfo(flat.dtype).eps ** 0.75 * max(anorm, 1e-30):
                if b <= torch.finfo(flat.dtype).eps ** 0.75 * max(anorm, 1e-30):
                    b = 0.0  # invariant Krylov space: the quadrature is exact
                break
            betas.append(b)
            basis[j + 1] = w / b
        tri = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta, s = np.linalg.eigh(tri)
        wts = s[0] ** 2
        nodes.append(theta)
        weights.append(wts / wts.sum())
        resids.append(np.abs(b * s[-1]))
        norms2.append(norm2)
        quads.append(norm2 * float(np.sum(wts * theta)))
    return SLQResult(
        nodes=nodes,
        weights=weights,
        norms2=np.asarray(norms2),
        quad_forms=np.asarray(quads),
        residuals=resids,
        dimension=flat.dim,
        depth=depth,
        probe=probe,
    )


def density_curve(
    nodes: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    *,
    grid: np.ndarray | None = None,
    sigma: float | None = None,
    points: int = 1000,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Gaussian-smoothed spectral densities, one per probe.

    Args:
        nodes, weights: per probe (as `SLQResult` or a density file holds them).
        grid: where to evaluate (default: `points` values over the nodes' range, padded by
            5% and 3 sigma on each side).
        sigma: the Gaussian's standard deviation (default PyHessian's rule:
            ``sigma^2 = 1e-5 * max(1, lambda_max - lambda_min)``).
        points: the default grid's size.

    Returns:
        ``(grid, densities, sigma)``: densities is (probes, len(grid)); each integrates to 1
        (up to the grid's reach). Their mean is the SLQ density estimate.
    """
    lo = min(float(n.min()) for n in nodes)
    hi = max(float(n.max()) for n in nodes)
    if sigma is None:
        sigma = math.sqrt(1e-5 * max(1.0, hi - lo))
    if not sigma > 0:
        raise InputError(f"sigma must be positive; got {sigma!r}", arg="sigma")
    if grid is None:
        pad = 0.05 * (hi - lo) + 3 * sigma
        grid = np.linspace(lo - pad, hi + pad, points)
    grid = np.asarray(grid, dtype=np.float64)
    out = np.empty((len(nodes), len(grid)))
    norm = 1.0 / (sigma * math.sqrt(2 * math.pi))
    for k, (n, w) in enumerate(zip(nodes, weights, strict=True)):
        z = (grid[:, None] - np.asarray(n)[None, :]) / sigma
        out[k] = norm * (np.exp(-0.5 * z**2) @ np.asarray(w))
    return grid, out, float(sigma)


def wasserstein1(
    a_nodes: np.ndarray,
    a_weights: np.ndarray,
    b_nodes: np.ndarray,
    b_weights: np.ndarray | None = None,
) -> float:
    """The Wasserstein-1 distance between two discrete measures on the line.

    ``W1 = integral |F_a(t) - F_b(t)| dt`` of their cumulative distributions; weights are
    normalized to sum 1 (`b_weights` default: uniform, e.g. the exact eigenvalues). Use
    it to compare two networks' spectra (`SLQResult.measure`) or an estimate with exact
    eigenvalues.

    Args:
        a_nodes, a_weights: the first measure's atoms and weights.
        b_nodes, b_weights: the second's (weights default uniform).

    Returns:
        The distance, in the nodes' units.
    """
    a_nodes, b_nodes = np.asarray(a_nodes, float), np.asarray(b_nodes, float)
    a_w = np.asarray(a_weights, float) / np.sum(a_weights)
    b_w = (
        np.full(len(b_nodes), 1.0 / len(b_nodes))
        if b_weights is None
        else np.asarray(b_weights, float) / np.sum(b_weights)
    )
    xs = np.concatenate([a_nodes, b_nodes])
    ws = np.concatenate([a_w, -b_w])
    order = np.argsort(xs, kind="stable")
    xs, cdf_diff = xs[order], np.cumsum(ws[order])
    return float(np.sum(np.abs(cdf_diff[:-1]) * np.diff(xs)))


@dataclass(frozen=True)
class SpectralDensity:
    """What `spectral_density` found: the SLQ result and its setting.

    Attributes:
        slq: per-probe nodes, weights and ``v^T H v`` (`SLQResult`).
        parameters: the names the Hessian is over (its side is `slq.dimension`).
        samples: the data points of the mean loss.
        seconds: compute time.
    """

    slq: SLQResult
    parameters: list[str]
    samples: int
    seconds: float

    @property
    def trace(self) -> float:
        return self.slq.trace

    @property
    def trace_stderr(self) -> float:
        return self.slq.trace_stderr

    def density(
        self, *, sigma: float | None = None, grid: np.ndarray | None = None, points: int = 1000
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """`density_curve` of the stored nodes and weights."""
        return density_curve(
            self.slq.nodes, self.slq.weights, sigma=sigma, grid=grid, points=points
        )

    def __repr__(self) -> str:
        lo, hi = self.slq.trace_interval()
        return (
            f"SpectralDensity({self.slq.probes} {self.slq.probe} probes x {self.slq.depth} steps, "
            f"nodes in [{self.slq.lambda_min:.4g}, {self.slq.lambda_max:.4g}], trace "
            f"{self.trace:.4g} +- {self.trace_stderr:.2g} (95% [{lo:.4g}, {hi:.4g}]), "
            f"{self.slq.dimension:,} parameters, {self.samples} samples)"
        )


def _setup(
    model: Any,
    data: Any,
    device: str | torch.device,
    params: Any,
    exclude: Any,
    wrt: str,
    *,
    task: Any = None,
    loss: str = "ce",
    batch_size: int = 256,
) -> tuple[Objective, list[str]]:
    """The loss (built-in or `task`) on its data, and the selected parameter names."""
    obj = objective(model, data, task=task, loss=loss, batch_size=batch_size, device=device)
    return obj, select_parameters(obj.model, params, exclude, wrt=wrt)


def spectral_density(
    model: nn.Module | str | os.PathLike,
    data: Any,
    *,
    probes: int = 10,
    depth: int = 80,
    probe: str = "rademacher",
    params: Sequence[str] | str = (),
    exclude: Sequence[str] | str = (),
    wrt: str = "weights",
    loss: str = "ce",
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    task: Any = None,
) -> SpectralDensity:
    """The Hessian's spectral density at theta* by stochastic Lanczos quadrature.

    Args:
        model: a network, or a checkpoint (path or ``pretrained:NAME``).
        data: a `DataTensors` (``landscape.load_split``) or ready tensors ``(x, y)``.
        probes: random start vectors (the spread over them is the estimate's uncertainty).
        depth: Lanczos steps per probe (full reorthogonalization: ``depth`` vectors kept).
        probe: ``"rademacher"`` or ``"gaussian"``.
        params, exclude: the parameter selection (`select_parameters`: globs and groups).
        wrt: ``"weights"`` (dim > 1) or ``"all"``.
        loss: ``"ce"``, ``"mse"`` or ``"mse-softmax"``.
        batch_size: samples per pass; the result does not depend on it.
        seed: of the probes.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        progress: a progress bar over the Hessian-vector products.
        task: a `landscape.Task` or a ``loss_fn(model, batch)`` instead of `loss`: the
            Hessian of its sample mean over `data`, any batches as `compute_surface` takes
            them (`landscape.analysis.objective`).

    Returns:
        The `SpectralDensity`; ``.density(sigma=...)`` smooths it, ``.slq`` holds the
        nodes and weights per probe and the trace with its standard error.
    """
    import time

    obj, names = _setup(
        model, data, device, params, exclude, wrt, task=task, loss=loss, batch_size=batch_size
    )
    template = {n: p.detach() for n, p in obj.model.named_parameters() if n in set(names)}
    hvp = obj.hvp(names)
    dim = sum(t.numel() for t in template.values())
    bar = progress_bar(progress, total=probes * min(depth, dim), unit="hvp", desc="SLQ")
    start = time.perf_counter()
    with bar:
        res = slq(
            hvp, template, probes=probes, depth=depth, probe=probe,
            generator=torch.Generator().manual_seed(seed), progress=bar.update,
        )  # fmt: skip
    return SpectralDensity(res, names, obj.n, time.perf_counter() - start)


# ---------------------------------------------------------------- per block


@dataclass(frozen=True)
class BlockCurvature:
    """The curvature of the Hessian restricted to one parameter group.

    Attributes:
        name: the group (``stage2``, ``stage1.block0``, a glob).
        parameters: how many scalars the group holds (the sub-Hessian's side).
        lambda_max: the top Ritz value (Lanczos): never above the top eigenvalue.
        lambda_max_bound: its Lanczos residual ``|beta_m s_m|``: the top eigenvalue lies in
            ``[lambda_max, lambda_max + bound]`` (when the run found the top eigenvalue's
            direction, which a random start does with probability 1).
        trace, trace_stderr: Hutchinson's estimate and its standard error over probes.
        probes: Hutchinson probes; steps, converged: of the Lanczos run.
        names: the parameter names.
        lambda_max_stderr: the delete-one-batch jackknife standard error of lambda_max over
            `jackknife` batches of the data (NaN when not asked for): the uncertainty from
            the data subset, beside the residual bound's from Lanczos.
        jackknife: how many batches (0: none).
    """

    name: str
    parameters: int
    lambda_max: float
    lambda_max_bound: float
    trace: float
    trace_stderr: float
    probes: int
    steps: int
    converged: bool
    names: list[str] = field(default_factory=list)
    lambda_max_stderr: float = math.nan
    jackknife: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameters": self.parameters,
            "lambda_max": self.lambda_max,
            "lambda_max_bound": self.lambda_max_bound,
            "trace": self.trace,
            "trace_stderr": self.trace_stderr,
            "trace_probes": self.probes,
            "lanczos_steps": self.steps,
            "converged": self.converged,
            "lambda_max_stderr": self.lambda_max_stderr,
            "jackknife_batches": self.jackknife,
            "names": list(self.names),
        }


def block_curvature(
    hvp_for: Callable[[list[str]], HVP],
    template: Mapping[str, Tensor],
    names: Sequence[str],
    *,
    name: str = "",
    iters: int = 100,
    tol: float = 1e-4,
    trace_samples: int = 20,
    seed: int = 0,
    progress: Callable[[], None] | None = None,
    leave_one_out: Sequence[Callable[[list[str]], HVP]] = (),
) -> BlockCurvature:
    """Top eigenvalue and trace of the sub-Hessian over `names`.

    Args:
        hvp_for: ``names -> hvp`` over those names (``lambda n: hvp_fn(..., wrt=n)``).
        template: parameter values by name (at least `names`).
        names: the block's parameter names.
        name: the block's label.
        iters, tol: Lanczos steps and relative residual.
        trace_samples: Hutchinson probes (0: no trace).
        seed: of the Lanczos start and the probes.
        progress: called after every Hessian-vector product.
        leave_one_out: ``names -> hvp`` factories, each on the data with one batch left
            out: lambda_max is recomputed on each for its jackknife standard error.

    Returns:
        The `BlockCurvature`.
    """
    names = list(names)
    sub = {n: template[n] for n in names}
    hvp = hvp_for(names)
    res: LanczosResult = lanczos(
        hvp, sub, iters=iters, tol=tol, which="largest",
        generator=torch.Generator().manual_seed(seed), progress=progress,
    )  # fmt: skip
    trace = stderr = math.nan
    if trace_samples:
        trace, stderr = hutchinson_trace(
            hvp, sub, samples=trace_samples, generator=torch.Generator().manual_seed(seed),
            progress=progress,
        )  # fmt: skip
    jack_se = math.nan
    if len(leave_one_out) > 1:
        tops = np.array([
            lanczos(
                factory(names), sub, iters=iters, tol=tol, which="largest",
                generator=torch.Generator().manual_seed(seed), progress=progress,
            ).eigenvalues[-1]
            for factory in leave_one_out
        ])  # fmt: skip
        b = len(tops)
        jack_se = float(math.sqrt((b - 1) / b * np.sum((tops - tops.mean()) ** 2)))
    return BlockCurvature(
        lambda_max_stderr=jack_se,
        jackknife=len(leave_one_out),
        name=name or ",".join(names),
        parameters=sum(t.numel() for t in sub.values()),
        lambda_max=float(res.eigenvalues[-1]),
        lambda_max_bound=float(res.residuals[-1]),
        trace=trace,
        trace_stderr=stderr,
        probes=trace_samples,
        steps=res.iterations,
        converged=res.converged,
        names=names,
    )


LEVELS = ("stage", "block")


def per_block_curvature(
    model: nn.Module | str | os.PathLike,
    data: Any,
    *,
    level: str = "stage",
    blocks: Mapping[str, Sequence[str] | str] | None = None,
    iters: int = 100,
    tol: float = 1e-4,
    trace_samples: int = 20,
    jackknife: int = 0,
    wrt: str = "weights",
    loss: str = "ce",
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    task: Any = None,
) -> list[BlockCurvature]:
    """Top eigenvalue and trace of the Hessian restricted to each stage or block.

    Args:
        model: a network, or a checkpoint (path or ``pretrained:NAME``).
        data: a `DataTensors` or ready tensors ``(x, y)``.
        level: ``"stage"`` (stem, stage1.., head) or ``"block"`` (stem, every block, head),
            from `parameter_groups`.
        blocks: instead of `level`, ``{label: selection}`` (globs or group names).
        iters, tol: Lanczos steps and relative residual per block.
        trace_samples: Hutchinson probes per block (0: no trace).
        jackknife: split the data into this many batches and recompute each lambda_max with
            one left out, for its standard error over the data (0: no; else at least 2;
            costs `jackknife` more Lanczos runs per block). With a task, the data's own
            batches are grouped (at least `jackknife` of them are needed).
        wrt: ``"weights"`` (dim > 1) or ``"all"``.
        loss, batch_size, seed, device, progress, task: as in `spectral_density` (a model
            without ``layerK`` stages, e.g. a transformer, takes `blocks` of globs).

    Returns:
        One `BlockCurvature` per group, in model order. Each is the curvature of the
        sub-Hessian (the other parameters fixed), not of the whole Hessian's projection
        onto a subspace of eigenvectors.
    """
    if level not in LEVELS:
        raise InputError(f"level must be one of {LEVELS}; got {level!r}", arg="level")
    if not isinstance(jackknife, int) or jackknife < 0 or jackknife == 1:
        raise InputError(f"jackknife must be 0 or at least 2; got {jackknife!r}", arg="jackknife")
    obj = objective(model, data, task=task, loss=loss, batch_size=batch_size, device=device)
    model = obj.model
    auto = blocks is None
    if blocks is None:
        groups = parameter_groups(model)
        if not groups:
            raise InputError(
                "this model has no layerK stages to group by; pass blocks={label: globs}",
                arg="blocks",
            )
        pick = [
            g
            for g in groups
            if g in ("stem", "head", "between")
            or (level == "stage" and "." not in g)
            or (level == "block" and "." in g)
        ]
        blocks = {g: [g] for g in pick}
    selections = {}
    for label, sel in blocks.items():
        try:
            selections[label] = select_parameters(model, sel, wrt=wrt)
        except InputError:
            if auto and label in ("stem", "head", "between"):
                continue  # e.g. a stem of BN only with wrt=weights
            raise
    template = {n: p.detach() for n, p in model.named_parameters()}
    leave_one_out = [
        (lambda names, o=o: o.hvp(names)) for o in obj.leave_one_out(jackknife)
    ]  # fmt: skip
    steps = sum(
        min(iters, sum(template[n].numel() for n in s)) * (1 + jackknife) + trace_samples
        for s in selections.values()
    )
    bar = progress_bar(progress, total=steps, unit="hvp", desc="per block")

    def hvp_for(names: list[str]) -> HVP:
        return obj.hvp(names)

    out = []
    with bar, LanczosWarnings() as warned:
        for label, names in selections.items():
            out.append(
                block_curvature(
                    hvp_for,
                    template,
                    names,
                    name=label,
                    iters=iters,
                    tol=tol,
                    trace_samples=trace_samples,
                    seed=seed,
                    progress=bar.update,
                    leave_one_out=leave_one_out,
                )  # fmt: skip
            )
    if warned.count:
        warnings.warn(
            f"Lanczos did not converge for {warned.count} block(s) within {iters} steps "
            f"(tol {tol:g}); their lambda_max_bound says by how much",
            stacklevel=2,
        )
    return out
