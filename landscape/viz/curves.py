"""Degradation figures: training and test curves of several runs (He et al. 2015, Fig. 1, 6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from landscape.analysis.curves import (
    CURVE_METRICS,
    LAYOUTS,
    SPLITS,
    CurvesError,
    Run,
    labelled_runs,
    read_runs,
)
from landscape.viz.style import new_figure, title_text

__all__ = ["degradation_figure", "plot_degradation"]

# He et al. 2015, Fig. 1: thin dashed = training, bold = testing.
_STYLE = {"train": {"linestyle": "--", "linewidth": 1.0}, "test": {"linewidth": 2.2}}


def plot_degradation(
    ax: Axes,
    runs: Mapping[str, Run] | Sequence[Run],
    *,
    metric: str = "error",
    splits: Sequence[str] = SPLITS,
    percent: bool = True,
    legend: bool = True,
) -> list[Line2D]:
    """Draw train (thin dashed) and test (bold) curves of several runs on `ax`.

    Args:
        ax: the Axes to draw on.
        runs: run folders / metrics files (labelled by model name), or a mapping
            label -> folder, file or the dict of `read_metrics`.
        metric: ``"error"`` (He et al. 2015, Fig. 1) or ``"loss"``.
        splits: which of ``train``, ``test`` to draw.
        percent: errors in percent.
        legend: add a legend of runs and line styles.

    Returns:
        The drawn lines, in the order run by run, split by split.
    """
    if metric not in CURVE_METRICS:
        raise CurvesError(f"metric must be one of {CURVE_METRICS}, got {metric!r}")
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise CurvesError(f"splits must be among {SPLITS}, got {list(splits)!r}")
    scale = 100.0 if metric == "error" and percent else 1.0
    lines: list[Line2D] = []
    for i, (label, m) in enumerate(read_runs(runs)):
        color = f"C{i % 10}"
        for split in splits:
            key = f"{split}_{metric}"
            if key not in m:
                raise CurvesError(f"run {label!r} has no {key!r} column")
            y = m[key] * scale
            keep = ~np.isnan(y)  # epoch 0 has no training error
            (line,) = ax.plot(
                m["epoch"][keep],
                y[keep],
                color=color,
                label=f"{label} {split}",
                marker="o" if keep.sum() == 1 else None,  # a single epoch is a dot
                **_STYLE[split],
            )
            lines.append(line)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    unit = " (%)" if metric == "error" and percent else ""
    ax.set_ylabel(f"{metric}{unit}")
    ax.grid(True, alpha=0.3)
    if legend and lines:
        per_run = [ln for ln in lines if ln.get_label().endswith(f" {splits[-1]}")]
        handles = [
            Line2D(
                [], [], color=ln.get_color(), linewidth=2, label=ln.get_label().rsplit(" ", 1)[0]
            )
            for ln in per_run
        ]
        handles += [Line2D([], [], color="0.3", label=f"{s} {metric}", **_STYLE[s]) for s in splits]
        ax.legend(handles=handles, fontsize="small")
    return lines


def degradation_figure(
    runs: Mapping[str, Run] | Sequence[Run],
    *,
    layout: str = "auto",
    metric: str = "error",
    splits: Sequence[str] = SPLITS,
    title: str | None = None,
) -> Figure:
    """A figure of `plot_degradation`: one panel, or plain nets | ResNets (He et al. Fig. 6).

    Args:
        runs: as in `plot_degradation`.
        metric, splits: as in `plot_degradation`.
        layout: ``"single"`` (one panel), ``"split"`` (plain | ResNet) or ``"auto"``:
            split when the runs hold both plain and ResNet models (read from each run's
            ``config.json`` or its label).
        title: the figure's title.

    Returns:
        A new `Figure`.
    """
    if layout not in LAYOUTS:
        raise CurvesError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    groups: dict[str, dict[str, Run]] = {}
    for label, kind, r in labelled_runs(runs):
        groups.setdefault(kind, {})[label] = r
    split = layout == "split" or (layout == "auto" and {"plain", "ResNet"} <= set(groups))
    panels = (
        [(k, groups[k]) for k in ("plain", "ResNet", "other") if k in groups]
        if split
        else [(None, {label: r for g in groups.values() for label, r in g.items()})]
    )
    fig = new_figure(figsize=(5.0 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (kind, group) in zip(axes, panels, strict=True):
        plot_degradation(ax, group, metric=metric, splits=splits)
        if kind is not None:
            ax.set_title(f"{kind} nets" if kind == "plain" else kind)
    if title:
        fig.suptitle(title_text(title))
    return fig
