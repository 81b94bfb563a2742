"""Surfaces as every caller meets them: read from either file format, values as arrays.

`read_surface` is the one reader of the public API and of every command: it opens a file
of ``landscape compute`` (`landscape.io.surface_file`, the format's own checked reader)
or of the original loss-landscape code (`landscape.io.legacy`), whichever `path` is.
`surface_values` is the one accessor the figures, the viewer and the exports share;
`stored_paths` and `stored_points` the one reader of the curves and points a file records
for drawing on its plane (``landscape connect --plane``: the curve, the line A -> B, the
endpoints and the bend), which ``landscape plot`` and ``landscape view`` draw.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from landscape.io import legacy, surface_file
from landscape.io.surface_file import SURFACE_FORMAT, StoreError, Surface, open_readonly

__all__ = ["read_surface", "stored_paths", "stored_points", "surface_values"]


def read_surface(path: str | os.PathLike) -> Surface:
    """Read a surface file of landscape or of the original loss-landscape code.

    Args:
        path: a file written by ``landscape compute`` / `compute_surface`, or by the
            original code's ``plot_surface.py`` (accuracy then read as a fraction).

    Returns:
        The `Surface` (grid, values, config; directions are read by `read_directions`).

    Raises:
        StoreError: the file is missing, unreadable, damaged or neither kind of surface
            file; the message names what is wrong.
    """
    path = Path(path)
    with open_readonly(path, "surface file") as f:
        try:
            fmt = legacy.format_of(f)
            is_legacy = legacy.is_legacy_layout(f)
        except (KeyError, OSError, RuntimeError, TypeError, ValueError) as e:  # HDF5's errors
            raise StoreError(
                f"surface file {str(path)!r} is damaged: its attributes cannot be read "
                f"({type(e).__name__}: {e}); recompute it or use another copy"
            ) from e
    if fmt == SURFACE_FORMAT:
        return surface_file.read_surface(path)
    if is_legacy:
        return legacy.read_legacy_surface(path)
    raise StoreError(
        f"{str(path)!r} is not a surface file (neither format={SURFACE_FORMAT!r} nor the "
        "original loss-landscape layout with /xcoordinates); pass a file written by "
        "landscape.compute"
    )


def surface_values(surface: Surface, split: str = "train", metric: str = "loss") -> np.ndarray:
    """The values of `metric` on `split` as a float array, the grid's shape.

    Args:
        surface: a surface read by `read_surface` or returned by `compute_surface`.
        split: train | test (a split the surface holds).
        metric: loss | accuracy | error (1 - accuracy) or any stored value name.

    Returns:
        A float64 array of shape ``surface.shape``; NaN where not computed yet.

    Raises:
        StoreError: the surface has no such split or metric (the message lists what it has).
    """
    if split not in surface.splits:
        have = ", ".join(surface.splits) or "none"
        raise StoreError(
            f"surface {surface.label!r} has no {split!r} split (it has: {have}); "
            "choose another split"
        )
    return np.asarray(surface.get(split, metric), dtype=np.float64)


def stored_paths(surface: Surface) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The paths a 2-D surface file records for drawing on its plane, by label.

    A file records them in its provenance, set when it is created:
    ``"paths": {label: {"alpha": [...], "beta": [...]}}`` (e.g. ``landscape connect
    --plane``: ``"bezier curve"`` and ``"line"``). Malformed entries are skipped: they are
    drawings, never values.

    Args:
        surface: a surface read by `read_surface` (or returned by a compute).

    Returns:
        ``{label: (alpha, beta)}``, float arrays of one length; empty for a 1-D surface or
        a file that records none.
    """
    found = surface.provenance.get("paths") if surface.is_2d else None
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if not isinstance(found, dict):
        return out
    for label, entry in found.items():
        pair = _coordinates(entry)
        if pair is not None and pair[0].size >= 2:
            out[str(label)] = pair
    return out


def stored_points(surface: Surface) -> dict[str, tuple[float, float]]:
    """The named points a 2-D surface file records on its plane, by label.

    Recorded in the provenance as ``"points": {label: [alpha, beta]}`` (``landscape
    connect --plane``: the endpoints ``A``, ``B`` and the ``bend``).

    Args:
        surface: a surface read by `read_surface`.

    Returns:
        ``{label: (alpha, beta)}``; empty for a 1-D surface or a file that records none.
    """
    found = surface.provenance.get("points") if surface.is_2d else None
    out: dict[str, tuple[float, float]] = {}
    if not isinstance(found, dict):
        return out
    for label, xy in found.items():
        pair = _coordinates({"alpha": xy[:1], "beta": xy[1:]} if isinstance(xy, list) else None)
        if pair is not None and pair[0].size == 1:
            out[str(label)] = (float(pair[0][0]), float(pair[1][0]))
    return out


def _coordinates(entry: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if not isinstance(entry, dict):
        return None
    a, b = entry.get("alpha"), entry.get("beta")
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
        return None
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (*a, *b)):
        return None
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
