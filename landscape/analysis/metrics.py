"""Numbers that summarize a surface, so that "chaotic vs convex" can be compared.

All functions take the grid ``alpha`` (nx,), ``beta`` (ny,) or None, and values ``f``
of shape (nx, ny) or (nx,) with ``f[i, j] = f(alpha[i], beta[j])``. NaN marks points not
computed yet: a finite-difference stencil or a ray segment that touches one is skipped.
A metric that does not apply (nothing left to measure, or a 2-D notion on a 1-D
surface) is NaN.

* ``nonconvex_fraction``: interior points where the finite-difference Hessian of
  f(alpha, beta) has a negative eigenvalue (for 1-D: f'' < 0). Curvatures below
  ``1e-6`` of the largest on the grid, or below the rounding noise of float32 losses
  (``4 eps |f| / h^2``), count as zero.
* ``saddle_fraction``: interior points where that 2x2 Hessian is indefinite (one
  curvature below zero, one above: a saddle of f(alpha, beta)), 2-D only. It is a
  property of the 2-D slice, **not** Li et al. 2018's curvature (Sec. 6 and Fig. 7 map
  |lambda_min / lambda_max| of the full Hessian in weight space: ``landscape hessian
  --surface``). The share of non-convex points (``nonconvex_fraction``) splits into saddles
  and concave points (both curvatures negative).
* ``curvature_ratio_median`` (no longer reported; kept as a function): median
  ``|lambda_min / lambda_max|`` of the 2x2 Hessian. An isotropic bowl and a symmetric
  saddle both give 1, a valley 0: it measures anisotropy, not convexity, and is not Li et
  al.'s quantity either.
* ``local_minima``: interior points strictly below all their neighbours (8 in 2-D).
* ``basin_radius``: along `n_rays` rays from the centre, the radius where f first
  exceeds ``f(0) + basin_delta``; a ray leaving the grid first counts at its exit
  radius (so the mean is a lower bound) and ``basin_closed`` is the fraction of rays
  that did cross.
* ``sharpness``: mean over rays of ``f(r u) - f(0)`` at radius `radius`, by bilinear
  interpolation; in filter-normalized coordinates the rays are (near) random
  filter-normalized directions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from landscape.core.errors import InputError
from landscape.io.surface_file import Surface

__all__ = [
    "METRIC_DEFINITIONS",
    "METRIC_NAMES",
    "finite_difference_hessian",
    "nonconvex_fraction",
    "saddle_fraction",
    "curvature_ratio_median",
    "local_minima",
    "interpolate",
    "ray_values",
    "basin_radius",
    "sharpness",
    "surface_metrics",
    "grid_metrics",
    "batch_metrics",
    "hessian_curvature",
    "metrics_table",
]

METRIC_NAMES = (
    "center_loss",
    "min_loss",
    "min_alpha",
    "min_beta",
    "local_minima",
    "nonconvex_fraction",
    "saddle_fraction",
    "basin_radius",
    "basin_closed",
    "sharpness",
    "computed_fraction",
)
# What each metric is, and which way reads "more convex / flatter": printed by
# `landscape metrics --help`, the README and docs/api.md quote it (tests hold them equal).
METRIC_DEFINITIONS = {
    "center_loss": "the loss at theta* (alpha = beta = 0)",
    "min_loss": "the lowest loss on the grid",
    "min_alpha": "alpha of the lowest loss (0: theta* is the grid's minimum)",
    "min_beta": "beta of the lowest loss (2-D)",
    "local_minima": "interior grid points strictly lower than all their neighbours (1: one "
    "basin; more: a rugged surface)",
    "nonconvex_fraction": "share of interior points where the 2x2 finite-difference Hessian "
    "of f(alpha, beta) has a negative eigenvalue (lower: more convex)",
    "saddle_fraction": "share of interior points where that 2x2 Hessian is indefinite "
    "(lower: fewer saddles); a property of this 2-D slice, not Li et al.'s full-Hessian "
    "ratio (landscape hessian --surface gives that)",
    "basin_radius": "mean distance along rays from theta* (--rays; 2 in 1-D) to where the "
    "loss first exceeds center_loss + basin_delta (larger: a wider basin)",
    "basin_closed": "share of those rays that leave the basin inside the grid (1: the basin "
    "is closed; below 1: basin_radius is a lower bound)",
    "sharpness": "mean rise of the loss at distance radius from theta* (lower: flatter)",
    "computed_fraction": "share of grid points computed (1: complete)",
}
_RTOL = 1e-6  # |eigenvalues| below rtol * max|eigenvalue| count as 0 ...
# ... and so do those below the noise of float32 losses: a three-point second difference
# of values with relative error eps is off by up to 4 eps |f| / h^2.
_VALUE_EPS = float(np.finfo(np.float32).eps)


def _second_diff(f: np.ndarray, h: np.ndarray, axis: int) -> np.ndarray:
    """Three-point second derivative on a (possibly non-uniform) grid, interior points."""
    hm, hp = h[:-1], h[1:]  # spacing below and above each interior point
    shape = [1] * f.ndim
    shape[axis] = -1
    hm, hp = hm.reshape(shape), hp.reshape(shape)
    lo = np.take(f, range(0, f.shape[axis] - 2), axis=axis)
    mid = np.take(f, range(1, f.shape[axis] - 1), axis=axis)
    hi = np.take(f, range(2, f.shape[axis]), axis=axis)
    return 2.0 * ((hi - mid) / hp - (mid - lo) / hm) / (hp + hm)


def finite_difference_hessian(
    alpha: np.ndarray, beta: np.ndarray, f: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(f_aa, f_bb, f_ab)`` at the interior points, each (nx - 2, ny - 2); NaN where unknown."""
    alpha, beta, f = _check_2d(alpha, beta, f)
    fxx = _second_diff(f, np.diff(alpha), 0)[:, 1:-1]
    fyy = _second_diff(f, np.diff(beta), 1)[1:-1, :]
    da = (alpha[2:] - alpha[:-2])[:, None]
    db = (beta[2:] - beta[:-2])[None, :]
    fxy = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (da * db)
    return fxx, fyy, fxy


