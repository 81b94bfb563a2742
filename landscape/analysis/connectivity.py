"""The loss barrier of a path between two minima, with a paired bootstrap interval.

    barrier = max_t L(w(t)) - (L(w(0)) + L(w(1))) / 2

(Garipov et al. 2018; Frankle et al. 2020 use the same "error barrier" for lines). A
curve found by ``landscape connect`` has a barrier near 0 where the minima are connected;
the straight line between them usually has a clear one.

The interval resamples the evaluated samples (`landscape.analysis.uncertainty`: the same
multinomial counts, the percentile interval): each resample reweights every point's
per-sample losses and takes the barrier of the resampled path. The curve and the line
are evaluated on the same samples, so one resample serves both and their difference
``line - curve`` is paired: what the two share (which images are hard) cancels.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from landscape.analysis.uncertainty import (
    Interval,
    _counts,
    _per_sample,
    interval_from_draws,
    samples_shared,
)
from landscape.core.errors import InputError
from landscape.io.surface_file import Surface
from landscape.io.surfaces import read_surface

__all__ = [
    "barrier_intervals",
    "bootstrap_barrier",
    "connectivity_lines",
    "curve_line",
    "is_path_surface",
    "loss_barrier",
]


def loss_barrier(losses: np.ndarray) -> np.ndarray:
    """The barrier of paths sampled from t = 0 to t = 1 along the first axis.

    Args:
        losses: (T, ...) losses at T values of t, the first at t = 0 and the last at 1.

    Returns:
        ``max over t - mean of the two endpoints``, shape ``losses.shape[1:]``.
    """
    losses = np.asarray(losses, dtype=np.float64)
    return losses.max(axis=0) - (losses[0] + losses[-1]) / 2


def bootstrap_barrier(
    curve: np.ndarray,
    line: np.ndarray | None = None,
    *,
    resamples: int = 200,
    seed: int = 0,
) -> dict[str, Interval]:
    """Barriers and their 95% percentile intervals from per-sample losses.

    Args:
        curve: (T, N) per-sample losses along the curve (t = 0 first, t = 1 last).
        line: (T', N) per-sample losses of the same N samples along the straight line.
        resamples: bootstrap resamples of the N samples (the same ones for both paths).
        seed: the resampling seed.

    Returns:
        ``{"curve": ..., "line": ..., "line - curve": ...}`` (the last two with `line`).
    """
    curve = np.asarray(curve, dtype=np.float64)
    n = curve.shape[1]
    if line is not None and line.shape[1] != n:
        raise InputError(
            f"the curve holds {n} samples per point, the line {line.shape[1]}; evaluate both "
            "on the same samples"
        )
    counts = _counts(n, resamples, seed)  # (N, B)
    label = f"paired bootstrap over {n} samples ({resamples} resamples), percentile"
    paths = {"curve": curve} if line is None else {"curve": curve, "line": np.asarray(line)}
    points, draws = {}, {}
    for name, losses in paths.items():
        points[name] = float(loss_barrier(losses.mean(axis=1)))
        draws[name] = loss_barrier((losses @ counts) / n)  # (B,)
    if line is not None:
        points["line - curve"] = points["line"] - points["curve"]
        draws["line - curve"] = draws["line"] - draws["curve"]
    out = {}
    for name, point in points.items():
        low, high = interval_from_draws(point, draws[name], "percentile")
        out[name] = Interval(point, low, high, label)
    return out


def is_path_surface(surface: Surface) -> bool:
    """Whether `surface` is a complete 1-D path from t = 0 to 1 between two checkpoints:
    a curve of ``landscape connect`` or a line of ``compute --ckpt2 --x 0:1:N``."""
    return (
        surface.beta is None
        and len(surface.alpha) >= 2
        and bool(surface.config.get("ckpt2"))
        and math.isclose(float(surface.alpha[0]), 0.0, abs_tol=1e-12)
        and math.isclose(float(surface.alpha[-1]), 1.0, abs_tol=1e-12)
        and bool(surface.computed.all())
    )


def curve_line(curve: Surface) -> Surface | None:
    """The straight line's surface recorded beside a curve's (``provenance["curve"]["line"]``,
    a file in the same folder), or None."""
    info = curve.provenance.get("curve")
    name = info.get("line") if isinstance(info, dict) else None
    if not isinstance(name, str) or curve.path is None:
        return None
    path = Path(curve.path).parent / Path(name).name
    return read_surface(path) if path.is_file() else None


def barrier_intervals(
    curve: Surface,
    line: Surface | None = None,
    *,
    split: str = "train",
    resamples: int = 200,
    seed: int = 0,
) -> dict[str, Interval]:
    """The barrier of a path surface (and of a second one, `line`, and their difference).

    Args:
        curve: a complete 1-D surface on t in [0, 1] (`is_path_surface`).
        line: the straight line on the same samples (paired), or None.
        split: the data split.
        resamples: bootstrap resamples.
        seed: the resampling seed.

    Returns:
        ``{"curve": Interval, "line": ..., "line - curve": ...}``; without per-sample losses
        the values alone (NaN bounds); the line's entries only with `line`.
    """
    for s in (curve, line):
        if s is not None and not is_path_surface(s):
            raise InputError(
                f"{s.path or s.label} is not a complete path from t = 0 to 1 between two "
                "checkpoints; give a landscape connect surface or compute --ckpt2 --x 0:1:N"
            )
    flat = _per_sample(curve, split)
    paired = line is not None and flat is not None and samples_shared(curve, line, split)
    if flat is not None and (line is None or paired):
        return bootstrap_barrier(
            flat,
            _per_sample(line, split) if line is not None else None,
            resamples=resamples,
            seed=seed,
        )
    # No per-sample losses (or other samples): the values alone.
    out = {"curve": float(loss_barrier(curve.get(split, "loss")))}
    if line is not None:
        out["line"] = float(loss_barrier(line.get(split, "loss")))
        out["line - curve"] = out["line"] - out["curve"]
    return {k: Interval(v, math.nan, math.nan, "no per-sample losses") for k, v in out.items()}


def connectivity_lines(
    surfaces: list[Surface],
    *,
    split: str = "train",
    resamples: int = 200,
    intervals: bool = True,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Text lines and JSON records of the barrier of every path surface among `surfaces`.

    Args:
        surfaces: surfaces of any kind; those that are not paths are skipped.
        split: the data split.
        resamples: bootstrap resamples.
        intervals: with intervals (else the values alone).

    Returns:
        ``(lines, records)``: a curve with its line (and the paired difference), a lone
        line by itself.
    """
    lines, records = [], []
    for s in surfaces:
        if not is_path_surface(s):
            continue
        line = curve_line(s) if "curve" in s.provenance else None
        if line is not None and not is_path_surface(line):
            line = None
        found = barrier_intervals(s, line, split=split, resamples=resamples)
        if not intervals:
            found = {k: Interval(i.value, math.nan, math.nan, i.method) for k, i in found.items()}
        name = str(s.path) if s.path is not None else s.label
        text = f"{name}: barrier {found['curve']}"
        if line is not None:
            text += f"; straight line {found['line']}; line - curve {found['line - curve']}"
            if found["line - curve"].excludes_zero():
                text += " (a difference)"
        lines.append(text)
        records.append(
            {
                "file": name,
                "line_file": str(line.path) if line is not None else None,
                **{
                    k: {n: (v if math.isfinite(v) else None) for n, v in _parts(i).items()}
                    for k, i in found.items()
                },
            }
        )
    return lines, records


def _parts(i: Interval) -> dict[str, float]:
    return {"value": i.value, "low": i.low, "high": i.high}
