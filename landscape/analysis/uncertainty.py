"""Is a difference real? Intervals on surface metrics, and comparisons that say so.

Two sources of uncertainty, each measured where the files allow it:

* **the samples**: a surface file with per-sample losses (``landscape compute
  --per-sample``) is resampled with replacement (a bootstrap over the evaluated samples:
  every resample reweights the same per-sample losses, no re-evaluation), and each metric
  is recomputed on each resampled surface (`batch_metrics`, all resamples at once);
* **the directions**: files of one checkpoint and settings that differ only in ``--seed``
  are grouped; the seeds' spread gives a t interval of their mean (t from the number of
  finite values), combined with the samples' bootstrap of that mean (the same images
  resampled in every seed file) in quadrature.

Each metric has the interval whose coverage was measured on the published 51x51 surfaces
(``benchmarks/coverage.py``, table in docs/results.md): `INTERVAL_METHODS`. A metric with
no honest interval there (`local_minima`, an integer count; `saddle_fraction`) is
reported without one, and no difference in it is claimed.

Comparisons: two surfaces of **the same samples** (the same data fingerprint and number
of per-sample losses) are compared **paired**: the difference of each metric is
bootstrapped with the same resampled images on both sides, and a difference is called
when its 95% interval excludes 0. Otherwise (different samples, seed groups) the
comparison is unpaired and says so: a difference only when the two intervals do not
overlap (conservative).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from landscape.analysis.metrics import METRIC_NAMES, batch_metrics, surface_metrics
from landscape.core.errors import InputError
from landscape.io.surface_file import Surface, read_per_sample

__all__ = [
    "INTERVAL_METHODS",
    "KEY_METRICS",
    "Interval",
    "Measurement",
    "bootstrap_metrics",
    "compare",
    "compare_paired",
    "comparison_lines",
    "group_by_seed",
    "interval_from_draws",
    "intervals_table",
    "measure",
    "paired_differences",
    "samples_shared",
    "seed_metrics",
    "t_quantile",
]

# The metrics shown with intervals: the ones that summarize shape (see analysis.metrics).
KEY_METRICS = (
    "center_loss",
    "nonconvex_fraction",
    "saddle_fraction",
    "local_minima",
    "basin_radius",
    "sharpness",
)

# The interval of each metric, chosen by its measured coverage (benchmarks/coverage.py,
# docs/results.md): "percentile" (the 2.5% and 97.5% quantiles of the bootstrap values)
# for the smooth metrics. The non-convex fraction is biased upward by noise (sample noise
# adds curvature noise: more points look non-convex), and the percentile interval adds
# that bias a second time (coverage 0.45-0.76 for resnet56); the basic interval subtracts
# the bootstrap's bias, but the bootstrap sees the bias of a surface that is already noisy
# and finds only about half of it (coverage 0.85-0.89; shifting by twice the bias covers
# worse still: the bias estimate is noisy). "span" holds both the uncorrected interval and
# the corrected one widened by the bias: 0.91-0.96 in the pilot, 0.92-0.95 in the fresh
# run docs/results.md shows. Metrics not listed get no interval: in the pilot no method's
# coverage was within 0.90-0.98 for both networks, both sample sizes and the difference.
INTERVAL_METHODS = {
    "center_loss": "percentile",
    "nonconvex_fraction": "span",
    "basin_radius": "percentile",
    "sharpness": "percentile",
}

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = NormalDist().inv_cdf(0.975)
# Settings that may differ between the files of one seed group (besides seed itself).
_IGNORED = {"seed", "label", "device", "batch_size", "chunk_size", "strategy", "per_sample"}


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (table to 30, then
    the Cornish-Fisher expansion, within 1e-3 of the exact value)."""
    if df < 1:
        raise ValueError(f"t needs at least 1 degree of freedom; got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


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

    def excludes_zero(self) -> bool:
        """Whether the interval is known and lies wholly above or below 0."""
        return self.known and (self.low > 0 or self.high < 0)

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "nan"
        if not self.known:
            return f"{self.value:.4g}"
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


def interval_from_draws(point: float, draws: np.ndarray, method: str) -> tuple[float, float]:
    """The 95% interval of `method` from a statistic's value `point` and its bootstrap
    values `draws`; NaN when fewer than half the draws are finite.

    "percentile": the 2.5% and 97.5% quantiles of the draws; "basic": that interval
    reflected about `point` (``2 point - q``: it subtracts the bootstrap's bias instead of
    adding it); "basic-widened": the basic interval widened on both sides by the
    bootstrap's bias ``|mean(draws) - point|``; "span": the smallest interval holding both
    the percentile and the basic-widened intervals.
    """
    draws = np.asarray(draws, dtype=np.float64)
    finite = draws[np.isfinite(draws)]
    if not math.isfinite(point) or finite.size < max(2, draws.size / 2):
        return math.nan, math.nan
    lo, hi = (float(q) for q in np.percentile(finite, [2.5, 97.5]))
    if method == "percentile":
        return lo, hi
    if method == "basic":
        return 2 * point - hi, 2 * point - lo
    if method in ("basic-widened", "span"):
        bias = abs(float(finite.mean()) - point)
        low, high = 2 * point - hi - bias, 2 * point - lo + bias
        if method == "span":  # both: the uncorrected and the corrected-and-widened
            low, high = min(low, lo), max(high, hi)
        return low, high
    raise ValueError(f"unknown interval method {method!r}")


# ------------------------------------------------------------------ the samples' bootstrap


def _per_sample(surface: Surface, split: str) -> np.ndarray | None:
    """(points, N) float64 per-sample losses of `split`, NaN rows where not computed."""
    if surface.path is None:
        return None
    losses = read_per_sample(surface.path, split)
    if losses is None:
        return None
    return losses.reshape(-1, losses.shape[-1]).astype(np.float64)


def _counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(N, B) multinomial counts: each column one resample of N of the N samples."""
    if resamples < 2:
        raise InputError(f"resamples must be at least 2; got {resamples}", arg="resamples")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).T.astype(np.float64)


def _resampled(surface: Surface, flat: np.ndarray, counts: np.ndarray, **kw: Any) -> dict:
    """Every batch metric of `surface` on each resample: name -> (B,) values."""
    n = flat.shape[1]
    means = (np.nan_to_num(flat, nan=0.0) @ counts) / n  # (points, B)
    means[np.isnan(flat).any(-1)] = np.nan  # a point not computed stays unknown
    shape = surface.shape
    fs = means.T.reshape(-1, *shape)
    return batch_metrics(surface.alpha, surface.beta, fs, **kw)


def _interval(name: str, point: float, draws: np.ndarray | None, label: str) -> Interval:
    method = INTERVAL_METHODS.get(name)
    if method is None or draws is None:
        return Interval(point, math.nan, math.nan, label)
    low, high = interval_from_draws(point, draws, method)
    return Interval(point, low, high, f"{label}, {method}")


def bootstrap_metrics(
    surface: Surface,
    *,
    split: str = "train",
    resamples: int = 200,
    seed: int = 0,
    **metric_kwargs: Any,
) -> dict[str, Interval] | None:
    """95% intervals of the metrics by resampling the evaluated samples.

    Each resample draws N of the N samples with replacement (multinomial counts) and
    recomputes the mean-loss surface from the stored per-sample losses, then every
    metric on it; each metric of `INTERVAL_METHODS` gets that method's interval, the
    others none (their value only).

    Args:
        surface: a surface file read with its per-sample losses.
        split: the data split.
        resamples: how many resamples.
        seed: the resampling seed.
        **metric_kwargs: settings of `surface_metrics` (radius, basin_delta, n_rays).

    Returns:
        ``{metric name: Interval}``, or None when the file holds no per-sample losses.
    """
    flat = _per_sample(surface, split)
    if flat is None:
        return None
    point = surface_metrics(surface, split=split, **metric_kwargs)
    counts = _counts(flat.shape[1], resamples, seed)
    draws = _resampled(surface, flat, counts, **metric_kwargs)
    label = f"bootstrap over {flat.shape[1]} samples ({resamples} resamples)"
    return {name: _interval(name, point[name], draws.get(name), label) for name in METRIC_NAMES}


def samples_shared(a: Surface, b: Surface, split: str = "train") -> bool:
    """Whether two surfaces were evaluated on the same samples, in the same order, with
    every sample's loss kept: the same data fingerprint (``provenance["data_sha256"]``)
    and the same number of per-sample losses. Then their metrics can be compared paired."""
    fa = (a.provenance.get("data_sha256") or {}).get(split)
    fb = (b.provenance.get("data_sha256") or {}).get(split)
    if not fa or fa != fb or a.path is None or b.path is None:
        return False
    la, lb = read_per_sample(a.path, split), read_per_sample(b.path, split)
    return la is not None and lb is not None and la.shape[-1] == lb.shape[-1]


def paired_differences(
    a: Surface,
    b: Surface,
    *,
    split: str = "train",
    resamples: int = 200,
    seed: int = 0,
    **metric_kwargs: Any,
) -> dict[str, Interval] | None:
    """95% intervals of each metric's difference ``a - b`` where both surfaces hold the
    losses of the same samples (`samples_shared`): every resample draws the same images
    on both sides, so what the two share (which images are easy) cancels. Each metric's
    interval is its `INTERVAL_METHODS` method applied to the differences; None when the
    samples are not shared."""
    if not samples_shared(a, b, split):
        return None
    fa, fb = _per_sample(a, split), _per_sample(b, split)
    counts = _counts(fa.shape[1], resamples, seed)
    da = _resampled(a, fa, counts, **metric_kwargs)
    db = _resampled(b, fb, counts, **metric_kwargs)
    pa = surface_metrics(a, split=split, **metric_kwargs)
    pb = surface_metrics(b, split=split, **metric_kwargs)
    label = f"paired bootstrap over the same {fa.shape[1]} samples ({resamples} resamples)"
    return {
        name: _interval(
            name,
            pa[name] - pb[name],
            da[name] - db[name] if name in da and name in db else None,
            label,
        )
        for name in METRIC_NAMES
    }


# ------------------------------------------------------------------ the directions' spread


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


def _seed_interval(values: Sequence[float], label: str) -> Interval:
    """Mean of the finite `values` with the t interval of that mean (t with the finite
    count minus one degrees of freedom); unknown with fewer than two finite values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return Interval(
            float(values.mean()) if values.size else math.nan, math.nan, math.nan, label
        )
    mean = float(values.mean())
    half = t_quantile(values.size - 1) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return Interval(mean, mean - half, mean + half, label)


def seed_metrics(
    surfaces: Sequence[Surface],
    *,
    split: str = "train",
    resamples: int = 200,
    seed: int = 0,
    **metric_kwargs: Any,
) -> dict[str, Interval]:
    """Mean of each metric over surfaces that differ only in their direction seed, with a
    95% interval of that mean that covers both the directions and the samples.

    The directions: the t interval of the mean over the seeds (t from the number of
    finite values). The samples, where every file holds per-sample losses: the bootstrap
    of the mean over the seeds, each resample drawing the same images in every file that
    shares them (the metric's `INTERVAL_METHODS` method). The two are combined in
    quadrature about the centre of the samples' interval. A metric without a method, or
    whose combined interval has zero width (a handful of equal values and no sample
    noise measured), gets no interval: nothing can be claimed from it.
    """
    seeds = [s.config.get("seed") for s in surfaces]
    if len(surfaces) < 2 or len(set(map(repr, seeds))) != len(seeds):
        raise InputError("seed intervals need two or more surfaces with different seeds")
    per = [surface_metrics(s, split=split, **metric_kwargs) for s in surfaces]
    k = len(per)
    label = f"{k} direction seeds (t interval of the mean)"
    flats = [_per_sample(s, split) for s in surfaces]
    sampled = None
    if all(f is not None for f in flats):
        # One set of counts per distinct sample set: files of the same samples share it.
        keys = [
            ((s.provenance.get("data_sha256") or {}).get(split) or f"file{i}", f.shape[1])
            for i, (s, f) in enumerate(zip(surfaces, flats, strict=True))
        ]
        counts = {
            key: _counts(key[1], resamples, seed + j) for j, key in enumerate(dict.fromkeys(keys))
        }
        draws = [
            _resampled(s, f, counts[key], **metric_kwargs)
            for s, f, key in zip(surfaces, flats, keys, strict=True)
        ]
        sampled = {name: np.mean([d[name] for d in draws], axis=0) for name in draws[0]}
        n = ",".join(sorted({str(key[1]) for key in keys}))
        label = (
            f"{k} direction seeds (t interval of the mean) combined with the bootstrap over "
            f"their {n} samples ({resamples} resamples)"
        )
    out = {}
    for name in METRIC_NAMES:
        seed_part = _seed_interval([m[name] for m in per], label)
        mean = seed_part.value
        method = INTERVAL_METHODS.get(name)
        if method is None or not seed_part.known:
            out[name] = Interval(mean, math.nan, math.nan, label)
            continue
        half_seed = (seed_part.high - seed_part.low) / 2
        centre, half_samples = mean, 0.0
        if sampled is not None and name in sampled:
            low, high = interval_from_draws(mean, sampled[name], method)
            if math.isfinite(low) and math.isfinite(high):
                centre, half_samples = (low + high) / 2, (high - low) / 2
        half = math.hypot(half_seed, half_samples)
        if not half > 1e-12 * max(1.0, abs(mean)):
            # equal values (to rounding) and no sample noise measured: claim nothing
            out[name] = Interval(mean, math.nan, math.nan, label)
            continue
        out[name] = Interval(mean, centre - half, centre + half, label)
    return out


# ------------------------------------------------------------------ comparisons


def compare(
    a: Mapping[str, Interval], b: Mapping[str, Interval], names: Sequence[str] = METRIC_NAMES
) -> dict[str, str]:
    """Unpaired: for each metric ``"A < B"``, ``"A > B"`` when the intervals do not
    overlap, else ``"not distinguishable at this sample size"`` (also when an interval is
    unknown)."""
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


def compare_paired(
    differences: Mapping[str, Interval], names: Sequence[str] = METRIC_NAMES
) -> dict[str, str]:
    """Paired: for each metric ``"A < B"`` or ``"A > B"`` when the 95% interval of the
    difference A - B excludes 0, else ``"not distinguishable at this sample size"``."""
    out = {}
    for name in names:
        d = differences[name]
        if not math.isfinite(d.value):
            out[name] = "unknown"
        elif not d.excludes_zero():
            out[name] = "not distinguishable at this sample size"
        else:
            out[name] = "A < B" if d.high < 0 else "A > B"
    return out


@dataclass(frozen=True)
class Measurement:
    """One network's metrics with intervals: a file alone, or a group of seed files."""

    label: str
    files: list[str]
    intervals: dict[str, Interval]
    note: str  # where the intervals come from, or why there are none
    surfaces: tuple[Surface, ...] = field(default=(), repr=False, compare=False)
    settings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def measure(
    surfaces: Sequence[Surface],
    *,
    split: str = "train",
    resamples: int = 200,
    **metric_kwargs: Any,
) -> list[Measurement]:
    """Group seed files automatically, then give each group (seeds and samples combined)
    or lone file (bootstrap intervals when it has per-sample losses) its intervals.

    Args:
        surfaces: the surfaces to measure (seed files of one setting are grouped).
        split: the data split.
        resamples: bootstrap resamples per file.
        **metric_kwargs: settings of `surface_metrics` (radius, basin_delta, n_rays).

    Returns:
        One `Measurement` per group or lone file, in the order of their first file.
    """
    out = []
    settings = dict(split=split, resamples=resamples, **metric_kwargs)
    for group in group_by_seed(surfaces):
        members = [surfaces[i] for i in group]
        files = [str(s.path) if s.path is not None else s.label for s in members]
        label = members[0].label
        if len(members) >= 2:
            seeds = ",".join(str(s.config.get("seed")) for s in members)
            intervals = seed_metrics(members, split=split, resamples=resamples, **metric_kwargs)
            note = next(iter(intervals.values())).method
            out.append(
                Measurement(
                    f"{label} (seeds {seeds})", files, intervals, note, tuple(members), settings
                )
            )
            continue
        intervals = bootstrap_metrics(members[0], split=split, resamples=resamples, **metric_kwargs)
        if intervals is not None:
            note = intervals["center_loss"].method.split(", ")[0]
        else:
            point = surface_metrics(members[0], split=split, **metric_kwargs)
            intervals = {k: Interval(v, math.nan, math.nan, "none") for k, v in point.items()}
            note = (
                "no interval: the file has no per-sample losses (compute with --per-sample on) "
                "and no other seeds"
            )
        out.append(Measurement(label, files, intervals, note, tuple(members), settings))
    # Two rows of one network (a 1-D and a 2-D file, two grids) must read apart.
    labels = [m.label for m in out]
    return [
        dataclasses.replace(m, label=f"{m.label} ({Path(m.files[0]).name})")
        if labels.count(m.label) > 1
        else m
        for m in out
    ]


def _methods_note(names: Sequence[str]) -> str:
    parts = [f"{n} {INTERVAL_METHODS[n]}" for n in names if n in INTERVAL_METHODS]
    none = [n for n in names if n not in INTERVAL_METHODS]
    text = "intervals: " + ", ".join(parts)
    if none:
        text += f"; no interval for {', '.join(none)} (coverage not honest)"
    return text


def intervals_table(measurements: Sequence[Measurement]) -> str:
    """One line per measurement: each key metric as ``value [low, high]`` (95%), or its
    value alone where it has no interval.

    Args:
        measurements: from `measure`.

    Returns:
        The table as text.
    """
    lines = []
    for m in measurements:
        cells = ", ".join(f"{name} {m.intervals[name]}" for name in KEY_METRICS)
        lines.append(f"{m.label}: {cells}\n    ({m.note})")
    if measurements:
        lines.append(f"({_methods_note(KEY_METRICS)}; benchmarks/coverage.py)")
    return "\n".join(lines)


def _paired(a: Measurement, b: Measurement) -> dict[str, Interval] | None:
    if len(a.surfaces) != 1 or len(b.surfaces) != 1:
        return None
    kw = dict(a.settings)
    return paired_differences(a.surfaces[0], b.surfaces[0], **kw)


def comparison_lines(measurements: Sequence[Measurement]) -> list[str]:
    """Every pair of measurements, metric by metric. Two files of the same samples:
    paired, the difference A - B with its 95% interval, a difference where it excludes 0.
    Otherwise unpaired, said so: a difference only where the two intervals do not overlap.
    Either way "not distinguishable at this sample size" where nothing can be claimed.

    Args:
        measurements: from `measure`.

    Returns:
        One line per pair and metric.
    """
    lines = []
    for i, a in enumerate(measurements):
        for b in measurements[i + 1 :]:
            dims = {m.surfaces[0].is_2d for m in (a, b) if m.surfaces}
            if len(dims) > 1:  # a slice and a plane: the metrics mean different things
                lines.append(f"{a.label} vs {b.label}: not compared (a 1-D and a 2-D surface)")
                continue
            diffs = _paired(a, b)
            if diffs is not None:
                verdicts = compare_paired(diffs, KEY_METRICS)
                method = diffs["center_loss"].method.split(", ")[0]
                lines.append(
                    f"{a.label} - {b.label} ({method}; a difference where the 95% "
                    "interval of A - B excludes 0):"
                )
            else:
                verdicts = compare(a.intervals, b.intervals, KEY_METRICS)
                why = (
                    "seed groups"
                    if len(a.surfaces) > 1 or len(b.surfaces) > 1
                    else "different samples"
                )
                lines.append(
                    f"{a.label} vs {b.label} (unpaired, {why}: a difference only where the "
                    "intervals do not overlap):"
                )
            for name, verdict in verdicts.items():
                if name not in INTERVAL_METHODS:
                    verdict = "no claim (no interval)"
                text = f"{a.label} {verdict[2]} {b.label}" if verdict.startswith("A ") else verdict
                if diffs is not None:
                    d = diffs[name]
                    text = f"{d} -> {text}" if d.known else f"{d} -> {text}"
                lines.append(f"  {name}: {text}")
    return lines
