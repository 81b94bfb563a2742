"""Figures of the analyses: layer responses, gradient norms, curvature maps, the Hessian.

Each ``plot_*`` function draws on an `Axes` it is given and returns the artist; each
``*_figure`` function returns a new `Figure` of the whole result, as the analysis
commands save it (``landscape hessian``, ``landscape responses``). Saving and showing is
the caller's job (as in matplotlib itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from landscape.viz.figures import plot_contour, plot_path
from landscape.viz.style import new_figure

if TYPE_CHECKING:  # types only: drawing needs no torch
    from landscape.analysis.curvature import CurvatureMap
    from landscape.analysis.hessian import HessianSpectrum
    from landscape.analysis.trajectory import PCAResult
    from landscape.io.responses import ResponseSeries
    from landscape.io.surface_file import Surface

__all__ = [
    "plot_layer_response_std",
    "plot_gradient_norms",
    "plot_curvature_map",
    "curvature_map_figure",
    "gradient_norms_figure",
    "hessian_spectrum_figure",
    "layer_response_figure",
    "trajectory_figure",
]


def plot_layer_response_std(
    ax: Axes,
    values: Sequence[float],
    *,
    sort: bool = False,
    label: str | None = None,
    **kwargs: Any,
) -> Line2D:
    """Std of each 3x3 layer's response against layer index (He et al. 2015, Fig. 7).

    Args:
        ax: where to draw.
        values: one std per layer, in network order (from `layer_response_std`).
        sort: sort by magnitude, largest first (the figure's bottom panel).
        label: legend entry, e.g. "plain-20".
        **kwargs: passed to `Axes.plot`.

    Returns:
        The line drawn.
    """
    y = np.asarray(values, dtype=float)
    if sort:
        y = np.sort(y)[::-1]
    (line,) = ax.plot(np.arange(1, len(y) + 1), y, label=label, **kwargs)
    ax.set_xlabel("layer index (sorted by magnitude)" if sort else "layer index (original)")
    ax.set_ylabel("std")
    return line


def plot_gradient_norms(
    ax: Axes,
    values: Sequence[float],
    *,
    label: str | None = None,
    log: bool = True,
    **kwargs: Any,
) -> Line2D:
    """Gradient norm of each layer's weight against layer index (log scale by default).

    Args:
        ax: where to draw.
        values: one norm per layer, in network order (from `gradient_norms`).
        label: legend entry.
        log: a log y axis.
        **kwargs: passed to `Axes.plot`.

    Returns:
        The line drawn.
    """
    y = np.asarray(values, dtype=float)
    kwargs.setdefault("marker", ".")
    (line,) = ax.plot(np.arange(1, len(y) + 1), y, label=label, **kwargs)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer index")
    ax.set_ylabel("gradient norm")
    return line


def plot_curvature_map(
    ax: Axes,
    alpha: np.ndarray,
    beta: np.ndarray | None,
    values: np.ndarray,
    *,
    cmap: str = "viridis",
    vmin: float | None = 0.0,
    vmax: float | None = None,
    label: str = r"$|\lambda_{min} / \lambda_{max}|$",
) -> QuadMesh | Line2D:
    """Heatmap of a per-grid-point quantity, by default ``|lambda_min / lambda_max|``.

    Li et al. 2018, Fig. 8: convex regions dark (near 0), negative curvature bright.
    ``values[i, j]`` belongs to ``(alpha[i], beta[j])``; NaN cells are left blank. A
    1-D surface (`beta` None) is drawn as a line.

    Args:
        ax: where to draw.
        alpha: the grid's first axis, (nx,).
        beta: its second axis, (ny,), or None for a 1-D surface.
        values: (nx, ny) or (nx,), e.g. `CurvatureMap.ratio`.
        cmap: the colour map.
        vmin, vmax: the colour range; ``vmin=None`` for signed quantities such as
            ``lambda_min``.
        label: the quantity's name (title of a map, y label of a line).

    Returns:
        The mesh of a 2-D map, the line of a 1-D one.
    """
    values = np.asarray(values, dtype=float)
    if beta is None:
        (line,) = ax.plot(alpha, values, color="C0")
        ax.set_xlabel(r"$\alpha$")
        ax.set_ylabel(label)
        return line
    mesh = ax.pcolormesh(
        alpha,
        beta,
        np.ma.masked_invalid(values.T),
        shading="nearest",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
    )
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel(r"$\beta$")
    ax.set_title(label)
    return mesh


def layer_response_figure(series: Sequence[ResponseSeries], *, stage: str = "trained") -> Figure:
    """He et al. 2015, Fig. 7: each network's layer-response stds, in layer order on top
    and sorted by magnitude below.

    Args:
        series: `ResponseSeries` (those of kind ``response_std`` are drawn, one line each).
        stage: named in the title, e.g. ``"init"`` or ``"trained"``.

    Returns:
        A new two-panel `Figure`.
    """
    fig = new_figure(figsize=(6.4, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    for s in series:
        if s.kind == "response_std":
            plot_layer_response_std(top, s.values, label=s.label)
            plot_layer_response_std(bottom, s.values, sort=True, label=s.label)
    top.set_title(f"std of layer responses ({stage})")
    top.legend(fontsize=8)
    return fig


def gradient_norms_figure(series: Sequence[ResponseSeries], *, stage: str = "trained") -> Figure:
    """Each network's per-layer gradient norms, one line each, on a log scale.

    Args:
        series: `ResponseSeries` (those of kind ``gradient_norm`` are drawn).
        stage: named in the title, e.g. ``"init"`` or ``"trained"``.

    Returns:
        A new `Figure`.
    """
    fig = new_figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for s in series:
        if s.kind == "gradient_norm":
            plot_gradient_norms(ax, s.values, label=s.label)
    ax.set_title(f"per-layer gradient norms ({stage})")
    ax.legend(fontsize=8)
    return fig


def hessian_spectrum_figure(
    spectrum: HessianSpectrum, *, title: str = r"Hessian at $\theta^*$"
) -> Figure:
    """The Ritz values of both Lanczos runs of `hessian_spectrum`: the two edges of the
    spectrum, the top k eigenvalues and lambda_min marked.

    Args:
        spectrum: the result of `hessian_spectrum`.
        title: the figure's title.

    Returns:
        A new `Figure`.
    """
    top, low = spectrum.largest, spectrum.smallest
    k = len(spectrum.top_eigenvalues)
    fig = new_figure(figsize=(6.4, 2.6), layout="constrained")
    ax = fig.add_subplot()
    for res, y, name in ((top, 1.0, "largest run"), (low, 0.0, "smallest run")):
        ax.plot(res.eigenvalues, np.full(len(res.eigenvalues), y), "|", markersize=14, label=name)
    ax.plot(top.eigenvalues[-k:], np.ones(k), "v", color="C3", label=f"top {k}")
    ax.plot(low.eigenvalues[:1], [0.0], "^", color="C2", label=r"$\lambda_{min}$")
    ax.axvline(0.0, color="0.7", linewidth=0.8)
    ax.set_yticks([0.0, 1.0], ["smallest", "largest"])
    ax.set_ylim(-0.8, 1.8)
    ax.set_xlabel("Ritz values (Hessian eigenvalue estimates)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", ncol=4)
    return fig


def curvature_map_figure(result: CurvatureMap, *, title: str | None = None) -> Figure:
    """Li et al. 2018, Fig. 8: ``|lambda_min / lambda_max|`` over a surface's grid, a
    heatmap with its colour bar (a line for a 1-D surface).

    Args:
        result: the result of `surface_curvature_map`.
        title: the figure's title; default the surface's name and split.

    Returns:
        A new `Figure`.
    """
    surface = result.surface
    title = f"{result.label}: {result.split}" if title is None else title
    fig = new_figure(figsize=(5.4, 4.4) if surface.is_2d else (5.4, 3.4), layout="constrained")
    ax = fig.add_subplot()
    artist = plot_curvature_map(ax, surface.alpha, surface.beta, result.ratio)
    if surface.is_2d:
        fig.colorbar(artist, ax=ax, label=r"$|\lambda_{min} / \lambda_{max}|$")
        ax.set_title(f"{title} (near 0: convex)")
    else:
        ax.set_title(f"{title}: " + r"$|\lambda_{min} / \lambda_{max}|$ (near 0: convex)")
    return fig


def trajectory_figure(
    result: PCAResult,
    surface: Surface | None = None,
    *,
    split: str = "train",
    title: str = "trajectory",
) -> Figure:
    """Li et al. 2018, Fig. 9: the training path in its PCA plane, over the surface's
    contours when given one (computed with these directions and ``norm=none``).

    Args:
        result: the result of `trajectory_pca`.
        surface: a 2-D surface over the PCA plane, or None for the path alone.
        split: the surface's split drawn.
        title: the run's name, at the start of the title.

    Returns:
        A new `Figure`; the axes are labelled with each component's explained variance.
    """
    fig = new_figure(figsize=(5.6, 4.6), layout="constrained")
    ax = fig.add_subplot()
    if surface is not None:
        plot_contour(ax, surface, split=split)
    alpha, beta = result.coords[:, 0], result.coords[:, 1]
    plot_path(ax, alpha, beta, epochs=result.epochs, annotate_every=max(1, len(alpha) // 10))
    ev = result.explained_variance_ratio
    ax.set_xlabel(f"1st PCA component ({ev[0]:.1%})")
    ax.set_ylabel(f"2nd PCA component ({ev[1]:.1%})")
    ax.set_title(f"{title}: training path" + (f" on the {split} loss" if surface else ""))
    return fig