def _check_2d(alpha, beta, f):
    alpha, beta, f = np.asarray(alpha, float), np.asarray(beta, float), np.asarray(f, float)
    if f.shape != (len(alpha), len(beta)):
        raise InputError(f"values have shape {f.shape}, the grid is ({len(alpha)}, {len(beta)})")
    return alpha, beta, f


def _hessian_eigenvalues(alpha, beta, f) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest eigenvalue of the 2x2 finite-difference Hessian, interior points."""
    fxx, fyy, fxy = finite_difference_hessian(alpha, beta, f)
    mean = (fxx + fyy) / 2
    radius = np.sqrt(((fxx - fyy) / 2) ** 2 + fxy**2)
    return mean - radius, mean + radius


def _curvatures(
    alpha: np.ndarray, beta: np.ndarray | None, f: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Smallest and largest curvature at the known interior points, values within the
    rounding tolerance set to 0; None when there are none."""
    f = np.asarray(f, float)
    if min(f.shape) < 3:
        return None
    if beta is None:
        h = np.diff(np.asarray(alpha, float))
        lo = hi = _second_diff(f, h, 0)
        h2 = np.abs(h).min() ** 2
    else:
        lo, hi = _hessian_eigenvalues(alpha, beta, f)
        h2 = min(np.abs(np.diff(np.asarray(c, float))).min() for c in (alpha, beta)) ** 2
    valid = np.isfinite(lo) & np.isfinite(hi)
    if not valid.any():
        return None
    lo, hi = lo[valid], hi[valid]
    scale = max(np.abs(lo).max(), np.abs(hi).max())
    tol = max(_RTOL * scale, 4 * _VALUE_EPS * np.nanmax(np.abs(f)) / h2)
    return np.where(np.abs(lo) <= tol, 0.0, lo), np.where(np.abs(hi) <= tol, 0.0, hi)


def nonconvex_fraction(alpha: np.ndarray, beta: np.ndarray | None, f: np.ndarray) -> float:
    """Fraction of interior points whose finite-difference Hessian is not positive semi-definite.

    Curvatures within rounding of zero (see the module notes) count as zero, so a plane
    or a flat plateau is convex, not noise.
    """
    curv = _curvatures(alpha, beta, f)
    return math.nan if curv is None else float(np.mean(curv[0] < 0))


