"""The trajectory file: two PCA directions of a training run and its path projected onto them.

A directions file (``format="landscape-directions"``, read by `read_directions` and
``landscape compute --directions``) with a ``/path`` group: alpha, beta, epoch,
off-plane distance and distance of each checkpoint. `landscape.analysis.trajectory`
computes the PCA; this module writes and reads its file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from landscape.io.surface_file import open_readonly, write_directions_file

__all__ = ["PCAPlane", "read_path", "write_directions"]


class PCAPlane(Protocol):
    """What `write_directions` stores of a `PCAResult` (io defines no analysis types)."""

    directions: Mapping[str, Mapping[str, torch.Tensor]]
    explained_variance_ratio: np.ndarray
    coords: np.ndarray
    off_plane_distance: np.ndarray
    distance: np.ndarray
    epochs: np.ndarray
    center: bool
    sources: Sequence[Path]
    ignore: str


def write_directions(
    path: str | os.PathLike, result: PCAPlane, *, config: Mapping[str, Any] | None = None
) -> Path:
    """Write the PCA directions and the projected path to an HDF5 file, atomically.

    Args:
        path: the file to write (``.h5``); an existing one is replaced.
        result: a `PCAResult` (of `trajectory_pca` or `pca_directions`).
        config: stored as JSON; default the PCA's settings and source checkpoints.

    Returns:
        The path written.

    Layout: ``/directions/x/<name>``, ``/directions/y/<name>`` (float32, readable by
    `landscape.io.surface_file.read_directions`), ``/path/alpha``, ``/path/beta``, ``/path/epoch``,
    ``/path/off_plane_distance``, ``/path/distance``; attrs on / hold ``format``,
    ``config`` (JSON) and ``explained_variance_ratio``. Use the directions unnormalized
    (``norm=none``): the path coordinates are in the same units.
    """
    if config is None:
        config = {
            "kind": "trajectory_pca",
            "sources": [str(p) for p in result.sources],
            "final": str(result.sources[-1]) if result.sources else None,
            "epochs": [int(e) for e in result.epochs],
            "center": result.center,
            "ignore": result.ignore,
        }
    path = Path(path)
    write_directions_file(
        path,
        result.directions,
        config=config,
        attrs={
            "explained_variance_ratio": result.explained_variance_ratio,
            "center": result.center,
        },
        groups={
            "path": {
                "alpha": result.coords[:, 0],
                "beta": result.coords[:, 1],
                "epoch": result.epochs,
                "off_plane_distance": result.off_plane_distance,
                "distance": result.distance,
            }
        },
    )
    return path


def read_path(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The training path stored in a directions file.

    Args:
        path: a file of `write_directions` / ``landscape trajectory``.

    Returns:
        ``(alpha, beta, epochs)`` arrays, or None when the file holds no path.

    Raises:
        StoreError: the file is missing or not HDF5.
    """
    with open_readonly(path) as f:
        if "path" not in f:
            return None
        g = f["path"]
        return g["alpha"][()], g["beta"][()], g["epoch"][()]
