"""Grids of (alpha, beta) coordinates and the coarse-to-fine order of evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landscape.core.errors import InputError

__all__ = [
    "Axis",
    "axis_levels",
    "axis_text",
    "coarse_to_fine",
    "finest_complete",
    "grid_origin",
    "parse_axis",
]


@dataclass(frozen=True)
class Axis:
    """``num`` evenly spaced values from ``min`` to ``max`` inclusive."""

    min: float
    max: float
    num: int

    def values(self) -> np.ndarray:
        return np.linspace(self.min, self.max, self.num, dtype=np.float64)

    def __str__(self) -> str:
        return f"{self.min:g}:{self.max:g}:{self.num}"


def parse_axis(text: str, *, name: str = "x") -> Axis:
    """Parse ``MIN:MAX:NUM`` (e.g. ``-1:1:51``); errors name the argument `name` and the fix."""
    parts = str(text).split(":")
    hint = f"{name} must be MIN:MAX:NUM, e.g. -1:1:51; got {text!r}"
    if len(parts) != 3:
        raise InputError(hint, arg=name)
    try:
        lo, hi, num = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError as e:
        raise InputError(hint, arg=name) from e
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"{name}: MIN and MAX must be finite numbers; got {text!r}", arg=name)
    if num < 1:
        raise InputError(f"{name}: NUM must be at least 1; got {text!r}", arg=name)
    if num > 1 and not hi > lo:
        raise InputError(f"{name}: MAX must be greater than MIN; got {text!r}", arg=name)
    if num > 1 and not (hi - lo) / (num - 1) > 2 * np.spacing(max(abs(lo), abs(hi))):
        # e.g. (0, 5e-324, 3): points closer than float64 can tell apart (checked without
        # making them: NUM is not bounded yet)
        raise InputError(
            f"{name}: {num} points between {lo!r} and {hi!r} are not distinct numbers; widen "
            "the range or use fewer points",
            arg=name,
        )
    return Axis(lo, hi, num)


def _number(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def axis_text(value: object, *, name: str = "x") -> str:
    """A grid axis as ``MIN:MAX:NUM``, from any of the forms a caller may give.

    ``"-1:1:51"`` (kept as given), an `Axis`, a tuple ``(MIN, MAX, NUM)``, or the
    values themselves as a list or array (evenly spaced, as `numpy.linspace` makes).
    """
    if isinstance(value, str):
        parse_axis(value, name=name)
        return value
    if isinstance(value, Axis):
        return f"{_number(value.min)}:{_number(value.max)}:{value.num}"
    if isinstance(value, tuple):
        if len(value) != 3:
            raise InputError(
                f"{name} as a tuple is (MIN, MAX, NUM), e.g. (-1, 1, 51); got {value!r}", arg=name
            )
        lo, hi, num = value
        if isinstance(num, float) and num.is_integer():
            num = int(num)
        if not isinstance(num, int | np.integer):
            raise InputError(f"{name}: NUM must be an integer; got {value!r}", arg=name)
        text = f"{_number(lo)}:{_number(hi)}:{int(num)}"
        parse_axis(text, name=name)
        return text
    try:
        values = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 1 or values.size < 1:
        raise InputError(
            f"{name} must be MIN:MAX:NUM, a tuple (MIN, MAX, NUM) or a list of evenly spaced "
            f"values; got {value!r}",
            arg=name,
        )
    text = f"{_number(values[0])}:{_number(values[-1])}:{values.size}"
    if not np.allclose(parse_axis(text, name=name).values(), values, rtol=0, atol=1e-12):
        raise InputError(
            f"{name}: the values are not evenly spaced; a grid is MIN:MAX:NUM (e.g. {text})",
            arg=name,
        )
    return text


def grid_origin(alpha: np.ndarray, beta: np.ndarray | None = None) -> tuple[int, ...]:
    """Grid indices of θ*: the point nearest (0, 0), the first on a tie (where the figures
    and the viewer draw the star)."""
    axes = [alpha] if beta is None else [alpha, beta]
    return tuple(int(np.argmin(np.abs(np.asarray(a, dtype=np.float64)))) for a in axes)


def _axis_levels(n: int, origin: int, spread: float) -> np.ndarray:
    """The level (0 = coarsest) at which each index of one axis joins the sub-grids.

    Level 0 holds both ends and `origin`. Level k aims at a spacing of ``spread / 2^k``
    index steps: every gap of level k - 1 is split into as many near-equal parts as that
    spacing asks for (at least one, at most the gap). So every level spans the whole axis,
    holds θ* and every level before it, and the last one is the whole axis.
    """
    level = np.zeros(n, dtype=np.int64)
    known = sorted({0, n - 1, min(max(int(origin), 0), n - 1)})
    k = 0
    while len(known) < n:
        k += 1
        target = spread / 2**k
        new = []
        for a, b in zip(known[:-1], known[1:], strict=True):
            gap = b - a
            parts = min(gap, max(1, int(np.floor(gap / target + 0.5))))
            new += [a + (j * gap + parts // 2) // parts for j in range(1, parts)]
        level[new] = k
        known = sorted({*known, *new})
    return level


def axis_levels(shape: tuple[int, ...], origin: tuple[int, ...] | None = None) -> list[np.ndarray]:
    """Each axis's coarse-to-fine levels: ``levels[d][i]`` is the first level whose
    sub-grid holds index i of axis d; the sub-grid of level k is every index of level <= k
    on every axis. `origin`: θ*'s indices (`grid_origin`; default the middle of each
    axis). The axes share their target spacing per level (in index steps), so a sub-grid's
    cells are near-square in index steps, as the grid's are."""
    shape = tuple(int(n) for n in shape)
    if origin is None:
        origin = tuple((n - 1) // 2 for n in shape)
    origin = tuple(int(o) for o in origin)
    if len(origin) != len(shape) or not all(0 <= o < n for o, n in zip(origin, shape, strict=True)):
        raise ValueError(f"origin {origin} is not a point of a grid of shape {shape}")
    spread = max([1, *(max(o, n - 1 - o) for o, n in zip(origin, shape, strict=True))])
    return [_axis_levels(n, o, spread) for n, o in zip(shape, origin, strict=True)]


def coarse_to_fine(shape: tuple[int, ...], origin: tuple[int, ...] | None = None) -> np.ndarray:
    """Flat indices of a grid of `shape` in the order `compute` evaluates them.

    θ* first (`origin`: the point nearest (0, 0), `grid_origin`; default the middle of
    each axis), then the corners, then the rest of the coarsest sub-grid (both ends and θ*
    on every axis), then level by level the points each finer sub-grid adds
    (`axis_levels`: every level spans the whole range and holds θ*). Every point appears
    exactly once. A partly computed surface is thus already a coarser picture of the
    whole around θ*; `finest_complete` finds it (the figures and the viewer draw it).
    """
    shape = tuple(int(n) for n in shape)
    levels = axis_levels(shape, origin)
    if origin is None:
        origin = tuple((n - 1) // 2 for n in shape)
    index = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    key = np.maximum.reduce(np.meshgrid(*levels, indexing="ij")).ravel() + 2
    corner = np.logical_and.reduce(
        [(i == 0) | (i == n - 1) for i, n in zip(index, shape, strict=True)]
    )
    key[corner.ravel()] = 1
    key[np.ravel_multi_index(tuple(int(o) for o in origin), shape)] = 0
    return np.argsort(key, kind="stable")


def finest_complete(
    done: np.ndarray, alpha: np.ndarray, beta: np.ndarray | None = None
) -> tuple[np.ndarray, ...] | None:
    """The indices, axis by axis, of the finest complete sub-grid of `coarse_to_fine` in a
    partly computed grid (`done`: mask of the computed points; `alpha`, `beta`: its
    coordinates): the whole grid once it is done, None when not even the coarsest
    sub-grid is (a grid filled in another order). Its cells are complete, so a figure
    drawn on it shows a coarser picture of the whole, θ* included."""
    done = np.asarray(done, dtype=bool)
    levels = axis_levels(done.shape, grid_origin(alpha, beta))
    top = max(int(lv.max()) for lv in levels) if done.size else 0
    for k in range(top, -1, -1):
        index = tuple(np.flatnonzero(lv <= k) for lv in levels)
        if done[np.ix_(*index)].all():
            return index
    return None