def saddle_fraction(alpha: np.ndarray, beta: np.ndarray | None, f: np.ndarray) -> float:
    """Fraction of interior points where the 2x2 finite-difference Hessian of f(alpha, beta)
    is indefinite (lambda_min < 0 < lambda_max, each beyond rounding): saddles of the 2-D
    slice (2-D only; NaN on a 1-D surface). Not Li et al.'s full-Hessian curvature."""
    curv = None if beta is None else _curvatures(alpha, beta, f)
    if curv is None:
        return math.nan
    return float(np.mean((curv[0] < 0) & (curv[1] > 0)))


def curvature_ratio_median(alpha: np.ndarray, beta: np.ndarray | None, f: np.ndarray) -> float:
    """Median ``|lambda_min / lambda_max|`` of the 2x2 finite-difference Hessian (2-D only).

    Not reported by `surface_metrics` any more: an isotropic bowl and a symmetric saddle
    both give 1, so it measures anisotropy, not convexity; and it is not Li et al.'s
    full-Hessian ratio (``landscape hessian --surface`` computes that). Points where
    lambda_max is (within rounding) zero are left out.
    """
    curv = None if beta is None else _curvatures(alpha, beta, f)
    if curv is None:
        return math.nan
    lo, hi = curv
    keep = hi != 0
    return float(np.median(np.abs(lo[keep] / hi[keep]))) if keep.any() else math.nan


def local_minima(f: np.ndarray) -> np.ndarray:
    """Mask of interior points strictly below every neighbour (2 in 1-D, 8 in 2-D).

    Border points and points with an unknown neighbour are never minima: the grid's
    edge is a window, not the function's.
    """
    f = np.asarray(f, float)
    mask = np.zeros(f.shape, dtype=bool)
    if any(n < 3 for n in f.shape):
        return mask
    core = tuple(slice(1, -1) for _ in f.shape)
    center = f[core]
    is_min = np.isfinite(center)
    for offset in np.ndindex(*(3,) * f.ndim):
        if all(o == 1 for o in offset):
            continue
        neighbour = f[tuple(slice(o, n - 2 + o) for o, n in zip(offset, f.shape, strict=True))]
        is_min &= np.isfinite(neighbour) & (center < neighbour)
    mask[core] = is_min
    return mask


