"""A curvature map's place in a surface file: ``/{split}_curvature_ratio`` beside the loss.

`landscape.analysis.curvature` computes the map; this module is its file format: datasets
of the grid's shape, with the grid's dimension scales and the settings as attributes,
added to the surface file by an atomic copy-and-rename.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape.core.files import atomic_path
from landscape.io.surface_file import StoreError

__all__ = ["refuse_if_being_written", "write_curvature_map"]


def refuse_if_being_written(path: str | os.PathLike) -> None:
    """Fail now, not after the long computation, if a writer holds the file's lock."""
    try:
        with h5py.File(path, "r", locking=True):
            pass
    except OSError as e:
        raise StoreError(
            f"{str(path)!r} is being written by another process (landscape compute?); "
            "wait for it to finish, then rerun"
        ) from e


def _attr(value: Any) -> Any:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True)
    return value


def write_curvature_map(
    path: str | os.PathLike,
    ratio: np.ndarray,
    *,
    split: str = "train",
    attrs: Mapping[str, Any] | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Store a curvature map as ``/{split}_curvature_ratio`` beside the loss in a surface file.

    Crash-safe: the file is copied to a temporary file, the datasets added (replacing
    any of the same name) with the grid's dimension scales, the copy fsynced and renamed
    over the original, all under a shared lock on the original: a writer holding the
    file is refused, and none can start writing into it before the rename.

    Args:
        path: an existing surface file.
        ratio: (nx, ny) or (nx,), the surface's shape.
        split: the data split the Hessian was computed on.
        attrs: settings stored on the dataset (mappings and lists as JSON).
        extra: more arrays of the same shape, stored as ``/{split}_{name}``
            (e.g. ``{"lambda_min": ..., "lambda_max": ...}``).
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"surface file {str(path)!r} does not exist; compute the surface first")
    arrays = {f"{split}_curvature_ratio": np.asarray(ratio, dtype=np.float64)}
    arrays.update(
        {f"{split}_{k}": np.asarray(v, dtype=np.float64) for k, v in (extra or {}).items()}
    )
    try:  # a shared lock until the rename: no SurfaceWriter can write into the old file
        guard = h5py.File(path, "r", locking=True)
    except OSError as e:
        raise StoreError(
            f"cannot open {str(path)!r} ({e}); is it being written by another process?"
        ) from e
    with guard, atomic_path(path) as tmp:
        # Changed in memory, written by Python: a full disk is one clean OSError (HDF5
        # writing to the disk itself may crash the interpreter when its writes fail).
        buf = io.BytesIO(path.read_bytes())
        with h5py.File(buf, "r+") as f:
            scales = [f[n] for n in ("alpha", "beta") if n in f]
            shape = tuple(len(s) for s in scales)
            for name, data in arrays.items():
                if data.shape != shape:
                    raise StoreError(
                        f"{name} has shape {data.shape}, the surface {str(path)!r} has {shape}"
                    )
                if name in f:
                    del f[name]
                ds = f.create_dataset(name, data=data, track_times=False)
                for dim, scale in enumerate(scales):
                    ds.dims[dim].attach_scale(scale)
                for k, v in (attrs or {}).items():
                    ds.attrs[k] = _attr(v)
        tmp.write_bytes(buf.getbuffer())
