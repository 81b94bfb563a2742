"""The contour-level rule: a value range, levels and linear or log colouring from the data.

One rule for every figure: the static figures (`landscape.viz.figures`) resolve their scale
here, and the viewer's page (`landscape.viz.viewer`, which hands these constants to
viewer.js) draws the same lines, so a contour reads the same in a PNG and in the browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm, Normalize

from landscape.core.errors import InputError

__all__ = [
    "BASIN_LEVELS",
    "DEFAULT_LEVELS",
    "LEVEL_PRESETS",
    "LOG_SUBS",
    "MAX_LEVELS",
    "SKEW_FRACTION",
    "Scale",
    "colorbar_ticks",
    "cover_ranges",
    "format_levels",
    "page_rule",
    "resolve_scale",
]

# More contour lines than this cannot be told apart, and matplotlib would take minutes.
MAX_LEVELS = 500
DEFAULT_LEVELS = 15
# Named level sets: "li2018" is Li et al. 2018's contour levels (0.1 to 10 in steps of 0.5,
# their plot_2D.py defaults), for figures to set beside theirs.
LEVEL_PRESETS = {"li2018": tuple(np.round(np.arange(0.1, 10.0, 0.5), 10))}

# Auto log scale when half the computed points sit in the lowest 5 % of the linear range:
# linear levels would then all crowd around the peaks (the chaotic no-skip surfaces).
SKEW_FRACTION = 0.05


@dataclass(frozen=True)
class Scale:
    """A value range, contour levels and linear or log colouring, shared by the panels.

    Attributes:
        vmin, vmax: the colour range.
        levels: the contour levels, increasing.
        log: log colouring and levels; `norm` is the matching matplotlib norm.
    """

    vmin: float
    vmax: float
    levels: np.ndarray
    log: bool

    @property
    def norm(self) -> Normalize:
        return LogNorm(self.vmin, self.vmax) if self.log else Normalize(self.vmin, self.vmax)


# The largest magnitude a colour scale takes: its range and round levels stay finite.
MAX_MAGNITUDE = 1e300
# Round multiples per decade on a log scale: finer when the values span few decades.
LOG_SUBS = ((1.0, 1.5, 2.0, 3.0, 5.0, 7.0), (1.0, 2.0, 5.0), (1.0,))
# Levels the basin around the minimum should hold: fewer below the median value and the
# default scale turns logarithmic (where the data are positive).
BASIN_LEVELS = 3


def _nice_levels(vmin: float, vmax: float, log: bool) -> np.ndarray:
    if log:
        lo, hi = int(np.floor(np.log10(vmin))), int(np.ceil(np.log10(vmax)))
        decades = np.log10(vmax / vmin)
        subs = LOG_SUBS[0] if decades <= 2 else LOG_SUBS[1] if decades <= 4 else LOG_SUBS[2]
        cand = np.array([float(f"{s * 10.0**d:.12g}") for d in range(lo, hi + 1) for s in subs])
        levels = cand[(cand >= vmin * (1 - 1e-9)) & (cand <= vmax * (1 + 1e-9))]
        return levels if len(levels) >= 4 else np.geomspace(vmin, vmax, 8)
    # A round step (1, 2, 2.5 or 5 times a power of ten) giving about DEFAULT_LEVELS
    # levels. The viewer's page computes the same (viewer.js, niceLevels; a test holds
    # the two equal), so static and interactive figures draw the same lines.
    raw = (vmax - vmin) / DEFAULT_LEVELS
    p = 10.0 ** np.floor(np.log10(raw))
    step = next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= raw * (1 - 1e-12))
    ks = np.arange(np.ceil(vmin / step - 1e-9), np.floor(vmax / step + 1e-9) + 1)
    levels = np.array([float(f"{k * step:.12g}") for k in ks])
    return levels if len(levels) >= 4 else np.linspace(vmin, vmax, 8)


def resolve_scale(
    arrays: Sequence[np.ndarray],
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    levels: int | Sequence[float] | None = None,
    log: bool | None = None,
) -> Scale:
    """One scale for all of `arrays` (NaN ignored).

    Args:
        arrays: value arrays, e.g. the same metric of several surfaces.
        vmin, vmax: the colour range; default the smallest and largest computed value.
        levels: None for round-numbered levels in [vmin, vmax] (1-2-5 per decade on a log
            scale), an int for that many evenly (log: geometrically) spaced levels from
            vmin to vmax inclusive, the exact increasing levels, or a preset name of
            `LEVEL_PRESETS` (``"li2018"``: Li et al.'s 0.1, 0.6, ..., 9.6).
        log: log colouring and levels; None decides from the data (log when it is positive
            and either half the points lie in the lowest 5 % of the range or the values span
            two decades or more, so that several levels fall inside the basin).

    Returns:
        The `Scale`: vmin, vmax, levels and log, for every panel that shares it.

    Raises:
        ValueError: nothing computed yet, or an impossible range or levels.
    """
    for name, value in (("vmin", vmin), ("vmax", vmax)):
        if value is not None and not np.isfinite(value):
            raise InputError(f"{name} must be a finite number, got {value}")
    finite = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise InputError("no computed values to plot yet; run landscape.compute on the file")
    top = float(np.abs(finite).max())
    if top > MAX_MAGNITUDE and (vmin is None or vmax is None):  # e.g. a loss of 1e308
        raise InputError(
            f"values up to {top:.3g} are too large to draw (colour scales go up to "
            f"{MAX_MAGNITUDE:.0e}); give vmin and vmax within that range",
            arg=("vmin", "vmax"),
        )
    if isinstance(levels, str):
        if levels not in LEVEL_PRESETS:
            raise InputError(
                f"levels must be a number, a list or one of {', '.join(LEVEL_PRESETS)}; "
                f"got {levels!r}",
                arg="levels",
            )
        levels, log = list(LEVEL_PRESETS[levels]), False if log is None else log
    if log is None:
        lo, hi = finite.min(), finite.max()
        # Log levels when the values are skewed or span two decades or more: linear levels
        # would leave the basin around the minimum (where networks differ) without a line.
        with np.errstate(over="ignore"):  # values near 1e300 (with vmin and vmax given)
            median = np.median(finite)
        basin = (_nice_levels(lo, hi, False) < median).sum() if hi > lo else 0
        log = bool(
            lo > 0
            and hi > lo
            and (median < lo + SKEW_FRACTION * (hi - lo) or hi >= 100 * lo or basin < BASIN_LEVELS)
        )
    if log:
        positive = finite[finite > 0]
        if positive.size == 0:
            raise InputError("a log scale needs positive values; drop --log")
        finite = positive
    vmin = float(finite.min()) if vmin is None else float(vmin)
    vmax = float(finite.max()) if vmax is None else float(vmax)
    if log and vmin <= 0:
        raise InputError(f"a log scale needs vmin > 0, got {vmin}; raise --vmin or drop --log")
    if vmin > vmax:
        raise InputError(f"vmin ({vmin}) is above vmax ({vmax}); swap them")
    if max(abs(vmin), abs(vmax)) > MAX_MAGNITUDE or not np.isfinite(vmax - vmin):
        # e.g. a loss of 1e308: its range and round levels overflow float64
        raise InputError(
            f"values from {vmin:.3g} to {vmax:.3g} are too large to draw (colour scales go up "
            f"to {MAX_MAGNITUDE:.0e}); give vmin and vmax within that range",
            arg=("vmin", "vmax"),
        )
    if vmin == vmax:  # a flat surface: widen so the colour map and levels exist
        pad = max(0.5, abs(vmin) / 1000)  # (vmin - 0.5 == vmin for a large vmin)
        vmin, vmax = (vmin / 2, vmax * 2) if log else (vmin - pad, vmax + pad)
    if levels is None:
        lev = _nice_levels(vmin, vmax, log)
    elif isinstance(levels, int | np.integer):
        if not 2 <= levels <= MAX_LEVELS:
            raise InputError(f"levels must be between 2 and {MAX_LEVELS}, got {levels}")
        lev = np.geomspace(vmin, vmax, levels) if log else np.linspace(vmin, vmax, levels)
    else:
        lev = np.asarray(levels, dtype=np.float64)
        if lev.ndim != 1 or not np.isfinite(lev).all():
            raise InputError(f"levels must be finite numbers, got {lev.tolist()}")
        if len(lev) < 1 or len(lev) > MAX_LEVELS or np.any(np.diff(lev) <= 0):
            raise InputError(
                f"levels must increase, at most {MAX_LEVELS} of them, got {lev[:10].tolist()}"
            )
        if log and lev[0] <= 0:
            raise InputError("log-scale levels must be positive; drop --log or the level")
    return Scale(vmin=vmin, vmax=vmax, levels=lev, log=log)


def cover_ranges(scale: Scale, arrays: Sequence[np.ndarray]) -> Scale:
    """`scale` with levels added so that each of `arrays` has at least one inside its range.

    Shared levels follow the widest range; a surface whose values all lie between two of
    them (a flat one beside a rough one: 2.19 to 2.56 between the levels 2 and 3) would
    get an empty panel. Two to four round values of its range are added to the shared
    levels, so every panel still shares one
    set of levels and one colour scale.

    Args:
        scale: the shared scale (e.g. from `resolve_scale` over `arrays`).
        arrays: the panels' values (NaN ignored).

    Returns:
        The scale with the added levels (the same scale when none was needed).
    """
    levels = np.asarray(scale.levels, dtype=np.float64)
    added: list[float] = []
    for a in arrays:
        v = np.asarray(a, dtype=np.float64)
        v = v[np.isfinite(v) & ((v > 0) if scale.log else True)]
        if v.size == 0:
            continue
        lo, hi = max(float(v.min()), scale.vmin), min(float(v.max()), scale.vmax)
        if lo >= hi or np.any((levels >= lo) & (levels <= hi)):
            continue
        # Two to four round values: enough to show the panel's shape, few enough to read.
        added.extend(_round_ticks(lo, hi, counts=(3, 4, 6), least=2))
    if not added:
        return scale
    merged = np.unique(np.concatenate([levels, added]))
    return Scale(vmin=scale.vmin, vmax=scale.vmax, levels=merged, log=scale.log)


def format_levels(values: Sequence[float] | np.ndarray) -> list[str]:
    """Labels for contour levels or colour-bar ticks, all in one number format.

    Plain decimals with as many digits as each value needs (``0.2``, ``1.5``, ``500``,
    ``1000``), at most three significant; scientific for all of them (``2e-4``,
    ``1.5e5``) when the values reach 100,000 or go below 0.001, never a mix of the two
    (Python's ``{:g}`` writes ``500`` but ``1e+03``).

    Args:
        values: the numbers to label.

    Returns:
        One string per value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = np.abs(v[np.isfinite(v) & (v != 0)])
    if finite.size and (finite.max() >= 1e5 or finite.min() < 1e-3):
        out = []
        for x in v:
            mantissa, exponent = f"{x:.2e}".split("e")
            mantissa = mantissa.rstrip("0").rstrip(".")
            out.append("0" if x == 0 else f"{mantissa}e{int(exponent)}")
        return out
    return [
        np.format_float_positional(float(f"{x:.3g}"), trim="-") if np.isfinite(x) else str(x)
        for x in v
    ]


def colorbar_ticks(scale: Scale) -> np.ndarray:
    """Round values to label a colour bar of `scale`: at least three inside its range.

    On a log scale: the decades when there are three to eight of them, else 1-2-5 per
    decade, else 1, 1.5, 2, 3, 5, 7 (`LOG_SUBS`), else evenly spaced round values (a
    range of less than a factor of two). Linear: a round step, five to nine values.

    Args:
        scale: the scale of the colour bar.

    Returns:
        The tick values, increasing, within [vmin, vmax].
    """
    lo, hi = scale.vmin, scale.vmax

    def inside(c: np.ndarray) -> np.ndarray:
        return c[(c >= lo * (1 - 1e-9)) & (c <= hi * (1 + 1e-9))]

    if scale.log:
        d0, d1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
        for subs in LOG_SUBS[::-1]:
            cand = np.array([float(f"{s * 10.0**d:.12g}") for d in range(d0, d1 + 1) for s in subs])
            ticks = inside(cand)
            if len(ticks) >= 3:
                while len(ticks) > 9:  # many decades: every other one
                    ticks = ticks[::2]
                return ticks
    return _round_ticks(lo, hi)


def _round_ticks(
    lo: float, hi: float, *, counts: Sequence[int] = (6, 8, 10, 14, 20), least: int = 3
) -> np.ndarray:
    """At least `least` values of a round step (1, 2, 2.5, 5 times a power of ten) in
    [lo, hi]: the coarsest step of about (hi - lo) / count for count in `counts`."""
    if hi <= lo:
        return np.array([lo])
    for count in counts:
        raw = (hi - lo) / count
        p = 10.0 ** np.floor(np.log10(raw))
        step = next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= raw * (1 - 1e-12))
        ks = np.arange(np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9) + 1)
        ticks = np.array([float(f"{k * step:.12g}") for k in ks])
        if len(ticks) >= least:
            return ticks
    return np.linspace(lo, hi, least)


def page_rule() -> dict[str, Any]:
    """The rule's constants as the viewer's page reads them (viewer.js: niceLevels and the
    automatic log scale), so the interactive contours are the static ones.

    Returns:
        JSON-ready ``{"count", "skew", "basin", "log_subs", "max", "presets"}``.
    """
    return {
        "count": DEFAULT_LEVELS,
        "skew": SKEW_FRACTION,
        "basin": BASIN_LEVELS,
        "log_subs": LOG_SUBS,
        "max": MAX_LEVELS,
        "presets": {k: list(v) for k, v in LEVEL_PRESETS.items()},
    }