def _ascending(coords: np.ndarray, f: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    if len(coords) > 1 and coords[0] > coords[-1]:
        return coords[::-1], np.flip(f, axis=axis)
    return coords, f


def interpolate(
    alpha: np.ndarray, beta: np.ndarray | None, f: np.ndarray, pa: np.ndarray, pb: np.ndarray | None
) -> np.ndarray:
    """(Bi)linear interpolation of the grid at points ``(pa, pb)``; NaN outside or next to a
    point that is not finite (not computed, or diverged)."""
    f = np.asarray(f, float)
    f = np.where(np.isfinite(f), f, np.nan)
    alpha, f = _ascending(np.asarray(alpha, float), f, 0)
    pa = np.asarray(pa, float)
    if len(alpha) < 2 or (beta is not None and len(beta) < 2):
        return np.full(np.broadcast(pa, pa if pb is None else pb).shape, np.nan)
    ia = np.clip(np.searchsorted(alpha, pa) - 1, 0, len(alpha) - 2)
    ta = (pa - alpha[ia]) / (alpha[ia + 1] - alpha[ia])
    outside = (pa < alpha[0]) | (pa > alpha[-1])
    if beta is None:
        out = f[ia] * (1 - ta) + f[ia + 1] * ta
    else:
        beta, f = _ascending(np.asarray(beta, float), f, 1)
        pb = np.asarray(pb, float)
        ib = np.clip(np.searchsorted(beta, pb) - 1, 0, len(beta) - 2)
        tb = (pb - beta[ib]) / (beta[ib + 1] - beta[ib])
        outside |= (pb < beta[0]) | (pb > beta[-1])
        out = (
            f[ia, ib] * (1 - ta) * (1 - tb)
            + f[ia + 1, ib] * ta * (1 - tb)
            + f[ia, ib + 1] * (1 - ta) * tb
            + f[ia + 1, ib + 1] * ta * tb
        )
    return np.where(outside, np.nan, out)


def _ray_units(beta: np.ndarray | None, n_rays: int) -> np.ndarray:
    if beta is None:
        return np.array([[1.0, 0.0], [-1.0, 0.0]])
    angles = 2 * np.pi * np.arange(n_rays) / n_rays
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (R, 2)


def ray_values(
    alpha: np.ndarray,
    beta: np.ndarray | None,
    f: np.ndarray,
    radii: np.ndarray,
    *,
    n_rays: int = 32,
) -> np.ndarray:
    """f along rays from the origin: (R, len(radii)); 2 rays (+/-) for a 1-D surface."""
    units = _ray_units(beta, n_rays)  # (R, 2)
    radii = np.asarray(radii, float)
    pa = units[:, :1] * radii[None, :]
    pb = None if beta is None else units[:, 1:] * radii[None, :]
    return interpolate(alpha, beta, f, pa, pb)


def _step(alpha: np.ndarray, beta: np.ndarray | None) -> float:
    spacing = [np.abs(np.diff(np.asarray(c, float))).min() for c in (alpha, beta) if c is not None]
    return min(spacing) / 2


def basin_radius(
    alpha: np.ndarray,
    beta: np.ndarray | None,
    f: np.ndarray,
    *,
    threshold: float,
    n_rays: int = 32,
) -> tuple[float, float]:
    """Mean radius at which f first exceeds `threshold` along rays, and the fraction that do.

    A ray that leaves the grid (or reaches an unknown point) before crossing counts at
    the radius it reached. Returns NaN for both when f at the centre is unknown.
    """
    if len(alpha) < 2 or (beta is not None and len(beta) < 2):
        return math.nan, math.nan
    extent = max(np.abs(np.asarray(c, float)).max() for c in (alpha, beta) if c is not None)
    radii = np.arange(0.0, extent * math.sqrt(2) + _step(alpha, beta), _step(alpha, beta))
    vals = ray_values(alpha, beta, f, radii, n_rays=n_rays)  # (R, S)
    if not np.isfinite(vals[:, 0]).all():
        return math.nan, math.nan
    found, crossed = [], 0
    for row in vals:
        known = np.isfinite(row)
        stop = int(np.argmin(known)) if not known.all() else len(row)  # first unknown sample
        above = np.nonzero(row[:stop] > threshold)[0]
        if above.size:
            k = int(above[0])
            if k == 0:
                found.append(0.0)
            else:  # linear interpolation between the last sample below and the first above
                t = (threshold - row[k - 1]) / (row[k] - row[k - 1])
                found.append(float(radii[k - 1] + t * (radii[k] - radii[k - 1])))
            crossed += 1
        else:
            found.append(float(radii[stop - 1]))
    return float(np.mean(found)), crossed / len(vals)


def sharpness(
    alpha: np.ndarray, beta: np.ndarray | None, f: np.ndarray, *, radius: float, n_rays: int = 32
) -> float:
    """Mean over rays of ``f(radius * u) - f(0)``; rays with unknown values are skipped."""
    vals = ray_values(alpha, beta, f, np.array([0.0, radius]), n_rays=n_rays)
    rise = vals[:, 1] - vals[:, 0]
    rise = rise[np.isfinite(rise)]
    return float(rise.mean()) if rise.size else math.nan


# The largest magnitude of a value the metrics take: their differences, squares and
# interpolations of larger ones overflow float64.
MAX_MEASURABLE = 1e150


def surface_metrics(
    surface: Surface,
    *,
    split: str = "train",
    metric: str = "loss",
    radius: float = 0.2,
    basin_delta: float = 1.0,
    n_rays: int = 32,
) -> dict[str, float]:
    """Every metric of `METRIC_NAMES` for one surface's values (``{split}_{metric}``).

    Args:
        surface: from `landscape.io.surface_file.read_surface`.
        split: the data split.
        metric: the value array, usually "loss".
        radius: where `sharpness` is measured, in alpha/beta units.
        basin_delta: the basin ends where f exceeds ``f(0) + basin_delta``.
        n_rays: rays for basin radius and sharpness (a 1-D surface has 2).

    Returns:
        ``{metric name: value}`` (NaN where a metric is undefined for this surface).

    Raises:
        StoreError: the surface has no such values.
    """
    f = np.asarray(surface.get(split, metric), dtype=np.float64)
    finite = np.abs(f[np.isfinite(f)])
    if finite.size and finite.max() > MAX_MEASURABLE:  # e.g. 1e308: the metrics overflow
        where = f" of {str(surface.path)!r}" if surface.path is not None else ""
        raise InputError(
            f"the {split}_{metric} values{where} reach {finite.max():.3g}, too large to measure "
            f"(at most {MAX_MEASURABLE:.0e}): a damaged file? recompute it or use another copy"
        )
    return grid_metrics(
        surface.alpha, surface.beta, f, radius=radius, basin_delta=basin_delta, n_rays=n_rays
    )


def grid_metrics(
    alpha: np.ndarray,
    beta: np.ndarray | None,
    f: np.ndarray,
    *,
    radius: float = 0.2,
    basin_delta: float = 1.0,
    n_rays: int = 32,
) -> dict[str, float]:
    """`surface_metrics` on bare arrays."""
    alpha = np.asarray(alpha, float)
    beta = None if beta is None else np.asarray(beta, float)
    f = np.asarray(f, float)
    expected = (len(alpha),) if beta is None else (len(alpha), len(beta))
    if f.shape != expected:
        raise InputError(f"values have shape {f.shape}, the grid is {expected}")
    reach = max(np.abs(c).max() for c in (alpha, beta) if c is not None)
    if not 0 < radius <= reach:
        raise InputError(
            f"radius must be above 0 and inside the grid (at most {reach:g}); got {radius:g}"
        )
    if not (n_rays >= 1 and math.isfinite(basin_delta) and basin_delta > 0):
        raise InputError(
            f"n_rays must be at least 1 and basin_delta a positive number; got {n_rays}, "
            f"{basin_delta:g}"
        )
    out = dict.fromkeys(METRIC_NAMES, math.nan)
    out["computed_fraction"] = float((~np.isnan(f)).mean())
    # Diverged points (inf) enter no metric: like missing ones, they have no finite value.
    f = np.where(np.isfinite(f), f, np.nan)
    known = np.isfinite(f)
    if not known.any():
        return out
    center = float(
        interpolate(alpha, beta, f, np.array(0.0), None if beta is None else np.array(0.0))
    )
    idx = np.unravel_index(np.nanargmin(f), f.shape)
    out.update(
        center_loss=center,
        min_loss=float(f[idx]),
        min_alpha=float(alpha[idx[0]]),
        min_beta=float(beta[idx[1]]) if beta is not None else math.nan,
        local_minima=float(local_minima(f).sum()),
        nonconvex_fraction=nonconvex_fraction(alpha, beta, f),
        saddle_fraction=saddle_fraction(alpha, beta, f),
        sharpness=sharpness(alpha, beta, f, radius=radius, n_rays=n_rays),
    )
    if math.isfinite(center):
        out["basin_radius"], out["basin_closed"] = basin_radius(
            alpha, beta, f, threshold=center + basin_delta, n_rays=n_rays
        )
    return out


def hessian_curvature(surface: Surface, split: str = "train") -> dict[str, float] | None:
    """Li et al. 2018's curvature (Sec. 6, Fig. 8) where ``landscape hessian --surface``
    stored it in the file (``/{split}_curvature_ratio``): |lambda_min / lambda_max| of the
    *full* Hessian in weight space at each grid point it reached. Returns its median and
    maximum over those points and their number, or None when the file holds no map. One
    Lanczos run per point on one set of images: no interval."""
    ratio = surface.values.get(f"{split}_curvature_ratio")
    if ratio is None:
        return None
    ratio = np.asarray(ratio, dtype=np.float64)
    finite = ratio[np.isfinite(ratio)]
    if not finite.size:
        return {"points": 0.0, "median": math.nan, "max": math.nan}
    return {
        "points": float(finite.size),
        "median": float(np.median(finite)),
        "max": float(finite.max()),
    }


# The metrics `batch_metrics` computes for many surfaces at once (the bootstrap's).
BATCH_METRICS = (
    "center_loss",
    "local_minima",
    "nonconvex_fraction",
    "saddle_fraction",
    "basin_radius",
    "basin_closed",
    "sharpness",
)


def _batch_interpolate(
    alpha: np.ndarray, beta: np.ndarray, fs: np.ndarray, pa: np.ndarray, pb: np.ndarray
) -> np.ndarray:
    """`interpolate` of B surfaces ``fs`` (B, nx, ny) at the same points: (B, *pa.shape)."""
    fs = np.where(np.isfinite(fs), fs, np.nan)
    if len(alpha) > 1 and alpha[0] > alpha[-1]:
        alpha, fs = alpha[::-1], fs[:, ::-1]
    if len(beta) > 1 and beta[0] > beta[-1]:
        beta, fs = beta[::-1], fs[:, :, ::-1]
    pa, pb = np.broadcast_arrays(np.asarray(pa, float), np.asarray(pb, float))
    if len(alpha) < 2 or len(beta) < 2:
        return np.full((len(fs), *pa.shape), np.nan)
    ia = np.clip(np.searchsorted(alpha, pa) - 1, 0, len(alpha) - 2)
    ta = (pa - alpha[ia]) / (alpha[ia + 1] - alpha[ia])
    ib = np.clip(np.searchsorted(beta, pb) - 1, 0, len(beta) - 2)
    tb = (pb - beta[ib]) / (beta[ib + 1] - beta[ib])
    outside = (pa < alpha[0]) | (pa > alpha[-1]) | (pb < beta[0]) | (pb > beta[-1])
    out = (
        fs[:, ia, ib] * (1 - ta) * (1 - tb)
        + fs[:, ia + 1, ib] * ta * (1 - tb)
        + fs[:, ia, ib + 1] * (1 - ta) * tb
        + fs[:, ia + 1, ib + 1] * ta * tb
    )
    return np.where(outside, np.nan, out)


def batch_metrics(
    alpha: np.ndarray,
    beta: np.ndarray | None,
    fs: np.ndarray,
    *,
    radius: float = 0.2,
    basin_delta: float = 1.0,
    n_rays: int = 32,
) -> dict[str, np.ndarray]:
    """`grid_metrics`' `BATCH_METRICS` of B surfaces on one grid at once: ``fs`` is
    (B, nx, ny) (or (B, nx) for 1-D, computed one by one), each result (B,). The same
    formulas in the same order as the one-surface functions (a test holds them equal):
    what makes a bootstrap of a 51x51 surface with hundreds of resamples affordable."""
    fs = np.asarray(fs, dtype=np.float64)
    if beta is None:
        rows = [
            grid_metrics(alpha, None, f, radius=radius, basin_delta=basin_delta, n_rays=n_rays)
            for f in fs
        ]
        return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in BATCH_METRICS}
    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    grid_metrics(alpha, beta, fs[0], radius=radius, basin_delta=basin_delta, n_rays=n_rays)
    nb = len(fs)
    out = {k: np.full(nb, np.nan) for k in BATCH_METRICS}
    fs = np.where(np.isfinite(fs), fs, np.nan)
    known_any = np.isfinite(fs).reshape(nb, -1).any(-1)
    zero = np.zeros(())
    out["center_loss"] = np.where(
        known_any, _batch_interpolate(alpha, beta, fs, zero, zero), np.nan
    )
    out["local_minima"] = np.where(known_any, 0.0, np.nan)
    if min(fs.shape[1:]) >= 3:
        # local minima: strictly below all 8 neighbours, all known
        nx, ny = fs.shape[1:]
        center = fs[:, 1:-1, 1:-1]
        is_min = np.isfinite(center)
        for da, db in np.ndindex(3, 3):
            if da == db == 1:
                continue
            neighbour = fs[:, da : nx - 2 + da, db : ny - 2 + db]
            is_min &= np.isfinite(neighbour) & (center < neighbour)
        out["local_minima"] = np.where(known_any, is_min.reshape(nb, -1).sum(-1), np.nan)
        # curvatures: the 2x2 finite-difference Hessian, as _curvatures
        h = np.diff(alpha)
        hm, hp = h[:-1].reshape(1, -1, 1), h[1:].reshape(1, -1, 1)
        fxx = (
            2.0 * ((fs[:, 2:] - fs[:, 1:-1]) / hp - (fs[:, 1:-1] - fs[:, :-2]) / hm) / (hp + hm)
        )[:, :, 1:-1]
        h = np.diff(beta)
        hm, hp = h[:-1].reshape(1, 1, -1), h[1:].reshape(1, 1, -1)
        fyy = (
            2.0
            * ((fs[:, :, 2:] - fs[:, :, 1:-1]) / hp - (fs[:, :, 1:-1] - fs[:, :, :-2]) / hm)
            / (hp + hm)
        )[:, 1:-1, :]
        da_ = (alpha[2:] - alpha[:-2])[None, :, None]
        db_ = (beta[2:] - beta[:-2])[None, None, :]
        fxy = (fs[:, 2:, 2:] - fs[:, 2:, :-2] - fs[:, :-2, 2:] + fs[:, :-2, :-2]) / (da_ * db_)
        mean = (fxx + fyy) / 2
        rad = np.sqrt(((fxx - fyy) / 2) ** 2 + fxy**2)
        lo, hi = (mean - rad).reshape(nb, -1), (mean + rad).reshape(nb, -1)
        valid = np.isfinite(lo) & np.isfinite(hi)
        h2 = min(np.abs(np.diff(c)).min() for c in (alpha, beta)) ** 2
        with np.errstate(invalid="ignore"):
            scale = np.where(valid, np.maximum(np.abs(lo), np.abs(hi)), -np.inf).max(-1)
            fmax = np.where(np.isfinite(fs), np.abs(fs), -np.inf).reshape(nb, -1).max(-1)
        tol = np.maximum(_RTOL * scale, 4 * _VALUE_EPS * fmax / h2)[:, None]
        lo = np.where(np.abs(lo) <= tol, 0.0, lo)
        hi = np.where(np.abs(hi) <= tol, 0.0, hi)
        count = valid.sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["nonconvex_fraction"] = np.where(
                count > 0, (valid & (lo < 0)).sum(-1) / count, np.nan
            )
            out["saddle_fraction"] = np.where(
                count > 0, (valid & (lo < 0) & (hi > 0)).sum(-1) / count, np.nan
            )
    # sharpness and basin radius along rays, as `sharpness` and `basin_radius`
    units = _ray_units(beta, n_rays)
    for name, radii in (("sharpness", np.array([0.0, radius])), ("basin", None)):
        if radii is None:
            extent = max(np.abs(c).max() for c in (alpha, beta))
            step = _step(alpha, beta)
            radii = np.arange(0.0, extent * math.sqrt(2) + step, step)
        vals = _batch_interpolate(
            alpha, beta, fs, units[:, :1] * radii[None, :], units[:, 1:] * radii[None, :]
        )  # (B, R, S)
        if name == "sharpness":
            rise = vals[:, :, 1] - vals[:, :, 0]
            ok = np.isfinite(rise)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["sharpness"] = np.where(
                    ok.any(-1), np.where(ok, rise, 0.0).sum(-1) / ok.sum(-1), np.nan
                )
            continue
        center = out["center_loss"]
        threshold = (center + basin_delta)[:, None, None]
        known = np.isfinite(vals)
        n_steps = vals.shape[-1]
        stop = np.where(known.all(-1), n_steps, np.argmin(known, -1))  # (B, R)
        with np.errstate(invalid="ignore"):
            above = (vals > threshold) & (np.arange(n_steps) < stop[..., None])
        crossed = above.any(-1)
        k = np.argmax(above, -1)
        km = np.maximum(k - 1, 0)
        vk = np.take_along_axis(vals, k[..., None], -1)[..., 0]
        vkm = np.take_along_axis(vals, km[..., None], -1)[..., 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (threshold[..., 0] - vkm) / (vk - vkm)
            inside = radii[km] + t * (radii[k] - radii[km])
        found = np.where(crossed, np.where(k == 0, 0.0, inside), radii[np.maximum(stop, 1) - 1])
        ok = np.isfinite(vals[:, :, 0]).all(-1) & np.isfinite(center)
        out["basin_radius"] = np.where(ok, found.mean(-1), np.nan)
        out["basin_closed"] = np.where(ok, crossed.sum(-1) / crossed.shape[-1], np.nan)
    return out


def _fmt(name: str, value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    if name == "local_minima":
        return str(int(value))
    return f"{value:.4g}"


def metrics_table(rows: Sequence[tuple[str, dict[str, float]]]) -> str:
    """A fixed-width text table: the row label, then one column per metric.

    Args:
        rows: ``(label, {metric name: value})`` pairs, e.g. from `surface_metrics`.

    Returns:
        The table as text, one line per row under a header.
    """
    header = ["surface", *METRIC_NAMES]
    body = [[label, *(_fmt(n, m[n]) for n in METRIC_NAMES)] for label, m in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = []
    for r in [header, *body]:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)
