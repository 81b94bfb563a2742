"""Static matplotlib figures of surfaces.

Every plotting function draws on an ``Axes`` it is given and returns the artist it made;
creating figures and saving them is the caller's job (``landscape.plot`` does it for the
command line). Points not computed yet (NaN) are left blank, so a partially computed
file renders what exists.

Scales: `resolve_scale` fixes the value range, the contour levels and linear or log
colouring from the data and the caller's wishes; `plot_comparison` resolves one scale
over several surfaces, so side-by-side panels share colours and levels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.colors import LogNorm, Normalize
from matplotlib.contour import QuadContourSet
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from landscape.core.errors import InputError
from landscape.io.surface_file import StoreError, Surface

__all__ = [
    "surface_figure",
    "KINDS",
    "STYLES",
    "FigureStyle",
    "figure_style",
    "Scale",
    "display_names",
    "escape_text",
    "mark_optimum",
    "metric_label",
    "origin_value",
    "plot_1d",
    "plot_comparison",
    "plot_contour",
    "plot_contourf",
    "plot_curve",
    "plot_heatmap",
    "plot_path",
    "plot_surface3d",
    "resolve_scale",
    "surface_values",
]

log_ = logging.getLogger(__name__)  # `log` names the log-scale option here

# More contour lines than this cannot be told apart, and matplotlib would take minutes.
MAX_LEVELS = 500

KINDS = ("contour", "contourf", "heatmap", "surface")
CMAP = "viridis"
DEFAULT_LEVELS = 15
# Named level sets: "li2018" is Li et al. 2018's contour levels (0.1 to 10 in steps of 0.5,
# their plot_2D.py defaults), for figures to set beside theirs.
LEVEL_PRESETS = {"li2018": tuple(np.round(np.arange(0.1, 10.0, 0.5), 10))}
DIVERGING = "RdBu_r"  # differences between two surfaces (the viewer's A - B map)


@dataclass(frozen=True)
class FigureStyle:
    """How figures look: colour maps, default levels and value ranges.

    ``li2018`` is Li et al. 2018's look (their plot_2D.py / plot_1D.py defaults): contour
    levels 0.1 to 10 in steps of 0.5, 3-D surfaces in coolwarm clipped at a loss of 10,
    1-D loss on 0..5 beside accuracy. Their contour call names ``cmpa='summer'``, a typo
    that matplotlib ignores, so their contours came out in the default viridis, as here.
    """

    cmap: str = "viridis"  # contour, filled contour, heat map
    cmap3d: str = "viridis"  # 3-D surfaces
    levels: str | None = None  # a LEVEL_PRESETS name; None: the data decide
    vmin: float | None = None
    vmax: float | None = None  # also where 3-D surfaces are clipped
    loss_max: float | None = None  # 1-D: the loss axis ends here
    log: bool | None = None  # None: the data decide (see resolve_scale)


STYLES = {
    "default": FigureStyle(),
    "li2018": FigureStyle(cmap3d="coolwarm", levels="li2018", vmax=10.0, loss_max=5.0, log=False),
}


def figure_style(style: str | FigureStyle) -> FigureStyle:
    """A style by name (see `STYLES`), or the style itself."""
    if isinstance(style, FigureStyle):
        return style
    if style not in STYLES:
        raise InputError(f"style must be one of {', '.join(STYLES)}; got {style!r}", arg="style")
    return STYLES[style]


# Auto log scale when half the computed points sit in the lowest 5 % of the linear range:
# linear levels would then all crowd around the peaks (the chaotic no-skip surfaces).
SKEW_FRACTION = 0.05


def metric_label(split: str, metric: str, *, log: bool = False) -> str:
    """Axis label such as ``train loss`` or ``log10 test error``."""
    return f"{'log10 ' if log else ''}{split} {metric}"


def display_names(surfaces: Sequence[Surface]) -> list[str]:
    """Each surface's label, with the file name added where labels repeat."""
    labels = [s.label for s in surfaces]
    return [
        f"{lab} ({s.path.name})" if labels.count(lab) > 1 and s.path is not None else lab
        for lab, s in zip(labels, surfaces, strict=True)
    ]


def escape_text(s: str) -> str:
    """A user's label as literal matplotlib text (a ``$`` would start mathtext)."""
    return s.replace("$", r"\$")


