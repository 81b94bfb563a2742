"""How figures look and are labelled: named styles, colour maps, axis labels, names.

Shared by the static figures and the viewer's page, so both name and colour alike.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from landscape.core.errors import InputError
from landscape.io.surface_file import Surface

__all__ = [
    "CMAP",
    "DIVERGING",
    "STYLES",
    "FigureStyle",
    "ShownFigure",
    "SpacedTicks",
    "display_names",
    "escape_text",
    "title_text",
    "figure_style",
    "metric_label",
]

CMAP = "viridis"  # every panel's default colour map
DIVERGING = "RdBu_r"  # differences between two surfaces (the viewer's A - B map)


@dataclass(frozen=True)
class FigureStyle:
    """How figures look: colour maps, default levels and value ranges.

    ``li2018`` is Li et al. 2018's look: it matches the paper's contour figures (their
    plot_2D.py: levels 0.1 to 10 in steps of 0.5; its contour call then named
    ``cmpa='summer'``, a typo matplotlib ignores, so the published contours are viridis,
    as here; the code's current plot_2D.py, fixed later in 2018, draws ``summer``) and its
    1-D figures (plot_1D.py: loss on 0..5 beside accuracy). The paper's 3-D surfaces are
    ParaView renderings of h52vtp.py ``--zmax 10 --log``, i.e. ln(min(z, 10) + 0.1):
    ``landscape export FILE --vtk --clip 10 --log`` writes exactly that file; this style's
    matplotlib 3-D (coolwarm, clipped at 10) is a preview of it.

    Attributes:
        cmap: the colour map of contours, filled contours and heat maps.
        cmap3d: that of 3-D surfaces.
        levels: a `LEVEL_PRESETS` name, or None for levels from the data.
        vmin, vmax: the value range (vmax also clips 3-D surfaces); None: the data's.
        loss_max: where the loss axis of 1-D figures ends; None: the data's.
        log: log colouring; None lets the data decide (see `resolve_scale`).
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


def title_text(s: str) -> str:
    """A title the caller wrote: mathtext where it is valid (``$\\alpha$``), else the text
    as written (an unbalanced ``$`` would fail only when the figure is drawn)."""
    from matplotlib.mathtext import MathTextParser

    if "$" not in s:
        return s
    try:
        MathTextParser("path").parse(s)
    except ValueError:
        return escape_text(s)
    return s


class ShownFigure(Figure):
    """A `Figure` that shows itself as an image in Jupyter, whatever the backend.

    The figures the package makes are not pyplot's (nothing global, nothing to close), so
    Jupyter's inline display only knows them once pyplot is imported with the inline
    backend (``%matplotlib inline``); without it a returned figure printed as
    ``<Figure size 640x480 with 2 Axes>``. Its PNG representation below is what Jupyter
    shows then; where the inline backend is active its own display is used instead.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def new_figure(**kwargs: Any) -> ShownFigure:
    """A new figure for a ``*_figure`` function (`ShownFigure`; kwargs as `Figure`'s)."""
    return ShownFigure(**kwargs)


class SpacedTicks(MaxNLocator):
    """Round ticks on a horizontal axis, as many as its drawn width holds with a gap of
    about one character between labels (matplotlib's default assumes three-character
    labels: ``-0.75 -0.50 -0.25`` then run together on a narrow panel).
    """

    GAP = 1.0  # em between two labels
    CHAR = 0.6  # em per character, about that of DejaVu Sans' digits

    def __init__(self) -> None:
        super().__init__(nbins="auto", steps=[1, 2, 2.5, 5, 10])

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        axis = self.axis
        if axis is None or axis.axes is None or axis.axes.figure is None:
            return super().tick_values(vmin, vmax)
        tick = axis.get_major_ticks(1)[0] if axis.get_major_ticks(1) else None
        size = tick.label1.get_fontsize() if tick is not None else 10.0
        em = size * axis.axes.figure.dpi / 72.0  # pixels
        width = axis.axes.bbox.width
        lo, hi = sorted((vmin, vmax))
        ticks = super().tick_values(vmin, vmax)
        for nbins in range(9, 0, -1):
            # the last try: one labelled tick where not even two fit (a tiny panel)
            self._nbins, self._min_n_ticks = nbins, 1 if nbins == 1 else 2
            ticks = super().tick_values(vmin, vmax)
            shown = ticks[(ticks >= lo - 1e-9 * (hi - lo)) & (ticks <= hi + 1e-9 * (hi - lo))]
            chars = sum(len(_plain(v, ticks)) for v in shown)
            if (chars * self.CHAR + self.GAP * (len(shown) - 1)) * em <= width:
                break
        self._nbins, self._min_n_ticks = "auto", 2
        return ticks


def _plain(value: float, ticks: np.ndarray) -> str:
    """How a tick label reads, near enough to measure it: the decimals of the finest step."""
    step = float(np.min(np.diff(ticks))) if len(ticks) > 1 else 1.0
    decimals = max(0, -int(np.floor(np.log10(step)))) if step > 0 else 0
    return f"{value:.{decimals}f}"
