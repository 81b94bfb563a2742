"""Static matplotlib figures of 2-D surfaces, and the figure ``landscape plot`` saves.

Every plotting function draws on an ``Axes`` it is given and returns the artist it made;
creating figures and saving them is the caller's job (``landscape.plot`` does it for the
command line), except `surface_figure`, which returns a new `Figure`. Points not
computed yet (NaN) are left blank, so a partially computed file renders what exists.

Scales come from `landscape.viz.levels` (the one level rule, shared with the viewer);
`plot_comparison` resolves one scale over several surfaces, so side-by-side panels share
colours and levels, with levels added where a panel's range would hold none
(`cover_ranges`; the viewer's page does not add them yet). Colour bars and contour labels
write round values in one number format (`add_colorbar`, `format_levels`). 1-D surfaces
are drawn by `landscape.viz.lines`; styles and labels live in `landscape.viz.style`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.colors import LogNorm, Normalize
from matplotlib.contour import QuadContourSet
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from landscape.core.errors import InputError
from landscape.io.surface_file import Surface
from landscape.io.surfaces import stored_paths, stored_points, surface_values
from landscape.surface.grid import finest_complete
from landscape.viz.levels import (
    Scale,
    colorbar_ticks,
    cover_ranges,
    format_levels,
    resolve_scale,
)
from landscape.viz.lines import plot_1d
from landscape.viz.style import (
    CMAP,
    FigureStyle,
    SpacedTicks,
    display_names,
    escape_text,
    figure_style,
    metric_label,
    new_figure,
    title_text,
)

__all__ = [
    "KINDS",
    "add_colorbar",
    "mark_optimum",
    "origin_value",
    "plot_comparison",
    "plot_contour",
    "plot_contourf",
    "plot_heatmap",
    "plot_path",
    "plot_surface3d",
    "surface_figure",
]

log_ = logging.getLogger(__name__)  # `log` names the log-scale option here

KINDS = ("contour", "contourf", "heatmap", "surface")


def _styled_scale(
    arrays: Sequence[np.ndarray],
    style: FigureStyle,
    *,
    vmin: float | None,
    vmax: float | None,
    levels: int | Sequence[float] | str | None,
    log: bool | None,
) -> Scale:
    """`resolve_scale` with the style's range, levels and log where the caller gave None;
    levels chosen from the data put at least one inside each array's range
    (`cover_ranges`), so no panel of a comparison is left without a line."""
    levels = style.levels if levels is None else levels
    scale = resolve_scale(
        arrays,
        vmin=style.vmin if vmin is None else vmin,
        vmax=style.vmax if vmax is None else vmax,
        levels=levels,
        log=style.log if log is None else log,
    )
    return cover_ranges(scale, arrays) if levels is None else scale


def _check_2d(surface: Surface) -> None:
    if not surface.is_2d:
        raise InputError(f"surface {surface.label!r} is 1-D; use plot_curve or plot_1d")


def _drawn(surface: Surface, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The meshes to draw lines and surfaces on: the whole grid, or while `compute` fills
    it coarse to fine, its finest complete sub-grid (`finest_complete`), a coarser picture
    of the whole (the full grid would have too few complete cells to draw). The viewer
    does the same (viewer.js, shown)."""
    index = finest_complete(surface.computed, surface.alpha, surface.beta)
    if index is None:  # no complete sub-grid (filled in another order): draw what there is
        index = (np.arange(len(surface.alpha)), np.arange(len(surface.beta)))
    ia, ib = index
    x, y = np.meshgrid(surface.alpha[ia], surface.beta[ib], indexing="ij")
    return x, y, z[np.ix_(ia, ib)]


def _label_xy(ax: Axes) -> None:
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel(r"$\beta$")
    if getattr(ax, "name", "") != "3d":  # as many x ticks as the panel's width holds
        ax.xaxis.set_major_locator(SpacedTicks())


