"""Surfaces as every caller meets them: read from either file format, values as arrays.

`read_surface` is the one reader of the public API and of every command: it opens a file
of ``landscape compute`` (`landscape.io.surface_file`, the format's own checked reader)
or of the original loss-landscape code (`landscape.io.legacy`), whichever `path` is.
`surface_values` is the one accessor the figures, the viewer and the exports share.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from landscape.io import legacy, surface_file
from landscape.io.surface_file import SURFACE_FORMAT, StoreError, Surface, open_readonly

__all__ = ["read_surface", "surface_values"]


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