def surface_values(surface: Surface, split: str = "train", metric: str = "loss") -> np.ndarray:
    """The values of `metric` (loss | accuracy | error) on `split` as a float array.

    Raises:
        StoreError: the surface has no such split or metric (the message lists what it has).
    """
    if split not in surface.splits:
        have = ", ".join(surface.splits) or "none"
        raise StoreError(
            f"surface {surface.label!r} has no {split!r} split (it has: {have}); "
            "choose another split"
        )
    return np.asarray(surface.get(split, metric), dtype=np.float64)


@dataclass(frozen=True)
class Scale:
    """A value range, contour levels and linear or log colouring, shared by the panels."""

    vmin: float
    vmax: float
    levels: np.ndarray
    log: bool

    @property
    def norm(self) -> Normalize:
        return LogNorm(self.vmin, self.vmax) if self.log else Normalize(self.vmin, self.vmax)


# Round multiples per decade on a log scale: finer when the values span few decades.
LOG_SUBS = ((1.0, 1.5, 2.0, 3.0, 5.0, 7.0), (1.0, 2.0, 5.0), (1.0,))
# Levels the basin around the minimum should hold: fewer below the median value and the
# default scale turns logarithmic (where the data are positive).
BASIN_LEVELS = 3


def _nice_levels(vmin: float, vmax: float, log: bool) -> np.ndarray:
    if log:
        lo, hi = int(np.floor(np.log10(vmin))), int(np.ceil(np.log10(vmax)))
        decades = np.log10(vmax / vmin)
        subs = LOG_SUBS[0] if decades <= 2 else LOG_SUBS[1] if decades <= 4 else LOG_SUBS[2]
        cand = np.array([float(f"{s * 10.0**d:.12g}") for d in range(lo, hi + 1) for s in subs])
        levels = cand[(cand >= vmin * (1 - 1e-9)) & (cand <= vmax * (1 + 1e-9))]
        return levels if len(levels) >= 4 else np.geomspace(vmin, vmax, 8)
    # A round step (1, 2, 2.5 or 5 times a power of ten) giving about DEFAULT_LEVELS
    # levels. The viewer's page computes the same (viewer.js, niceLevels; a test holds
    # the two equal), so static and interactive figures draw the same lines.
    raw = (vmax - vmin) / DEFAULT_LEVELS
    p = 10.0 ** np.floor(np.log10(raw))
    step = next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= raw * (1 - 1e-12))
    ks = np.arange(np.ceil(vmin / step - 1e-9), np.floor(vmax / step + 1e-9) + 1)
    levels = np.array([float(f"{k * step:.12g}") for k in ks])
    return levels if len(levels) >= 4 else np.linspace(vmin, vmax, 8)