def add_colorbar(
    fig: Figure, artist: Artist, axes: Axes | Sequence[Axes], scale: Scale, label: str, **kwargs
) -> Any:
    """A colour bar labelled with round values of `scale` in one number format.

    At least three labelled values (`colorbar_ticks`; matplotlib's log colour bar labels
    only the decades, or a single ``1.5x10^1``) written as the contour labels are
    (`format_levels`). Where `artist` draws log10 of the values (a 3-D surface on a log
    scale) the ticks sit at the log10 of the values they name.

    Args:
        fig: the figure.
        artist: what the colour bar describes.
        axes: the Axes it steals room from.
        scale: the scale `artist` was drawn with.
        label: the colour bar's label.
        **kwargs: passed to ``fig.colorbar``.

    Returns:
        The Colorbar.
    """
    panels = [axes] if isinstance(axes, Axes) else list(axes)
    # A 3-D panel's z label stands out of its Axes, where constrained layout does not see
    # it: more room, or the colour bar would cover it.
    pad = 0.12 if any(getattr(a, "name", "") == "3d" for a in panels) else 0.05
    cb = fig.colorbar(artist, ax=axes, label=label, **{"shrink": 0.85, "pad": pad, **kwargs})
    ticks = colorbar_ticks(scale)
    log10 = scale.log and not isinstance(artist.norm, LogNorm)
    cb.set_ticks(np.log10(ticks) if log10 else ticks, labels=format_levels(ticks))
    cb.ax.minorticks_off()
    return cb


def _finish(
    ax: Axes,
    artist: Artist,
    surface: Surface,
    split: str,
    metric: str,
    *,
    title: str | None,
    colorbar: bool,
    scale: Scale,
) -> None:
    """The panel's title (default: the surface's name, and for an adaptive surface the
    share evaluated and the tolerance of the rest) and colour bar, as the CLI draws them."""
    if title is None:
        title = surface.label + _adaptive_note(surface)
    if title:
        ax.set_title(escape_text(title))
    if colorbar:
        add_colorbar(ax.figure, artist, ax, scale, _value_label(split, metric, scale))


def _adaptive_note(surface: Surface) -> str:
    """A second title line for a surface computed with a tolerance: how much is evaluated."""
    if surface.interpolated is None:
        return ""
    share = surface.evaluated.sum() / surface.interpolated.size
    return f"\n({share:.0%} evaluated, the rest within {surface.tolerance:g})"


def _level_labels(levels: np.ndarray) -> dict[float, str]:
    return dict(zip(levels, format_levels(levels), strict=True))


def _value_label(split: str, metric: str, scale: Scale) -> str:
    """The label of an axis or colour bar of values: ``train loss (log scale)``."""
    return metric_label(split, metric) + (" (log scale)" if scale.log else "")


def _prepare(
    surface: Surface,
    split: str,
    metric: str,
    vmin: float | None,
    vmax: float | None,
    levels: int | Sequence[float] | None,
    log: bool | None,
) -> tuple[np.ndarray, Scale]:
    z = surface_values(surface, split, metric)
    scale = resolve_scale([z], vmin=vmin, vmax=vmax, levels=levels, log=log)
    if scale.log:
        z = np.where(z > 0, z, np.nan)
    return z, scale


