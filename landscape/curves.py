"""Degradation curves: training and test error against epoch for several runs.

He et al. 2015, Fig. 1 and Fig. 6: deeper plain networks have higher training
*and* test error than shallower ones (degradation), while ResNets improve with
depth. Thin dashed lines are training error, bold lines test error, one colour
per run; `degradation_figure` puts plain nets and ResNets in side-by-side
panels sharing the y axis, as in Fig. 6.

    python -m landscape.curves runs/plain20 runs/plain56 runs/resnet20 runs/resnet56 \\
        --out curves.png
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from . import cliutil
from .cliutil import ArgumentParser, add_overwrite_argument, guarded
from .errors import InputError
from .fileio import atomic_savefig, check_output

__all__ = [
    "METRICS",
    "SPLITS",
    "CurvesError",
    "degradation_figure",
    "main",
    "plot_degradation",
    "read_metrics",
    "run_kind",
    "run_label",
]

METRICS = ("error", "loss")
SPLITS = ("train", "test")
LAYOUTS = ("auto", "single", "split")
# He et al. 2015, Fig. 1: thin dashed = training, bold = testing.
_STYLE = {"train": {"linestyle": "--", "linewidth": 1.0}, "test": {"linewidth": 2.2}}

Run = str | Path | Mapping[str, np.ndarray]


class CurvesError(InputError):
    """A run without a readable metrics file; the message names the file and the fix."""


def _metrics_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        raise CurvesError(
            f"no metrics file at {path}; pass a run folder of `landscape train` or its metrics.csv"
        )
    return path


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a run's ``metrics.csv`` (or JSON lines) as float arrays; blanks are NaN.

    Args:
        path: a run folder, its ``metrics.csv``, or a ``.jsonl`` file of one dict per epoch.
    """
    path = _metrics_path(path)
    try:
        with open(path, newline="") as f:
            if path.suffix == ".jsonl":
                rows = [json.loads(line) for line in f if line.strip()]
            else:
                rows = list(csv.DictReader(f))
    except (OSError, json.JSONDecodeError, csv.Error) as e:
        raise CurvesError(f"cannot read {path} ({e}); check the file") from e
    if not rows or "epoch" not in rows[0]:
        raise CurvesError(f"{path} has no 'epoch' column; is it a metrics file of a run?")

    def number(value) -> float:
        try:
            return float(value) if value not in ("", None) else math.nan
        except (TypeError, ValueError):
            return math.nan

    return {key: np.array([number(r.get(key)) for r in rows]) for key in rows[0]}


def _config(path: str | Path) -> dict:
    try:
        return json.loads((_run_folder(path) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def run_label(path: str | Path) -> str:
    """The model name of a run (from its ``config.json``), else its folder name."""
    model = _config(path).get("model")
    if model:
        return str(model)
    path = Path(path)
    return path.name if path.is_dir() else path.parent.name


def run_kind(name: str) -> str:
    """``"plain"``, ``"ResNet"`` or ``"other"`` for a model name or run label."""
    name = name.lower()
    if name.startswith("plain"):
        return "plain"
    return "ResNet" if "resnet" in name else "other"


def _labelled(runs: Mapping[str, Run] | Sequence[Run]) -> list[tuple[str, str, Run]]:
    """(label, kind, run) per run; default labels are model names, made unique."""
    if isinstance(runs, Mapping):
        out = []
        for label, r in runs.items():
            model = _config(r).get("model") if isinstance(r, str | Path) else None
            out.append((str(label), run_kind(str(model or label)), r))
        return out
    out, seen = [], {}
    for i, r in enumerate(runs):
        label = run_label(r) if isinstance(r, str | Path) else f"run {i}"
        kind = run_kind(label)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:  # two runs of one model: tell them apart by folder
            label = f"{label} ({_run_folder(r)})" if isinstance(r, str | Path) else f"{label} {i}"
        out.append((label, kind, r))
    return out


def _run_folder(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_dir() else path.parent


def _resolve(runs: Mapping[str, Run] | Sequence[Run]) -> list[tuple[str, dict[str, np.ndarray]]]:
    return [
        (label, read_metrics(r) if isinstance(r, str | Path) else dict(r))
        for label, _, r in _labelled(runs)
    ]


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
    if metric not in METRICS:
        raise CurvesError(f"metric must be one of {METRICS}, got {metric!r}")
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise CurvesError(f"splits must be among {SPLITS}, got {list(splits)!r}")
    scale = 100.0 if metric == "error" and percent else 1.0
    lines: list[Line2D] = []
    for i, (label, m) in enumerate(_resolve(runs)):
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

    `layout` ``"auto"`` splits the panels when the runs hold both plain and ResNet
    models (read from each run's ``config.json`` or its label).
    """
    if layout not in LAYOUTS:
        raise CurvesError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    groups: dict[str, dict[str, Run]] = {}
    for label, kind, r in _labelled(runs):
        groups.setdefault(kind, {})[label] = r
    split = layout == "split" or (layout == "auto" and {"plain", "ResNet"} <= set(groups))
    panels = (
        [(k, groups[k]) for k in ("plain", "ResNet", "other") if k in groups]
        if split
        else [(None, {label: r for g in groups.values() for label, r in g.items()})]
    )
    fig = Figure(figsize=(5.0 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (kind, group) in zip(axes, panels, strict=True):
        plot_degradation(ax, group, metric=metric, splits=splits)
        if kind is not None:
            ax.set_title(f"{kind} nets" if kind == "plain" else kind)
    if title:
        fig.suptitle(title)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="landscape curves",
        description="Training and test error against epoch for several training runs.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders or metrics files")
    parser.add_argument("--out", required=True, help="figure file (.png, .pdf, .svg)")
    parser.add_argument(
        "--label", action="append", default=None, help="a label per RUN (default: model name)"
    )
    parser.add_argument("--metric", choices=METRICS, default="error")
    parser.add_argument(
        "--splits", default="train,test", help="train,test (default) | train | test"
    )
    parser.add_argument("--layout", choices=LAYOUTS, default="auto", help="auto: plain | ResNet")
    parser.add_argument("--title", default=None)
    parser.add_argument("--dpi", type=cliutil.dpi, default=150)
    add_overwrite_argument(parser, "--out")
    return guarded("landscape curves", lambda: _run(parser.parse_args(argv)))


def _run(args: argparse.Namespace) -> int:
    if args.label is not None and len(args.label) != len(args.runs):
        raise CurvesError(
            f"{len(args.label)} --label for {len(args.runs)} runs; give one per run or none"
        )
    out = check_output(args.out, "figure", overwrite=args.overwrite, inputs=args.runs)
    runs = dict(zip(args.label, args.runs, strict=True)) if args.label else args.runs
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    fig = degradation_figure(
        runs, layout=args.layout, metric=args.metric, splits=splits, title=args.title
    )
    atomic_savefig(fig, out, dpi=args.dpi)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
