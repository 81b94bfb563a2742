"""Training curves of runs: label runs, tell plain from ResNet, gather their metrics.

He et al. 2015, Fig. 1 and Fig. 6: deeper plain networks have higher training
*and* test error than shallower ones (degradation), while ResNets improve with
depth. Thin dashed lines are training error, bold lines test error, one colour
per run (`landscape.viz.curves` draws them). A run folder's files are read by
`landscape.io.runs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from landscape.io.runs import CurvesError, read_metrics, read_run_config, run_folder

__all__ = [
    "CURVE_METRICS",
    "LAYOUTS",
    "SPLITS",
    "CurvesError",
    "Run",
    "labelled_runs",
    "read_runs",
    "run_kind",
    "run_label",
]

CURVE_METRICS = ("error", "loss")
SPLITS = ("train", "test")
LAYOUTS = ("auto", "single", "split")

Run = str | Path | Mapping[str, np.ndarray]


def run_label(path: str | Path) -> str:
    """The model name of a run (from its ``config.json``), else its folder name."""
    model = read_run_config(path).get("model")
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


def labelled_runs(runs: Mapping[str, Run] | Sequence[Run]) -> list[tuple[str, str, Run]]:
    """(label, kind, run) per run; default labels are model names, made unique."""
    if isinstance(runs, Mapping):
        out = []
        for label, r in runs.items():
            model = read_run_config(r).get("model") if isinstance(r, str | Path) else None
            out.append((str(label), run_kind(str(model or label)), r))
        return out
    out, seen = [], {}
    for i, r in enumerate(runs):
        label = run_label(r) if isinstance(r, str | Path) else f"run {i}"
        kind = run_kind(label)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:  # two runs of one model: tell them apart by folder
            label = f"{label} ({run_folder(r)})" if isinstance(r, str | Path) else f"{label} {i}"
        out.append((label, kind, r))
    return out


def read_runs(runs: Mapping[str, Run] | Sequence[Run]) -> list[tuple[str, dict[str, np.ndarray]]]:
    return [
        (label, read_metrics(r) if isinstance(r, str | Path) else dict(r))
        for label, _, r in labelled_runs(runs)
    ]