def plot_contour(
    ax: Axes,
    surface: Surface,
    *,
    split: str = "train",
    metric: str = "loss",
    vmin: float | None = None,
    vmax: float | None = None,
    levels: int | Sequence[float] | None = None,
    log: bool | None = None,
    title: str | None = None,
    colorbar: bool = True,
    cmap: str = CMAP,
) -> QuadContourSet:
    """Contour lines with labelled levels (see `resolve_scale`).

    Args:
        ax: the Axes to draw on.
        surface: a 2-D surface.
        split: train | test.
        metric: loss | accuracy | error.
        vmin, vmax: the colour range; default that of the computed values.
        levels: a number of levels, the levels themselves or a preset name (``"li2018"``);
            default round numbers (see `resolve_scale`).
        log: log colouring and levels; None decides from the data.
        title: the panel's title; default the surface's name, "" for none.
        colorbar: add a colour bar beside `ax` (`plot_comparison` draws one shared bar).
        cmap: a matplotlib colour map.

    Returns:
        The ContourSet drawn.
    """
    _check_2d(surface)
    z, scale = _prepare(surface, split, metric, vmin, vmax, levels, log)
    x, y, z = _drawn(surface, z)
    cs = ax.contour(x, y, np.ma.masked_invalid(z), levels=scale.levels, cmap=cmap, norm=scale.norm)
    if len(cs.levels):  # one number format for all (f"{v:.3g}" writes 500 but 1e+03)
        ax.clabel(cs, inline=True, fontsize=7, fmt=_level_labels(cs.levels))
    _label_xy(ax)
    _finish(ax, cs, surface, split, metric, title=title, colorbar=colorbar, scale=scale)
    return cs


def plot_contourf(
    ax: Axes,
    surface: Surface,
    *,
    split: str = "train",
    metric: str = "loss",
    vmin: float | None = None,
    vmax: float | None = None,
    levels: int | Sequence[float] | None = None,
    log: bool | None = None,
    title: str | None = None,
    colorbar: bool = True,
    cmap: str = CMAP,
) -> QuadContourSet:
    """Filled contours; values beyond [vmin, vmax] get the end colours.

    Args:
        ax: the Axes to draw on.
        surface: a 2-D surface.
        split: train | test.
        metric: loss | accuracy | error.
        vmin, vmax: the colour range; default that of the computed values.
        levels: a number of levels, the levels themselves or a preset name (``"li2018"``);
            default round numbers (see `resolve_scale`).
        log: log colouring and levels; None decides from the data.
        title: the panel's title; default the surface's name, "" for none.
        colorbar: add a colour bar beside `ax` (`plot_comparison` draws one shared bar).
        cmap: a matplotlib colour map.

    Returns:
        The ContourSet drawn.
    """
    _check_2d(surface)
    z, scale = _prepare(surface, split, metric, vmin, vmax, levels, log)
    x, y, z = _drawn(surface, z)
    cs = ax.contourf(
        x,
        y,
        np.ma.masked_invalid(z),
        levels=scale.levels,
        cmap=cmap,
        norm=scale.norm,
        extend="both",
    )
    _label_xy(ax)
    _finish(ax, cs, surface, split, metric, title=title, colorbar=colorbar, scale=scale)
    return cs


def plot_heatmap(
    ax: Axes,
    surface: Surface,
    *,
    split: str = "train",
    metric: str = "loss",
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool | None = None,
    title: str | None = None,
    colorbar: bool = True,
    cmap: str = CMAP,
) -> QuadMesh:
    """One cell per grid point, centred on its real (alpha, beta).

    Args:
        ax: the Axes to draw on.
        surface: a 2-D surface.
        split: train | test.
        metric: loss | accuracy | error.
        vmin, vmax: the colour range; default that of the computed values.
        log: log colouring; None decides from the data.
        title: the panel's title; default the surface's name, "" for none.
        colorbar: add a colour bar beside `ax` (`plot_comparison` draws one shared bar).
        cmap: a matplotlib colour map.

    Returns:
        The QuadMesh drawn.
    """
    _check_2d(surface)
    z, scale = _prepare(surface, split, metric, vmin, vmax, None, log)
    mesh = ax.pcolormesh(
        surface.alpha,
        surface.beta,
        np.ma.masked_invalid(z).T,  # pcolormesh wants (ny, nx)
        shading="nearest",
        cmap=cmap,
        norm=scale.norm,
    )
    _label_xy(ax)
    _finish(ax, mesh, surface, split, metric, title=title, colorbar=colorbar, scale=scale)
    return mesh


