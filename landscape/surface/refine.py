"""Adaptive refinement: evaluate only the grid points a figure needs (``--tolerance``).

The coarse-to-fine levels of `landscape.surface.grid` are walked in order. Every point of
the first levels is evaluated (`ALWAYS_EVALUATED`: θ*, the corners and a 9x9 sub-grid at
most); a point that a finer level adds is *predicted* from the complete coarser sub-grid
before it is evaluated, by two interpolants of different order along each axis:

    cubic   Lagrange through the 4 nearest coarse nodes (3 near an edge with few nodes)
    linear  through the 2 nodes that bracket the point

tensor products of them on a 2-D grid. Their disagreement ``|cubic - linear|`` is the
local error estimate: where it is at most the tolerance (times `SAFETY`) on the loss of
every split, the point is skipped and stored as the cubic prediction, marked
interpolated; anywhere else it is evaluated. Points are evaluated regardless in the
coarse cells around a local minimum or a saddle of the coarser sub-grid (where a contour
figure changes topology), around a diverged point, and a seeded sample of the skippable
ones (`CHECK_SHARE`): where a checked point's measured error exceeds the tolerance, the
whole level is re-planned with that estimate scaled by the measured misprediction, so
the estimator is calibrated on the surface at hand (`Refinement.plan` then
`Refinement.checked`).

The interpolants are linear in the values, so the same weights give a skipped point's
accuracy, standard errors and per-sample losses (`Refinement.interpolate` on arrays with
trailing axes): a bootstrap over samples sees one consistent surface.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from landscape.surface.grid import axis_levels

__all__ = ["ALWAYS_EVALUATED", "CHECK_SHARE", "SAFETY", "Refinement", "Walk"]

# Index spacing (in grid steps) down to which every level is evaluated: a coarse grid of
# about 9 points per axis, enough nodes for the cubic stencils to see the basin.
ALWAYS_EVALUATED = 9
SAFETY = 0.35  # a point is skipped when its estimated error is at most SAFETY * tolerance
CHECK_SHARE = 0.05  # evaluated anyway among the skippable points, to measure the error


# The interpolants: the prediction (cubic) and the two it is compared with.
CUBIC, QUADRATIC_LEFT, QUADRATIC_RIGHT = 0, 1, 2


def _lagrange(i: int, stencil: np.ndarray) -> np.ndarray:
    return np.array(
        [np.prod((i - np.delete(stencil, a)) / (xa - np.delete(stencil, a))) for a, xa in
         enumerate(stencil)]
    )  # fmt: skip


def _axis_stencils(levels: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per index of one axis, the stencils of each interpolant on the nodes of level < k:
    ``[(nodes (n, 4), weights (n, 4))]`` by CUBIC, QUADRATIC_LEFT, QUADRATIC_RIGHT (unused
    slots weigh 0; the "quadratics" are the line through the bracketing nodes in the end
    cells); a node of the coarse sub-grid gets weight 1 on itself."""
    n = len(levels)
    nodes = np.flatnonzero(levels < k)
    out = [(np.zeros((n, 4), np.int64), np.zeros((n, 4))) for _ in range(3)]
    for i in range(n):
        pos = int(np.searchsorted(nodes, i))
        if pos < len(nodes) and nodes[pos] == i:
            for idx, w in out:
                idx[i], w[i, 0] = i, 1.0
            continue
        # In a cell at an end of the axis the stencils are one-sided and the quadratics
        # share too many nodes with the cubic to tell its error: compare with the line.
        edge = pos == 1 or pos == len(nodes) - 1
        shapes = ((4, 2), (2, 1), (2, 1)) if edge else ((4, 2), (3, 2), (3, 1))
        for kind, (m, left) in enumerate(shapes):
            m = min(m, len(nodes))
            start = min(max(pos - left, 0), len(nodes) - m)
            stencil = nodes[start : start + m]
            idx, w = out[kind]
            idx[i, :m], w[i, :m] = stencil, _lagrange(i, stencil)
            idx[i, m:] = stencil[0]
    return out