def resolve_scale(
    arrays: Sequence[np.ndarray],
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    levels: int | Sequence[float] | None = None,
    log: bool | None = None,
) -> Scale:
    """One scale for all of `arrays` (NaN ignored).

    Args:
        arrays: value arrays, e.g. the same metric of several surfaces.
        vmin, vmax: the colour range; default the smallest and largest computed value.
        levels: None for round-numbered levels in [vmin, vmax] (1-2-5 per decade on a log
            scale), an int for that many evenly (log: geometrically) spaced levels from
            vmin to vmax inclusive, the exact increasing levels, or a preset name of
            `LEVEL_PRESETS` (``"li2018"``: Li et al.'s 0.1, 0.6, ..., 9.6).
        log: log colouring and levels; None decides from the data (log when it is positive
            and either half the points lie in the lowest 5 % of the range or the values span
            two decades or more, so that several levels fall inside the basin).

    Raises:
        ValueError: nothing computed yet, or an impossible range or levels.
    """
    for name, value in (("vmin", vmin), ("vmax", vmax)):
        if value is not None and not np.isfinite(value):
            raise InputError(f"{name} must be a finite number, got {value}")
    finite = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise InputError("no computed values to plot yet; run landscape.compute on the file")
    if isinstance(levels, str):
        if levels not in LEVEL_PRESETS:
            raise InputError(
                f"levels must be a number, a list or one of {', '.join(LEVEL_PRESETS)}; "
                f"got {levels!r}",
                arg="levels",
            )
        levels, log = list(LEVEL_PRESETS[levels]), False if log is None else log
    if log is None:
        lo, hi = finite.min(), finite.max()
        # Log levels when the values are skewed or span two decades or more: linear levels
        # would leave the basin around the minimum (where networks differ) without a line.
        median = np.median(finite)
        basin = (_nice_levels(lo, hi, False) < median).sum() if hi > lo else 0
        log = bool(
            lo > 0
            and hi > lo
            and (median < lo + SKEW_FRACTION * (hi - lo) or hi >= 100 * lo or basin < BASIN_LEVELS)
        )
    if log:
        positive = finite[finite > 0]
        if positive.size == 0:
            raise InputError("a log scale needs positive values; drop --log")
        finite = positive
    vmin = float(finite.min()) if vmin is None else float(vmin)
    vmax = float(finite.max()) if vmax is None else float(vmax)
    if log and vmin <= 0:
        raise InputError(f"a log scale needs vmin > 0, got {vmin}; raise --vmin or drop --log")
    if vmin > vmax:
        raise InputError(f"vmin ({vmin}) is above vmax ({vmax}); swap them")
    if vmin == vmax:  # a flat surface: widen so the colour map and levels exist
        vmin, vmax = (vmin / 2, vmax * 2) if log else (vmin - 0.5, vmax + 0.5)
    if levels is None:
        lev = _nice_levels(vmin, vmax, log)
    elif isinstance(levels, int | np.integer):
        if not 2 <= levels <= MAX_LEVELS:
            raise InputError(f"levels must be between 2 and {MAX_LEVELS}, got {levels}")
        lev = np.geomspace(vmin, vmax, levels) if log else np.linspace(vmin, vmax, levels)
    else:
        lev = np.asarray(levels, dtype=np.float64)
        if lev.ndim != 1 or not np.isfinite(lev).all():
            raise InputError(f"levels must be finite numbers, got {lev.tolist()}")
        if len(lev) < 1 or len(lev) > MAX_LEVELS or np.any(np.diff(lev) <= 0):
            raise InputError(
                f"levels must increase, at most {MAX_LEVELS} of them, got {lev[:10].tolist()}"
            )
        if log and lev[0] <= 0:
            raise InputError("log-scale levels must be positive; drop --log or the level")
    return Scale(vmin=vmin, vmax=vmax, levels=lev, log=log)


def _styled_scale(
    arrays: Sequence[np.ndarray],
    style: FigureStyle,
    *,
    vmin: float | None,
    vmax: float | None,
    levels: int | Sequence[float] | str | None,
    log: bool | None,
) -> Scale:
    """`resolve_scale` with the style's range, levels and log where the caller gave None."""
    return resolve_scale(
        arrays,
        vmin=style.vmin if vmin is None else vmin,
        vmax=style.vmax if vmax is None else vmax,
        levels=style.levels if levels is None else levels,
        log=style.log if log is None else log,
    )


def _check_2d(surface: Surface) -> None:
    if not surface.is_2d:
        raise InputError(f"surface {surface.label!r} is 1-D; use plot_curve or plot_1d")