def plot_surface3d(
    ax: Axes,
    surface: Surface,
    *,
    split: str = "train",
    metric: str = "loss",
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool | None = None,
    title: str | None = None,
    colorbar: bool = True,
    cmap: str = CMAP,
) -> Poly3DCollection:
    """A 3-D surface on an Axes made with ``fig.add_subplot(projection="3d")``.

    Values are clamped to [vmin, vmax] (so a few huge peaks do not flatten the rest) and
    drawn as log10 on a log scale.

    Args:
        ax: made with ``fig.add_subplot(projection="3d")``.
        surface: a 2-D surface.
        split: train | test.
        metric: loss | accuracy | error.
        vmin, vmax: the colour range; default that of the computed values.
        log: log colouring; None decides from the data.
        title: the panel's title; default the surface's name, "" for none.
        colorbar: add a colour bar beside `ax` (`plot_comparison` draws one shared bar).
        cmap: a matplotlib colour map.

    Returns:
        The Poly3DCollection drawn.
    """
    if getattr(ax, "name", "") != "3d":
        raise InputError("plot_surface3d needs a 3-D Axes: fig.add_subplot(projection='3d')")
    _check_2d(surface)
    z, scale = _prepare(surface, split, metric, vmin, vmax, None, log)
    x, y, z = _drawn(surface, z)
    lo, hi = scale.vmin, scale.vmax
    z = np.clip(z, lo, hi)
    if scale.log:
        z, lo, hi = np.log10(z), np.log10(lo), np.log10(hi)
    # rcount/ccount: draw every grid point (the default samples at most 50 per axis).
    art = ax.plot_surface(
        x,
        y,
        z,
        cmap=cmap,
        norm=Normalize(lo, hi),
        rcount=z.shape[0],
        ccount=z.shape[1],
        linewidth=0,
        antialiased=False,
    )
    ax.set_zlim(lo, hi)
    _label_xy(ax)
    # Few ticks on the horizontal axes: a 3-D panel is narrow, and the default locator's
    # labels (-1.00 -0.75 -0.50 ...) run into each other.
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=4))
    ax.tick_params(labelsize=8)
    if scale.log:  # ticks at the log10 of round values, labelled with the values
        ticks = colorbar_ticks(scale)
        ax.set_zticks(np.log10(ticks), labels=format_levels(ticks))
    ax.set_zlabel(_value_label(split, metric, scale), labelpad=8)
    _finish(ax, art, surface, split, metric, title=title, colorbar=colorbar, scale=scale)
    return art


def origin_value(
    surface: Surface, *, split: str = "train", metric: str = "loss", log: bool = False
) -> float:
    """The value at the grid point nearest theta* (alpha = beta = 0).

    Args:
        surface: a 1-D or 2-D surface.
        split, metric: which values (as in `surface_values`).
        log: return log10 of the value (NaN where it is not positive).

    Returns:
        The value, NaN if that point is not computed yet.
    """
    z = surface_values(surface, split, metric)
    i = int(np.argmin(np.abs(surface.alpha)))
    v = float(z[i] if not surface.is_2d else z[i, int(np.argmin(np.abs(surface.beta)))])
    return float(np.log10(v)) if log and v > 0 else (np.nan if log else v)


def mark_optimum(
    ax: Axes, *, alpha: float = 0.0, beta: float = 0.0, z: float | None = None, **kwargs
) -> Line2D:
    """Mark theta* (the unperturbed model, alpha = beta = 0) with a star.

    Args:
        ax: a 2-D or 3-D Axes.
        alpha, beta: where to put the star.
        z: its height, required on a 3-D Axes (e.g. from `origin_value`).
        **kwargs: passed to ``ax.plot`` (they override the star's style).

    Returns:
        The star's Line2D.
    """
    style = {
        "marker": "*",
        "markersize": 14,
        "color": "red",
        "markeredgecolor": "white",
        "linestyle": "none",
        "label": r"$\theta^*$",
        "zorder": 10,
    }
    style.update(kwargs)
    if getattr(ax, "name", "") == "3d":
        if z is None or not np.isfinite(z):
            raise InputError("mark_optimum on a 3-D Axes needs a finite z (see origin_value)")
        return ax.plot([alpha], [beta], [z], **style)[0]
    return ax.plot([alpha], [beta], **style)[0]


