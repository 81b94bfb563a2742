"""Grids of (alpha, beta) coordinates and the coarse-to-fine order of evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landscape.core.errors import InputError

__all__ = ["Axis", "axis_text", "coarse_to_fine", "parse_axis"]


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


def _level(i: np.ndarray) -> np.ndarray:
    """Largest k with 2^k dividing i (i = 0 divides by everything: a huge level)."""
    i = np.asarray(i, dtype=np.int64)
    low_bit = i & -i
    level = np.where(i == 0, 62, np.log2(np.maximum(low_bit, 1)).astype(np.int64))
    return level


def coarse_to_fine(shape: tuple[int, ...]) -> np.ndarray:
    """Flat indices of a grid of `shape`, every 2^k-th point first (k descending).

    A partially computed surface is then already a coarser picture of the whole.
    """
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    level = np.minimum.reduce([_level(g) for g in grids]).ravel()
    return np.argsort(-level, kind="stable")