def _drawn(surface: Surface, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The meshes to draw lines and surfaces on: the whole grid, or while `compute` fills
    it coarse to fine (every 2^k-th point first), the finest complete sub-grid of every
    2^k-th row and column, a coarser picture of the whole (the full grid would have too few
    complete cells to draw). The viewer does the same (viewer.js, shown)."""
    done, step = surface.computed, 1
    while not done[::step, ::step].all():
        step *= 2
        if min(done[::step, ::step].shape) < 2:
            step = 1  # no complete sub-grid (filled in another order): draw what there is
            break
    x, y = np.meshgrid(surface.alpha[::step], surface.beta[::step], indexing="ij")
    return x, y, z[::step, ::step]


def _label_xy(ax: Axes) -> None:
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel(r"$\beta$")


def _finish(
    ax: Axes,
    artist: Artist,
    surface: Surface,
    split: str,
    metric: str,
    *,
    title: str | None,
    colorbar: bool,
    log: bool = False,
) -> None:
    """The panel's title (default: the surface's name) and colour bar, as the CLI draws them."""
    title = surface.label if title is None else title
    if title:
        ax.set_title(escape_text(title))
    if colorbar:
        ax.figure.colorbar(artist, ax=ax, label=metric_label(split, metric, log=log), shrink=0.85)


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
    """Contour lines with labelled levels (see `resolve_scale`); returns the ContourSet.

    `title` defaults to the surface's name ("" for none); `colorbar` adds one beside `ax`
    (`plot_comparison` draws one shared bar instead); `cmap` is a matplotlib colour map.
    """
    _check_2d(surface)
    z, scale = _prepare(surface, split, metric, vmin, vmax, levels, log)
    x, y, z = _drawn(surface, z)
    cs = ax.contour(x, y, np.ma.masked_invalid(z), levels=scale.levels, cmap=cmap, norm=scale.norm)
    if len(cs.levels):
        ax.clabel(cs, inline=True, fontsize=7, fmt=lambda v: f"{v:.3g}")
    _label_xy(ax)
    _finish(ax, cs, surface, split, metric, title=title, colorbar=colorbar)
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
    """Filled contours; values beyond [vmin, vmax] get the end colours. Returns the ContourSet.

    `title` defaults to the surface's name ("" for none); `colorbar` adds one beside `ax`
    (`plot_comparison` draws one shared bar instead); `cmap` is a matplotlib colour map.
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
    _finish(ax, cs, surface, split, metric, title=title, colorbar=colorbar)
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
    """One cell per grid point, centred on its real (alpha, beta); returns the QuadMesh.

    `title` defaults to the surface's name ("" for none); `colorbar` adds one beside `ax`
    (`plot_comparison` draws one shared bar instead); `cmap` is a matplotlib colour map.
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
    _finish(ax, mesh, surface, split, metric, title=title, colorbar=colorbar)
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
    drawn as log10 on a log scale. Returns the Poly3DCollection.

    `title` defaults to the surface's name ("" for none); `colorbar` adds one beside `ax`
    (`plot_comparison` draws one shared bar instead); `cmap` is a matplotlib colour map.
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
    ax.set_zlabel(metric_label(split, metric, log=scale.log), labelpad=8)
    _finish(ax, art, surface, split, metric, title=title, colorbar=colorbar, log=scale.log)
    return art


def origin_value(
    surface: Surface, *, split: str = "train", metric: str = "loss", log: bool = False
) -> float:
    """The value at the grid point nearest theta* (alpha = beta = 0); NaN if not computed."""
    z = surface_values(surface, split, metric)
    i = int(np.argmin(np.abs(surface.alpha)))
    v = float(z[i] if not surface.is_2d else z[i, int(np.argmin(np.abs(surface.beta)))])
    return float(np.log10(v)) if log and v > 0 else (np.nan if log else v)


def mark_optimum(
    ax: Axes, *, alpha: float = 0.0, beta: float = 0.0, z: float | None = None, **kwargs
) -> Line2D:
    """Mark theta* (the unperturbed model, alpha = beta = 0) with a star.

    On a 3-D Axes pass `z` (e.g. from `origin_value`). Keyword arguments go to ``ax.plot``.
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

    The start is drawn as a circle, the end (theta_final) as a star; with `epochs`,
    every `annotate_every`-th point is labelled with its epoch. Other keyword
    arguments go to ``ax.plot``.
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
            ax.annotate(
                str(int(epochs[i])),
                (alpha[i], beta[i]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
                color=color,
            )
    return line


def plot_curve(
    ax: Axes,
    surface: Surface,
    *,
    split: str = "train",
    metric: str = "loss",
    log: bool = False,
    **kwargs,
) -> Line2D:
    """One 1-D surface as a line over alpha (NaN points left out); returns the Line2D.

    Where the file stores standard errors (format version 2), a band of +- 1.96 SE (95%
    over the evaluated samples) is drawn around the line in its colour.
    """
    if surface.is_2d:
        raise InputError(f"surface {surface.label!r} is 2-D; use plot_contour and friends")
    y = surface_values(surface, split, metric)
    style = {"label": escape_text(f"{surface.label} {split} {metric}")}
    style.update(kwargs)
    (line,) = ax.plot(surface.alpha, y, **style)
    se = surface.standard_error(split, metric)
    if se is not None:
        ax.fill_between(
            surface.alpha, y - 1.96 * se, y + 1.96 * se, color=line.get_color(), alpha=0.2, lw=0
        )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(r"$\alpha$")
    return line


SPLIT_LINESTYLES = ("-", "--", ":", "-.")


def plot_1d(
    ax: Axes,
    surfaces: Sequence[Surface],
    *,
    splits: Sequence[str] = ("train",),
    metric: str = "loss",
    twin: str | None = "accuracy",
    log: bool = False,
) -> list[Line2D]:
    """Several 1-D surfaces overlaid: one colour per surface, one line style per split
    (train solid, test dashed), `metric` on `ax` and `twin` on a twin axis.

    With one surface and a twin the colours are Li et al.'s: the loss blue, the accuracy
    red, each axis labelled in its colour. With several, the twin lines keep their
    surface's colour, thinner and lighter; `surface_figure` draws several surfaces as
    one panel per metric instead, which reads better. A legend is placed below `ax`.
    Returns all lines; those of the twin metric live on ``lines[-1].axes``.
    """
    names = display_names(surfaces)
    right = ax.twinx() if twin else None
    single = len(surfaces) == 1 and right is not None
    lines: list[Line2D] = []
    twin_lines: list[Line2D] = []
    for k, (name, s) in enumerate(zip(names, surfaces, strict=True)):
        color = "C0" if single else f"C{k % 10}"
        for i, split in enumerate(splits):
            dash = SPLIT_LINESTYLES[i % len(SPLIT_LINESTYLES)]
            lines.append(
                plot_curve(
                    ax,
                    s,
                    split=split,
                    metric=metric,
                    log=log,
                    color=color,
                    linestyle=dash,
                    label=escape_text(f"{name} {split} {metric}"),
                )
            )
            if right is not None:
                twin_lines.append(
                    plot_curve(
                        right,
                        s,
                        split=split,
                        metric=twin,
                        color="C3" if single else color,
                        linestyle=dash,
                        linewidth=1.5 if single else 1.0,
                        alpha=1.0 if single else 0.55,
                        label=escape_text(f"{name} {split} {twin}"),
                    )
                )
    colors = {"color": "C0"} if single else {}
    ax.set_ylabel(metric_label("", metric).strip(), **colors)
    if right is not None:
        right.set_ylabel(twin, **({"color": "C3"} if single else {}))
        if twin in ("accuracy", "error"):
            right.set_ylim(-0.02, 1.02)
    every = lines + twin_lines
    # Below the plot: inside, the legend of several overlaid surfaces hides the curves.
    ax.legend(
        every,
        [ln.get_label() for ln in every],
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncols=2 if len(every) < 9 else 3,
        frameon=False,
    )
    return every


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

    For ``kind="surface"`` the Axes must be 3-D. Each panel is titled with its surface's
    name. `style` (see `STYLES`) gives the colour maps and, where these arguments are
    None, the levels and range. Returns the artists, one per surface; ``artists[0]``
    serves for one colorbar.
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
        artists.append(_PLOTTERS[kind](ax, s, log=scale.log, title=name, colorbar=False, **opts))
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
    fig = Figure(figsize=(4.8 * n + 1.2, 4.4), layout="constrained")
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
    label = metric_label(split, metric, log=scale.log and kind == "surface")
    fig.colorbar(artists[0], ax=axes, label=label, shrink=0.85)
    if path is not None and kind != "surface":
        for ax in axes:
            plot_path(ax, path[0], path[1], label="training path")
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
        fig.suptitle(title)
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
        fig = Figure(figsize=(11.0, 4.6), layout="constrained")
        ax, other = fig.subplots(1, 2)
        plot_1d(ax, surfaces, splits=splits, metric=metric, twin=None, log=log)
        plot_1d(other, surfaces, splits=splits, metric=twin, twin=None)
        other.get_legend().remove()
        if twin in ("accuracy", "error"):
            other.set_ylim(-0.02, 1.02)
        axes = [ax, other]
    else:
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")
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
        fig.suptitle(title or names)
    else:
        ax.set_title(title or names)
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
        path: a training path ``(alpha, beta)`` drawn on 2-D panels.
        style: ``"default"`` or ``"li2018"`` (Li et al.'s look: their contour levels,
            coolwarm 3-D surfaces clipped at 10, 1-D loss axis 0..5); see `STYLES`. It
            sets levels, vmin and vmax where these are None, and the colour maps.
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