def plot_path(
    ax: Axes,
    alpha: np.ndarray,
    beta: np.ndarray,
    *,
    label: str | None = None,
    epochs: Sequence[int] | None = None,
    annotate_every: int | None = None,
    **kwargs: Any,
) -> Line2D:
    """An optimization path on a contour Axes (Li et al. 2018, Fig. 9).

    The start is drawn as a circle, the end (theta_final) as a star.

    Args:
        ax: a contour Axes (2-D).
        alpha, beta: the path's coordinates, one per checkpoint (e.g. from `read_path`).
        label: legend entry.
        epochs: the checkpoints' epochs, for labels.
        annotate_every: label every n-th point with its epoch (needs `epochs`).
        **kwargs: passed to ``ax.plot``.

    Returns:
        The path's Line2D.
    """
    alpha, beta = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    if alpha.shape != beta.shape or alpha.ndim != 1:
        raise InputError(
            f"path alpha and beta must be 1-D of one length: {alpha.shape}, {beta.shape}"
        )
    style = {"marker": ".", "markersize": 4, "linewidth": 1.2, "color": "black", "label": label}
    style.update(kwargs)
    (line,) = ax.plot(alpha, beta, **style)
    color = line.get_color()
    ax.plot(alpha[:1], beta[:1], "o", color=color, markersize=6)
    ax.plot(alpha[-1:], beta[-1:], "*", color=color, markersize=11)
    if epochs is not None and annotate_every:
        for i in range(0, len(alpha), annotate_every):
            ax.add_artist(
                _ClearLabel(
                    str(int(epochs[i])),
                    (alpha[i], beta[i]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                    color=color,
                )
            )
    return line


_STORED_STYLES = (
    {"color": "black", "linestyle": "-", "linewidth": 1.8},
    {"color": "tab:blue", "linestyle": "-.", "linewidth": 1.2},
)
_STRAIGHT_LINE = {"color": "dimgray", "linestyle": "--", "linewidth": 1.2}  # "line": A -> B


def _plot_stored(ax: Axes, surface: Surface) -> bool:
    """The paths and points the surface's file records (`stored_paths`, `stored_points`:
    ``landscape connect --plane``'s curve, line, endpoints and bend). True when any."""
    paths, limits = stored_paths(surface), (ax.get_xlim(), ax.get_ylim())
    curves = [label for label in paths if label != "line"]
    for label, (alpha, beta) in sorted(paths.items(), key=lambda kv: kv[0] == "line"):
        style = (
            _STRAIGHT_LINE
            if label == "line"
            else _STORED_STYLES[curves.index(label) % len(_STORED_STYLES)]
        )
        ax.plot(alpha, beta, label=label, **style)
    points = stored_points(surface)
    for label, (alpha, beta) in points.items():
        ax.plot([alpha], [beta], "o", color="black", markerfacecolor="white", markersize=5)
        ax.add_artist(
            _PointLabel(label, (alpha, beta), textcoords="offset points", xytext=(9, 9), fontsize=8)
        )
    ax.set_xlim(*limits[0])  # the grid's extent, not the drawings'
    ax.set_ylim(*limits[1])
    return bool(paths)


class _ClearLabel(Annotation):
    """A point's label that keeps off the stars of its Axes (theta* and the path's end)
    and off the labels drawn before it.

    Where it is drawn it looks at the star markers then on the Axes (`mark_optimum` may
    come after the path) and takes the first of four places beside its point that covers
    none of them nor an earlier label; where all four would, it is hidden
    (``get_visible()`` is then False until the next draw; where the path converges, the
    labels of its first points there say where it is).
    """

    PLACES = ((4, 4), (4, -4), (-4, 4), (-4, -4))  # offset points: right/left, up/down
    _cleared = False  # hidden by the last draw, not by the caller
    _box: Bbox | None = None  # where the last draw put it

    def draw(self, renderer: Any) -> None:
        if self._cleared:
            self.set_visible(True)
            self._cleared = False
        self._box = None
        if not self.get_visible() or self.axes is None:
            return
        taken = [_marker_box(ln) for ln in self.axes.lines if ln.get_marker() == "*"]
        for text in self.axes.texts:  # drawn in this order: those before are placed
            if text is self:
                break
            if isinstance(text, _ClearLabel):
                taken.append(text._box)
        for dx, dy in self.PLACES:
            self.xyann = (dx, dy)
            self.set_horizontalalignment("left" if dx > 0 else "right")
            self.set_verticalalignment("bottom" if dy > 0 else "top")
            box = self.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken if other is not None):
                super().draw(renderer)
                self._box = box
                return
        self.set_visible(False)
        self._cleared = True


