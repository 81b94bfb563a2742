"""The files of a training run folder, as ``landscape train`` writes them: ``metrics.csv``
(one row per epoch; JSON lines are read too) and ``config.json`` (the run's settings).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from landscape.core.errors import InputError

__all__ = ["CurvesError", "read_metrics", "read_run_config", "run_folder"]


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


def run_folder(path: str | Path) -> Path:
    """The run folder of `path`: itself if a folder, else the folder holding the file."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def read_run_config(path: str | Path) -> dict[str, Any]:
    """A run's ``config.json`` (the settings of ``landscape train``); {} if it has none."""
    try:
        return json.loads((run_folder(path) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
