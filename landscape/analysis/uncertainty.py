"""Is a difference real? Intervals on surface metrics, and comparisons that say so.

Two sources of uncertainty, each measured where the files allow it:

* **the samples**: a surface file with per-sample losses (``landscape compute
  --per-sample``) is resampled with replacement (a bootstrap over the evaluated samples:
  every resample reweights the same per-sample losses, no re-evaluation), and each metric
  is recomputed on each resampled surface; the interval is the percentile interval;
* **the directions**: files of one checkpoint and settings that differ only in ``--seed``
  are grouped; the interval is the t interval of the mean over the seeds.

A comparison of two surfaces (or groups) is a difference only when the two intervals do
not overlap; otherwise it is reported as not distinguishable at this sample size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from landscape.analysis.metrics import METRIC_NAMES, grid_metrics, surface_metrics
from landscape.core.errors import InputError
from landscape.io.surface_file import Surface, read_per_sample

__all__ = [
    "KEY_METRICS",
    "Interval",
    "Measurement",
    "comparison_lines",
    "intervals_table",
    "measure",
    "bootstrap_metrics",
    "compare",
    "group_by_seed",
    "seed_metrics",
]

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (then ~normal).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
# Settings that may differ between the files of one seed group (besides seed itself).
_IGNORED = {"seed", "label", "device", "batch_size", "chunk_size", "strategy", "per_sample"}


@dataclass(frozen=True)
class Interval:
    """A metric's value and its 95% interval; `method` says where the interval comes from."""

    value: float
    low: float
    high: float
    method: str

    @property
    def known(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share a point (unknown intervals always do)."""
        if not (self.known and other.known):
            return True
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "nan"
        if not self.known:
            return f"{self.value:.4g}"
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


def bootstrap_metrics(
    surface: Surface,
    *,
    split: str = "train",
    resamples: int = 200,
    seed: int = 0,
    **metric_kwargs: Any,
) -> dict[str, Interval] | None:
    """Percentile 95% intervals of every metric by resampling the evaluated samples.

    Each resample draws N of the N samples with replacement (multinomial counts) and
    recomputes the mean-loss surface from the stored per-sample losses, then every
    metric on it. Returns None when the file holds no per-sample losses.
    """
    if surface.path is None:
        return None
    losses = read_per_sample(surface.path, split)
    if losses is None:
        return None
    if resamples < 2:
        raise InputError(f"resamples must be at least 2; got {resamples}", arg="resamples")
    n = losses.shape[-1]
    flat = losses.reshape(-1, n).astype(np.float64)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).T  # (N, B)
    # A point not computed yet has NaN losses: it stays NaN in every resample.
    means = (np.nan_to_num(flat, nan=0.0) @ counts) / n  # (points, B)
    means[np.isnan(flat).any(-1)] = np.nan
    point = surface_metrics(surface, split=split, **metric_kwargs)
    draws = {name: [] for name in METRIC_NAMES}
    for b in range(resamples):
        f = means[:, b].reshape(losses.shape[:-1])
        for name, value in grid_metrics(surface.alpha, surface.beta, f, **metric_kwargs).items():
            draws[name].append(value)
    method = f"bootstrap over {n} samples ({resamples} resamples)"
    out = {}
    for name in METRIC_NAMES:
        values = np.asarray(draws[name], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size < resamples // 2:
            out[name] = Interval(point[name], math.nan, math.nan, method)
            continue
        low, high = np.percentile(values, [2.5, 97.5])
        out[name] = Interval(point[name], float(low), float(high), method)
    return out


def _union(a: Interval, b: Interval) -> Interval:
    if not (a.known and b.known):
        return a if a.known else Interval(a.value, b.low, b.high, a.method)
    return Interval(a.value, min(a.low, b.low), max(a.high, b.high), a.method)


def _group_key(surface: Surface) -> str:
    config = {k: v for k, v in surface.config.items() if k not in _IGNORED}
    return repr((sorted(config.items()), surface.provenance.get("ckpt_sha256")))


def group_by_seed(surfaces: Sequence[Surface]) -> list[list[int]]:
    """Indices of surfaces grouped by checkpoint and settings, seeds aside (input order).

    A group of two or more is one measurement repeated over direction seeds.
    """
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(surfaces):
        groups.setdefault(_group_key(s), []).append(i)
    out = []
    for group in groups.values():
        seeds = [repr(surfaces[i].config.get("seed")) for i in group]
        # The same seed twice (a file given twice, or a copy) is not a repeat over seeds.
        out += [group] if len(set(seeds)) == len(seeds) else [[i] for i in group]
    return out


def seed_metrics(
    surfaces: Sequence[Surface], *, split: str = "train", **metric_kwargs: Any
) -> dict[str, Interval]:
    """Mean of each metric over surfaces that differ only in their direction seed, with
    the t interval of that mean (95%)."""
    seeds = [s.config.get("seed") for s in surfaces]
    if len(surfaces) < 2 or len(set(map(repr, seeds))) != len(seeds):
        raise InputError("seed intervals need two or more surfaces with different seeds")
    per = [surface_metrics(s, split=split, **metric_kwargs) for s in surfaces]
    k = len(per)
    t = _T975[k - 2] if k - 1 <= len(_T975) else 1.96
    method = f"{k} direction seeds (t interval of the mean)"
    out = {}
    for name in METRIC_NAMES:
        values = np.asarray([m[name] for m in per], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size < 2:
            mean = float(values.mean()) if values.size else math.nan
            out[name] = Interval(mean, math.nan, math.nan, method)
            continue
        mean = float(values.mean())
        half = t * float(values.std(ddof=1)) / math.sqrt(values.size)
        out[name] = Interval(mean, mean - half, mean + half, method)
    return out


def compare(
    a: Mapping[str, Interval], b: Mapping[str, Interval], names: Sequence[str] = METRIC_NAMES
) -> dict[str, str]:
    """For each metric: ``"A < B"``, ``"A > B"`` when the intervals do not overlap, else
    ``"not distinguishable at this sample size"`` (also when an interval is unknown)."""
    out = {}
    for name in names:
        x, y = a[name], b[name]
        if not (math.isfinite(x.value) and math.isfinite(y.value)):
            out[name] = "unknown"
        elif x.overlaps(y) or not (x.known and y.known):
            out[name] = "not distinguishable at this sample size"
        else:
            out[name] = "A < B" if x.value < y.value else "A > B"
    return out


# The metrics shown with intervals: the ones that summarize shape (see analysis.metrics).
KEY_METRICS = (
    "center_loss",
    "nonconvex_fraction",
    "curvature_ratio_median",
    "local_minima",
    "basin_radius",
    "sharpness",
)


@dataclass(frozen=True)
class Measurement:
    """One network's metrics with intervals: a file alone, or a group of seed files."""

    label: str
    files: list[str]
    intervals: dict[str, Interval]
    note: str  # where the intervals come from, or why there are none


def measure(
    surfaces: Sequence[Surface],
    *,
    split: str = "train",
    resamples: int = 200,
    **metric_kwargs: Any,
) -> list[Measurement]:
    """Group seed files automatically, then give each group (seed intervals) or lone file
    (bootstrap intervals when it has per-sample losses) its intervals."""
    out = []
    for group in group_by_seed(surfaces):
        members = [surfaces[i] for i in group]
        files = [str(s.path) if s.path is not None else s.label for s in members]
        label = members[0].label
        if len(members) >= 2:
            seeds = ",".join(str(s.config.get("seed")) for s in members)
            intervals = seed_metrics(members, split=split, **metric_kwargs)
            note = next(iter(intervals.values())).method
            # The seeds measure the directions' variability only; where the samples' is
            # known too, the interval covers both (their union: conservative).
            sampled = bootstrap_metrics(
                members[0], split=split, resamples=resamples, **metric_kwargs
            )
            if sampled is not None:
                intervals = {k: _union(v, sampled[k]) for k, v in intervals.items()}
                note += f", widened by the {next(iter(sampled.values())).method}"
            out.append(Measurement(f"{label} (seeds {seeds})", files, intervals, note))
            continue
        intervals = bootstrap_metrics(members[0], split=split, resamples=resamples, **metric_kwargs)
        if intervals is not None:
            note = next(iter(intervals.values())).method
        else:
            point = surface_metrics(members[0], split=split, **metric_kwargs)
            intervals = {k: Interval(v, math.nan, math.nan, "none") for k, v in point.items()}
            note = (
                "no interval: the file has no per-sample losses (compute with --per-sample on) "
                "and no other seeds"
            )
        out.append(Measurement(label, files, intervals, note))
    return out


def intervals_table(measurements: Sequence[Measurement]) -> str:
    """One line per measurement: each key metric as ``value [low, high]`` (95%)."""
    lines = []
    for m in measurements:
        cells = ", ".join(f"{name} {m.intervals[name]}" for name in KEY_METRICS)
        lines.append(f"{m.label}: {cells}\n    ({m.note})")
    return "\n".join(lines)


def comparison_lines(measurements: Sequence[Measurement]) -> list[str]:
    """Every pair of measurements, metric by metric: a difference only where the 95%
    intervals do not overlap, else "not distinguishable at this sample size"."""
    lines = []
    for i, a in enumerate(measurements):
        for b in measurements[i + 1 :]:
            verdicts = compare(a.intervals, b.intervals, KEY_METRICS)
            lines.append(f"{a.label} vs {b.label}:")
            for name, verdict in verdicts.items():
                text = f"{a.label} {verdict[2]} {b.label}" if verdict.startswith("A ") else verdict
                lines.append(f"  {name}: {text}")
    return lines
