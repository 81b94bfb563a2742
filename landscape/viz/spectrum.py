"""Figures of the Hessian's spectral density (SLQ) and of its curvature per block.

`density_figure` draws PyHessian's figure (the Gaussian-smoothed density on a log axis,
the smoothing stated) for one network or several on one axis, each with the spread over
probes as a band; `block_curvature_figure` compares networks (a ResNet and its plain
twin) stage by stage or block by block: top eigenvalue and trace with their intervals.

Both take what the analysis returned (`SpectralDensity`, lists of `BlockCurvature`) or
what the result files hold (`read_curvature_result`'s dicts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.analysis.spectrum import density_curve
from landscape.viz.style import new_figure

__all__ = [
    "plot_density",
    "density_figure",
    "plot_block_curvature",
    "block_curvature_figure",
]

FLOOR = 1e-8  # the log axis' floor: densities below it are drawn at it


def _nodes_weights(item: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if hasattr(item, "slq"):
        return list(item.slq.nodes), list(item.slq.weights)
    if hasattr(item, "nodes"):
        return list(item.nodes), list(item.weights)
    if isinstance(item, Mapping) and "probes" in item:
        return [np.asarray(p["nodes"]) for p in item["probes"]], [
            np.asarray(p["weights"]) for p in item["probes"]
        ]
    raise TypeError(f"not a spectral density: {type(item).__name__}")


def plot_density(
    ax: Axes,
    densities: Sequence[tuple[str, Any]],
    *,
    sigma: float | None = None,
    band: tuple[float, float] | None = (16, 84),
    points: int = 2000,
) -> float:
    """Draw smoothed spectral densities of several networks on one (log-density) axis.

    Args:
        ax: where to draw.
        densities: ``(label, density)`` pairs; a density is a `SpectralDensity`, an
            `SLQResult` or a density file's dict.
        sigma: the Gaussian smoothing (default PyHessian's rule over all of them together,
            ``sigma^2 = 1e-5 max(1, range)``), one value for every curve.
        band: percentiles over probes drawn as a band around each mean (None: no band).
        points: grid size.

    Returns:
        The sigma used.
    """
    pairs = [(label, _nodes_weights(d)) for label, d in densities]
    every = [n for _, (nodes, _) in pairs for n in nodes]
    lo = min(float(n.min()) for n in every)
    hi = max(float(n.max()) for n in every)
    _, _, sigma = density_curve(every, [np.ones_like(n) for n in every], sigma=sigma, points=2)
    pad = 0.05 * (hi - lo) + 3 * sigma
    grid = np.linspace(lo - pad, hi + pad, points)
    for i, (label, (nodes, weights)) in enumerate(pairs):
        _, dens, _ = density_curve(nodes, weights, grid=grid, sigma=sigma)
        color = f"C{i}"
        mean = dens.mean(axis=0)
        ax.semilogy(grid, np.maximum(mean, FLOOR), color=color, lw=1.2,
                    label=f"{label} ({len(nodes)} probes)")  # fmt: skip
        if band is not None and len(nodes) > 1:
            low, high = np.percentile(dens, band, axis=0)
            ax.fill_between(grid, np.maximum(low, FLOOR), np.maximum(high, FLOOR),
                            color=color, alpha=0.25, lw=0)  # fmt: skip
    ax.set_ylim(bottom=FLOOR)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log)")
    ax.axvline(0.0, color="0.7", lw=0.6)
    ax.legend(fontsize=7)
    return sigma


def density_figure(
    densities: Sequence[tuple[str, Any]] | Any,
    *,
    sigma: float | None = None,
    band: tuple[float, float] | None = (16, 84),
    title: str = "Hessian spectral density (SLQ)",
) -> Figure:
    """A new figure of one or several spectral densities on one axis (`plot_density`).

    Args:
        densities: ``(label, density)`` pairs, or a single density alone.
        sigma: the Gaussian smoothing (default PyHessian's rule), stated in the title.
        band: percentiles over probes drawn as a band (None: none), stated in the title.
        title: the first line of the title.

    Returns:
        A new `Figure`.
    """
    if not isinstance(densities, Sequence) or isinstance(densities, Mapping):
        densities = [("", densities)]
    fig = new_figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    used = plot_density(ax, densities, sigma=sigma, band=band)
    what = f"Gaussian smoothing $\\sigma$ = {used:.3g}"
    if band is not None:
        what += f"; band: {band[0]:g}-{band[1]:g}th percentile over probes"
    ax.set_title(f"{title}\n{what}", fontsize=9)
    return fig


def _blocks(item: Any) -> list[dict[str, Any]]:
    if isinstance(item, Mapping) and "blocks" in item:
        return list(item["blocks"])
    return [b.as_dict() if hasattr(b, "as_dict") else dict(b) for b in item]


def plot_block_curvature(
    axes: Sequence[Axes],
    results: Sequence[tuple[str, Any]],
    *,
    z: float = 1.96,
) -> None:
    """Top eigenvalue (left axis) and trace (right axis) per block, several networks side
    by side.

    The eigenvalue's bar runs from the Ritz value to Ritz value + residual bound (the top
    eigenvalue lies in it); the trace's is ``+- z`` standard errors over probes. Blocks are
    matched by name, in the first network's order.

    Args:
        axes: two Axes.
        results: ``(label, blocks)``: a list of `BlockCurvature` or a per-block file's dict.
        z: the trace interval's half width in standard errors.
    """
    rows = [(label, {b["name"]: b for b in _blocks(r)}) for label, r in results]
    names: list[str] = []
    for _, blocks in rows:
        names += [n for n in blocks if n not in names]
    x = np.arange(len(names))
    width = 0.8 / max(len(rows), 1)
    for i, (label, blocks) in enumerate(rows):
        xs = x - 0.4 + width * (i + 0.5)
        have = [j for j, n in enumerate(names) if n in blocks]
        lam = np.array([blocks[names[j]]["lambda_max"] for j in have], dtype=float)
        bound = np.array([blocks[names[j]]["lambda_max_bound"] or 0.0 for j in have], dtype=float)
        tr = np.array([blocks[names[j]]["trace"] for j in have], dtype=float)
        se = np.array([blocks[names[j]]["trace_stderr"] or np.nan for j in have], dtype=float)
        axes[0].errorbar(xs[have], lam, yerr=[np.zeros_like(bound), bound], fmt="o",
                         color=f"C{i}", capsize=2, ms=4, label=label)  # fmt: skip
        axes[1].errorbar(xs[have], tr, yerr=z * np.nan_to_num(se), fmt="s", color=f"C{i}",
                         capsize=2, ms=4, label=label)  # fmt: skip
    for ax, what in zip(axes, (r"top eigenvalue $\lambda_{max}$", "trace"), strict=True):
        ax.set_xticks(x, names, rotation=60 if len(names) > 6 else 0, fontsize=7)
        ax.set_ylabel(what)
        positive = all(
            (b.get("lambda_max") or 0) > 0 and (b.get("trace") or 0) > 0
            for _, blocks in rows
            for b in blocks.values()
        )
        if positive:
            ax.set_yscale("log")
        ax.grid(axis="y", color="0.9")
    axes[0].legend(fontsize=7)
    axes[1].set_title(f"+- {z:g} standard errors over probes", fontsize=8)
    axes[0].set_title("Ritz value .. + residual bound", fontsize=8)


def block_curvature_figure(
    results: Sequence[tuple[str, Any]], *, title: str = "Hessian curvature per block"
) -> Figure:
    """A new figure of `plot_block_curvature` (e.g. resnet56 vs plain56 per stage).

    Args:
        results: ``(label, blocks)`` pairs, as `plot_block_curvature` takes them.
        title: the figure's title.

    Returns:
        A new `Figure`.
    """
    n = max(len(_blocks(r)) for _, r in results)
    fig = new_figure(figsize=(max(6.4, 0.45 * n * 2 + 2), 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    plot_block_curvature(axes, results)
    fig.suptitle(title, fontsize=10)
    return fig
