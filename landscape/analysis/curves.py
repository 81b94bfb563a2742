"""Training curves of runs: read each run's metrics, label runs, tell plain from ResNet.

He et al. 2015, Fig. 1 and Fig. 6: deeper plain networks have higher training
*and* test error than shallower ones (degradation), while ResNets improve with
depth. Thin dashed lines are training error, bold lines test error, one colour
per run (`landscape.viz.curves` draws them).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from landscape.core.errors import InputError

__all__ = [
    "CURVE_METRICS",
    "LAYOUTS",
    "SPLITS",
    "CurvesError",
    "Run",
    "labelled_runs",
    "read_metrics",
    "read_runs",
    "run_kind",
    "run_label",
]

CURVE_METRICS = ("error", "loss")
SPLITS = ("train", "test")
LAYOUTS = ("auto", "single", "split")

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

    Returns:
        ``{column: array}``, one value per epoch (e.g. ``"epoch"``, ``"test_error"``).
    """
    path = _metrics_path(path)
    try:
        with open(path, newline="") as f:
            if path.suffix == ".jsonl":
                rows = [json.loads(line) for line in f if line.strip()]
            else:
                rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise CurvesError(
            f"cannot read {path} as a metrics table ({type(e).__name__}); pass a run folder, "
            "its metrics.csv or a .jsonl file"
        ) from e
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


def labelled_runs(runs: Mapping[str, Run] | Sequence[Run]) -> list[tuple[str, str, Run]]:
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


def read_runs(runs: Mapping[str, Run] | Sequence[Run]) -> list[tuple[str, dict[str, np.ndarray]]]:
    return [
        (label, read_metrics(r) if isinstance(r, str | Path) else dict(r))
        for label, _, r in labelled_runs(runs)
    ]