class _PointLabel(_ClearLabel):
    """A named point's label (A, B, the bend): further off, clear of theta*'s star on A."""

    PLACES = ((9, 9), (9, -9), (-9, 9), (-9, -9))


def _marker_box(line: Line2D) -> Bbox | None:
    """The display box of a one-point marker line (None when it has no finite point)."""
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    if x.size != 1 or not (np.isfinite(x[0]) and np.isfinite(y[0])) or line.figure is None:
        return None
    px, py = line.get_transform().transform((x[0], y[0]))
    r = line.get_markersize() * line.figure.dpi / 72.0 / 2
    return Bbox.from_extents(px - r, py - r, px + r, py + r)


_PLOTTERS = {
    "contour": plot_contour,
    "contourf": plot_contourf,
    "heatmap": plot_heatmap,
    "surface": plot_surface3d,
}


def plot_comparison(
    axes: Sequence[Axes],
    surfaces: Sequence[Surface],
    *,
    kind: str = "contour",
    split: str = "train",
    metric: str = "loss",
    vmin: float | None = None,
    vmax: float | None = None,
    levels: int | Sequence[float] | str | None = None,
    log: bool | None = None,
    style: str | FigureStyle = "default",
) -> list[Artist]:
    """Draw each surface on its own Axes with one shared scale (range, levels, log).

    Each panel is titled with its surface's name.

    Args:
        axes: one Axes per surface (3-D ones for ``kind="surface"``).
        surfaces: 2-D surfaces.
        kind: contour | contourf | heatmap | surface.
        split: train | test.
        metric: loss | accuracy | error.
        vmin, vmax, levels, log: the shared scale, as in `resolve_scale`.
        style: a name of `STYLES` or a `FigureStyle`: the colour maps and, where the
            arguments above are None, the levels and range.

    Returns:
        The artists, one per surface; ``artists[0]`` serves for one colour bar.
    """
    st = figure_style(style)
    if kind not in _PLOTTERS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
    if len(axes) != len(surfaces):
        raise InputError(f"{len(surfaces)} surfaces need as many Axes, got {len(axes)}")
    arrays = [surface_values(s, split, metric) for s in surfaces]
    scale = _styled_scale(arrays, st, vmin=vmin, vmax=vmax, levels=levels, log=log)
    cmap = st.cmap3d if kind == "surface" else st.cmap
    artists = []
    for ax, s, name in zip(axes, surfaces, display_names(surfaces), strict=True):
        opts = {
            "split": split,
            "metric": metric,
            "vmin": scale.vmin,
            "vmax": scale.vmax,
            "cmap": cmap,
        }
        if kind in ("contour", "contourf"):
            opts["levels"] = scale.levels
        title = name + _adaptive_note(s)
        artists.append(_PLOTTERS[kind](ax, s, log=scale.log, title=title, colorbar=False, **opts))
    return artists