@dataclass
class Refinement:
    """The levels of a grid and, per level, which new points to evaluate.

    Args:
        shape: the grid's shape, (nx,) or (nx, ny).
        origin: θ*'s indices (`landscape.surface.grid.grid_origin`).
        tolerance: the largest error accepted at a skipped point, in units of the loss.
        seed: of the checked sample.
    """

    shape: tuple[int, ...]
    origin: tuple[int, ...]
    tolerance: float
    seed: int = 0
    axes: list[np.ndarray] = field(init=False)
    point_level: np.ndarray = field(init=False)  # flat: the level at which a point joins

    def __post_init__(self) -> None:
        self.shape = tuple(int(n) for n in self.shape)
        self.axes = axis_levels(self.shape, self.origin)
        grids = np.meshgrid(*self.axes, indexing="ij")
        self.point_level = np.maximum.reduce(grids).ravel() if grids else np.zeros(0, int)
        self.top = int(self.point_level.max()) if self.point_level.size else 0
        spread = max(
            [1, *(max(o, n - 1 - o) for o, n in zip(self.origin, self.shape, strict=True))]
        )
        # The first level whose spacing is finer than ALWAYS_EVALUATED points per axis.
        self.first_adaptive = next(
            (k for k in range(1, self.top + 1) if spread / 2**k < 2 * spread / ALWAYS_EVALUATED),
            self.top + 1,
        )
        self._stencils: dict[int, list[tuple[np.ndarray, ...]]] = {}

    def level_points(self, k: int) -> np.ndarray:
        """Flat indices of the points level `k` adds."""
        return np.flatnonzero(self.point_level == k)

    def stencils(self, k: int) -> list[tuple[np.ndarray, ...]]:
        if k not in self._stencils:
            self._stencils[k] = [_axis_stencils(lv, k) for lv in self.axes]
        return self._stencils[k]

    def _apply(self, k: int, grid: np.ndarray, flat: np.ndarray, kind: int) -> np.ndarray:
        """The interpolant `kind` (CUBIC, QUADRATIC_LEFT, QUADRATIC_RIGHT) of `grid` (the
        grid's shape + trailing axes) at `flat`, from the nodes of level < k."""
        index = np.unravel_index(flat, self.shape)
        st = self.stencils(k)
        nodes = [st[d][kind][0][index[d]] for d in range(len(self.shape))]
        weights = [st[d][kind][1][index[d]] for d in range(len(self.shape))]
        if len(self.shape) == 1:
            return np.einsum("pm,pm...->p...", weights[0], grid[nodes[0]])
        values = grid[nodes[0][:, :, None], nodes[1][:, None, :]]  # (P, 4, 4, ...)
        return np.einsum("pa,pb,pab...->p...", weights[0], weights[1], values)

    def interpolate(self, k: int, grid: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """The cubic prediction at `flat` (points of level `k`) from `grid`, whose points of
        level < k are all known; `grid` may have trailing axes (per-sample losses)."""
        out = np.empty((len(flat), *grid.shape[len(self.shape) :]), dtype=np.float64)
        for start in range(0, len(flat), 256):  # bounded memory for per-sample rows
            part = flat[start : start + 256]
            out[start : start + 256] = self._apply(k, np.asarray(grid), part, CUBIC)
        return out

    def estimate(self, k: int, losses: Mapping[str, np.ndarray], flat: np.ndarray) -> np.ndarray:
        """The error estimate at `flat` (points of level `k`), the largest over `losses`:
        |cubic - linear| at every point level `k` adds, then its largest value within one
        coarse cell of each point. The difference of two interpolants vanishes by
        coincidence where they cross (near an inflection); a neighbour's does not."""
        new = self.level_points(k)
        err = np.zeros(len(new))
        for grid in losses.values():
            cubic = self._apply(k, grid, new, CUBIC)
            with np.errstate(invalid="ignore"):
                diff = np.maximum(
                    np.abs(cubic - self._apply(k, grid, new, QUADRATIC_LEFT)),
                    np.abs(cubic - self._apply(k, grid, new, QUADRATIC_RIGHT)),
                )
            err = np.maximum(err, np.where(np.isfinite(diff), diff, np.inf))
        field = np.zeros(self.shape)
        field.reshape(-1)[new] = err
        for d, lv in enumerate(self.axes):
            gap = int(np.max(np.diff(np.flatnonzero(lv < k)), initial=1))
            field = _running_max(field, gap, axis=d)
        return field.reshape(-1)[flat]

    def critical(self, k: int, losses: Mapping[str, np.ndarray], flat: np.ndarray) -> np.ndarray:
        """Which of `flat` lie in a coarse cell touching a local minimum, a saddle or a
        diverged point of the sub-grid of level < k (of any of `losses`)."""
        nodes = [np.flatnonzero(lv < k) for lv in self.axes]
        marked = np.zeros(tuple(len(n) for n in nodes), dtype=bool)
        for grid in losses.values():
            sub = np.asarray(grid)[np.ix_(*nodes)]
            marked |= _critical_nodes(sub)
        index = np.unravel_index(flat, self.shape)
        # A point is near a marked node when, on every axis, the node is one of the two
        # coarse nodes bracketing it (or the point's own index).
        cells = []
        for d, n in enumerate(nodes):
            pos = np.searchsorted(n, index[d])
            lo = np.clip(
                np.where(n[np.minimum(pos, len(n) - 1)] == index[d], pos, pos - 1), 0, None
            )
            hi = np.minimum(pos, len(n) - 1)
            cells.append((lo, hi))
        hit = np.zeros(len(flat), dtype=bool)
        for corner in itertools.product(*cells):  # the cell's 2 (1-D) or 4 (2-D) nodes
            hit |= marked[corner]
        return hit

    def plan(
        self,
        k: int,
        losses: Mapping[str, np.ndarray],
        evaluated: np.ndarray,
        scale: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The points of level `k` not `evaluated` (flat mask) yet, split in three: those
        to evaluate, those to check (evaluated too: their measured error calibrates the
        estimate, `misprediction`), and those to skip. `losses`: each split's loss grid,
        known at every point of level < k; `scale`: the factor earlier checks multiplied
        the estimate by."""
        new = self.level_points(k)
        new = new[~evaluated[new]]
        if k < self.first_adaptive:
            return new, new[:0], new[:0]
        with np.errstate(invalid="ignore"):  # 0 * inf: a check failed where the estimate was 0
            err = self.estimate(k, losses, new) * scale
        need = ~(err <= SAFETY * self.tolerance) | self.critical(k, losses, new)
        candidates = new[~need]
        rng = np.random.default_rng([self.seed, k, len(candidates)])
        n_check = min(len(candidates), int(np.ceil(CHECK_SHARE * len(candidates))))
        check = np.sort(rng.choice(candidates, size=n_check, replace=False))
        return new[need], check, np.setdiff1d(candidates, check)

    def misprediction(
        self, k: int, losses: Mapping[str, np.ndarray], known: np.ndarray, scale: float
    ) -> float:
        """The factor by which the estimate must grow so that every evaluated point of
        level `k` it would have skipped (`known`: flat indices, their values in `losses`)
        is predicted within the tolerance; 1 when they all are."""
        if not len(known):
            return 1.0
        with np.errstate(invalid="ignore"):
            est = self.estimate(k, losses, known) * scale
        trusted = est <= SAFETY * self.tolerance  # NaN (0 * inf): not trusted
        worst = 1.0
        for grid in losses.values():
            truth = np.asarray(grid).ravel()[known]
            error = np.abs(self._apply(k, grid, known, CUBIC) - truth)
            bad = trusted & ~(error <= self.tolerance)
            if bad.any():
                with np.errstate(divide="ignore"):  # an estimate of 0 that missed: inf
                    ratio = error[bad] / est[bad] / SAFETY * (1 + 1e-9)
                worst = max(worst, float(np.max(ratio)))
        return worst


class Walk:
    """One adaptive run through the levels: which points to evaluate next, which to skip.

    Args:
        refinement: the grid's levels and the rule.
        losses: each split's loss grid (flat order of the grid; NaN where unknown), the
            values of the points already evaluated (a resumed run).
        evaluated: flat mask of those points.

    `step()` is called whenever every point it handed out before is `record`-ed: it
    returns the next points to evaluate, and the points it decided to skip with their
    predicted losses (already entered into `losses`), or None at the end.
    """

    def __init__(
        self, refinement: Refinement, losses: Mapping[str, np.ndarray], evaluated: np.ndarray
    ) -> None:
        self.r = refinement
        self.losses = {name: np.array(v, dtype=np.float64) for name, v in losses.items()}
        self.evaluated = np.array(evaluated, dtype=bool).reshape(-1)
        self.level = 0
        self.scale = 1.0
        self.rounds = 0  # plans of the current level so far
        self.skipped = np.zeros_like(self.evaluated)

    def record(self, flat: np.ndarray, losses: Mapping[str, np.ndarray]) -> None:
        """Evaluated values of the points `flat`."""
        for name, v in losses.items():
            if name in self.losses:
                self.losses[name].reshape(-1)[flat] = v
        self.evaluated[flat] = True
        self.skipped[flat] = False

    def step(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(to_evaluate, skipped)`` flat indices, or None when every level is done."""
        r = self.r
        while self.level <= r.top:
            k = self.level
            if self.rounds:  # the previous plan's points are in: do they confirm it?
                known = r.level_points(k)
                known = known[self.evaluated[known]]
                factor = r.misprediction(k, self.grids(), known, self.scale)
                if factor > 1.0:
                    self.scale *= factor
                else:  # confirmed: what is left of the level is skipped
                    skip = r.level_points(k)
                    skip = skip[~self.evaluated[skip]]
                    for name, grid in self.grids().items():
                        self.losses[name].reshape(-1)[skip] = r.interpolate(k, grid, skip)
                    self.skipped[skip] = True
                    self.level, self.rounds = k + 1, 0
                    if len(skip):
                        return skip[:0], skip
                    continue
            todo, check, _ = r.plan(k, self.grids(), self.evaluated, self.scale)
            self.rounds += 1
            evaluate = np.union1d(todo, check)
            if k < r.first_adaptive:
                self.level, self.rounds = k + 1, 0
            if len(evaluate):
                return evaluate, evaluate[:0]
        return None

    def grids(self) -> dict[str, np.ndarray]:
        return {name: v.reshape(self.r.shape) for name, v in self.losses.items()}


def _critical_nodes(sub: np.ndarray) -> np.ndarray:
    """Nodes of a (coarse) grid that are a local minimum, a saddle, or not finite."""
    bad = ~np.isfinite(sub)
    if sub.ndim == 1:
        v = np.where(bad, np.inf, sub)
        inner = np.zeros(sub.shape, dtype=bool)
        if len(v) >= 3:
            inner[1:-1] = (v[1:-1] <= v[:-2]) & (v[1:-1] <= v[2:])
        return inner | _dilate(bad)
    v = np.where(bad, np.inf, sub)
    out = np.zeros(sub.shape, dtype=bool)
    if min(sub.shape) >= 3:
        c = v[1:-1, 1:-1]
        # The 8 neighbours in order around the node.
        ring = [
            v[:-2, :-2], v[:-2, 1:-1], v[:-2, 2:], v[1:-1, 2:],
            v[2:, 2:], v[2:, 1:-1], v[2:, :-2], v[1:-1, :-2],
        ]  # fmt: skip
        signs = np.stack([r > c for r in ring])  # (8, ...)
        changes = (signs != np.roll(signs, 1, axis=0)).sum(axis=0)
        minimum = signs.all(axis=0)
        out[1:-1, 1:-1] = minimum | (changes >= 4)
    return out | _dilate(bad)


def _running_max(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """The largest value within `radius` steps along `axis`."""
    out = a.copy()
    n = a.shape[axis]
    for shift in range(1, min(radius, n - 1) + 1):
        lo = [slice(None)] * a.ndim
        hi = [slice(None)] * a.ndim
        lo[axis], hi[axis] = slice(0, n - shift), slice(shift, n)
        out[tuple(lo)] = np.maximum(out[tuple(lo)], a[tuple(hi)])
        out[tuple(hi)] = np.maximum(out[tuple(hi)], a[tuple(lo)])
    return out


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    for axis in range(mask.ndim):
        out |= np.roll(mask, 1, axis=axis) | np.roll(mask, -1, axis=axis)
    return out
