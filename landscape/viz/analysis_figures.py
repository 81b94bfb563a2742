"""Figures of the analyses: layer responses, gradient norms, curvature maps, trajectories.

Each function draws on an `Axes` it is given and returns the artist; saving and
showing is the caller's job (as in matplotlib itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.lines import Line2D

__all__ = [
    "plot_layer_response_std",
    "plot_gradient_norms",
    "plot_curvature_map",
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
    """Gradient norm of each layer's weight against layer index (log scale by default)."""
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
    1-D surface (`beta` None) is drawn as a line. Pass ``vmin=None`` for signed
    quantities such as ``lambda_min``.
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