def _figure_2d(
    surfaces, *, kind, split, metric, vmin, vmax, levels, log, optimum, title, path, style
):
    splits = (
        [split]
        if isinstance(split, str) and "," not in split
        else (split.split(",") if isinstance(split, str) else list(split))
    )
    if len(splits) != 1:
        raise InputError(
            "2-D figures show one of train or test; pass split train or split test", arg="split"
        )
    split = splits[0]
    arrays = [surface_values(s, split, metric) for s in surfaces]
    scale = _styled_scale(arrays, style, vmin=vmin, vmax=vmax, levels=levels, log=log)
    n = len(surfaces)
    fig = new_figure(figsize=(4.8 * n + 1.2, 4.4), layout="constrained")
    axes = [
        fig.add_subplot(1, n, k + 1, projection="3d" if kind == "surface" else None)
        for k in range(n)
    ]
    artists = plot_comparison(
        axes,
        surfaces,
        kind=kind,
        split=split,
        metric=metric,
        vmin=scale.vmin,
        vmax=scale.vmax,
        levels=scale.levels,
        log=scale.log,
        style=style,
    )
    add_colorbar(fig, artists[0], axes, scale, _value_label(split, metric, scale))
    if kind != "surface":
        for ax, s in zip(axes, surfaces, strict=True):
            drawn = _plot_stored(ax, s)
            if path is not None:
                plot_path(ax, path[0], path[1], label="training path")
            if drawn or path is not None:
                ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    if not (not optimum):
        for ax, s in zip(axes, surfaces, strict=True):
            if kind != "surface":
                mark_optimum(ax)
                continue
            z = origin_value(s, split=split, metric=metric)
            if np.isfinite(z):
                z = float(np.clip(z, scale.vmin, scale.vmax))
                mark_optimum(ax, z=float(np.log10(z)) if scale.log else z)
    if title:
        fig.suptitle(title_text(title))
    return fig


def _figure_1d(surfaces, *, split, metric, twin, log, vmin, vmax, optimum, title, path, style):
    if path is not None:
        raise InputError(
            "path draws a training path on 2-D contours; drop it for 1-D files", arg="path"
        )
    splits = (
        [split]
        if isinstance(split, str) and "," not in split
        else (split.split(",") if isinstance(split, str) else list(split))
    )
    twin = twin
    if twin == "auto":
        twin = "accuracy" if metric == "loss" else "loss"
        need = "accuracy" if twin in ("accuracy", "error") else "loss"
        missing = [s for s in surfaces for sp in splits if f"{sp}_{need}" not in s.values]
        if missing:
            log_.warning("%r has no %s; plotting %s only", missing[0].label, need, metric)
            twin = None
    elif twin == "none":
        twin = None
    arrays = [surface_values(s, sp, metric) for s in surfaces for sp in splits]
    log = resolve_scale(arrays, log=style.log if log is None else log).log
    if vmax is None and style.loss_max is not None and metric == "loss" and not log:
        vmin, vmax = (0.0 if vmin is None else vmin), style.loss_max
    if twin and len(surfaces) > 1:
        # Several networks: one panel per metric, one colour per network, one line style
        # per split; twin axes would put four line kinds of each colour in one panel.
        fig = new_figure(figsize=(11.0, 4.6), layout="constrained")
        ax, other = fig.subplots(1, 2)
        plot_1d(ax, surfaces, splits=splits, metric=metric, twin=None, log=log)
        plot_1d(other, surfaces, splits=splits, metric=twin, twin=None)
        other.get_legend().remove()
        if twin in ("accuracy", "error"):
            other.set_ylim(-0.02, 1.02)
        axes = [ax, other]
    else:
        fig = new_figure(figsize=(7.5, 4.5), layout="constrained")
        ax = fig.add_subplot()
        plot_1d(ax, surfaces, splits=splits, metric=metric, twin=twin, log=log)
        axes = [ax]
    if vmin is not None or vmax is not None:
        ax.set_ylim(vmin, vmax)
    if not (not optimum):
        for a in axes:
            a.axvline(0.0, color="grey", linewidth=0.8, linestyle=":", zorder=0)
    names = escape_text(" vs ".join(display_names(surfaces)))
    if len(axes) > 1:
        fig.suptitle(title_text(title) if title else names)
    else:
        ax.set_title(title_text(title) if title else names)
    return fig


