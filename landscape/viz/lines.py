"""1-D surfaces as lines: one curve over alpha, or several overlaid with a twin axis.

Like every plot function here, these draw on the `Axes` they are given; `surface_figure`
(`landscape.viz.figures`) assembles them into the figure ``landscape plot`` saves.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from landscape.core.errors import InputError
from landscape.io.surface_file import Surface
from landscape.io.surfaces import surface_values
from landscape.viz.style import display_names, escape_text, metric_label

__all__ = ["SPLIT_LINESTYLES", "plot_1d", "plot_curve"]


def plot_curve(
    ax: Axes,
    surface: Surface,
    *,
    split: str = "train",
    metric: str = "loss",
    log: bool = False,
    **kwargs,
) -> Line2D:
    """One 1-D surface as a line over alpha (NaN points left out).

    Where the file stores standard errors (format version 2), a band of +- 1.96 SE (95%
    over the evaluated samples) is drawn around the line in its colour.

    Args:
        ax: the Axes to draw on.
        surface: a 1-D surface.
        split: train | test.
        metric: loss | accuracy | error.
        log: a log y axis.
        **kwargs: passed to ``ax.plot``.

    Returns:
        The Line2D drawn.
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
    # A path between two models (an interpolation line, a connect curve): t from A to B.
    ax.set_xlabel(r"$t$ (A at 0, B at 1)" if surface.config.get("ckpt2") else r"$\alpha$")
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

    Args:
        ax: the Axes to draw on.
        surfaces: 1-D surfaces.
        splits: the splits drawn, one line style each.
        metric: loss | accuracy | error, on `ax`.
        twin: the metric on a twin (right) axis, or None for none.
        log: a log y axis for `metric`.

    Returns:
        All lines; those of the twin metric live on ``lines[-1].axes``.
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