def surface_figure(
    surfaces: Sequence[Surface],
    *,
    kind: str | None = None,
    split: str | Sequence[str] = "train",
    metric: str = "loss",
    twin: str | None = "auto",
    log: bool | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    levels: int | Sequence[float] | None = None,
    optimum: bool = True,
    title: str | None = None,
    path: tuple[np.ndarray, np.ndarray] | None = None,
    style: str | FigureStyle = "default",
) -> Figure:
    """One figure of surfaces side by side (2-D) or overlaid (1-D), as ``landscape plot``.

    Args:
        surfaces: the surfaces, all 1-D or all 2-D.
        kind: contour | contourf | heatmap | surface (2-D, default contour) | 1d.
        split: the split (2-D); 1-D figures take several (``"train,test"``).
        metric: loss | accuracy | error.
        twin: 1-D: the metric on the right axis; ``"auto"``: accuracy next to loss,
            else loss; None or ``"none"``: no right axis.
        log: log colour scale and levels (None: decided from the data).
        vmin, vmax: range of the colour scale and levels (3-D: values above are clipped).
        levels: a number of contour levels or the levels themselves.
        optimum: mark theta* at (0, 0).
        title: the figure's title (default: none for 2-D, the names for 1-D).
        path: a training path ``(alpha, beta)`` drawn on 2-D panels; the paths and
            points a file records (`landscape.io.surfaces.stored_paths`: ``landscape
            connect --plane``'s curve and line, A, B and the bend) are drawn on its
            contour panels in any case, with a legend.
        style: ``"default"`` or ``"li2018"`` (Li et al.'s look: their contour levels,
            coolwarm 3-D surfaces clipped at 10, 1-D loss axis 0..5); see `STYLES`. It
            sets levels, vmin and vmax where these are None, and the colour maps.

    Returns:
        A new `Figure` (save it with ``fig.savefig``).
    """
    style = figure_style(style)
    surfaces = list(surfaces)
    if not surfaces:
        raise InputError("no surfaces to plot")
    dims = {s.is_2d for s in surfaces}
    if len(dims) > 1:
        raise InputError("the files mix 1-D and 2-D surfaces; plot them separately")
    is_2d = dims.pop()
    kind = kind or ("contour" if is_2d else "1d")
    if is_2d and kind == "1d":
        raise InputError(f"kind 1d needs 1-D files; use one of {', '.join(KINDS)}", arg="kind")
    if not is_2d and kind != "1d":
        raise InputError(
            f"the files are 1-D surfaces; kind {kind} needs 2-D ones, use kind 1d", arg="kind"
        )
    if is_2d:
        return _figure_2d(
            surfaces,
            kind=kind,
            split=split,
            metric=metric,
            vmin=vmin,
            vmax=vmax,
            levels=levels,
            log=log,
            optimum=optimum,
            title=title,
            path=path,
            style=style,
        )
    return _figure_1d(
        surfaces,
        split=split,
        metric=metric,
        twin=twin,
        log=log,
        vmin=vmin,
        vmax=vmax,
        optimum=optimum,
        title=title,
        path=path,
        style=style,
    )
