"""Export a surface for other tools: VTK XML structured grid (ParaView) and CSV.

``landscape export FILE.h5 --vtk`` writes ``FILE_train_loss.vts``: a VTK XML
StructuredGrid whose points are ``(alpha, beta, value)``, written by hand (no VTK
dependency), for any grid shape. Every stored value array travels along as point data
(NaN where not computed), and points not computed yet are blanked with VTK's
``vtkGhostType`` so ParaView hides them. ``--log`` puts log10 of the value on the z axis
and ``--clip Z`` clamps values above Z first, so one huge peak does not flatten the view
(the original code's ``h52vtp.py --zmax --log``). ``--csv`` writes one row per grid point.
Files of the original loss-landscape code are accepted too.
"""

from __future__ import annotations

import base64
import csv
import os
from pathlib import Path

import numpy as np

from landscape.core.errors import InputError
from landscape.core.files import atomic_path, atomic_write_text
from landscape.io.surface_file import Surface
from landscape.io.surfaces import surface_values

__all__ = ["surface_points", "write_csv", "write_vtk"]

# vtkDataSetAttributes::HIDDENPOINT: ParaView skips points (and their cells) so marked.
_HIDDEN_POINT = 2


# h52vtp.py's --log draws ln(z + 0.1): Li et al.'s 3-D renderings (ParaView, clipped at 10).
LOG_OFFSET = 0.1


def surface_points(
    surface: Surface,
    *,
    split: str = "train",
    metric: str = "loss",
    log: bool = False,
    clip: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grid points ``(alpha, beta, z)`` in VTK order (alpha fastest) and the computed mask.

    Returns:
        ``points`` of shape (nx * ny, 3) and ``computed`` of shape (nx * ny,). Points not
        computed get the lowest computed z, so the geometry stays finite.

    Raises:
        StoreError: no such split or metric. ValueError: nothing computed, or `log` with
        values that are not positive.
    """
    z = surface_values(surface, split, metric)
    if clip is not None:
        z = np.minimum(z, clip)
    if log:  # the original code's h52vtp.py --log: ln(z + 0.1), after clipping
        if np.any(z[np.isfinite(z)] <= -LOG_OFFSET):
            raise InputError(f"--log needs {split} {metric} values above -{LOG_OFFSET}; drop --log")
        z = np.log(z + LOG_OFFSET)
    beta = surface.beta if surface.is_2d else np.zeros(1)
    a, b = np.meshgrid(surface.alpha, beta, indexing="ij")
    z = z.reshape(a.shape)  # (nx, ny); ny = 1 for a 1-D surface
    computed = np.isfinite(z)
    if not computed.any():
        raise InputError(f"no computed {split} {metric} values yet; run landscape.compute")
    z = np.where(computed, z, z[computed].min())
    # VTK orders points with the first index fastest: transpose (nx, ny) -> (ny, nx).
    points = np.stack([a.T.ravel(), b.T.ravel(), z.T.ravel()], axis=1)
    return points, computed.T.ravel()


def _data_array(name: str | None, values: np.ndarray, vtk_type: str, components: int = 1) -> str:
    """A binary inline DataArray: base64 of a UInt64 byte count followed by the data."""
    raw = np.ascontiguousarray(values).astype({"Float64": "<f8", "UInt8": "u1"}[vtk_type])
    blob = base64.b64encode(np.uint64(raw.nbytes).astype("<u8").tobytes() + raw.tobytes())
    named = f' Name="{name}"' if name else ""
    return (
        f'<DataArray type="{vtk_type}"{named} NumberOfComponents="{components}" '
        f'format="binary">{blob.decode("ascii")}</DataArray>'
    )


def write_vtk(
    surface: Surface,
    path: str | os.PathLike,
    *,
    split: str = "train",
    metric: str = "loss",
    log: bool = False,
    clip: float | None = None,
) -> Path:
    """Write the surface as a VTK XML StructuredGrid (.vts) with z = the chosen value.

    Point data: every stored value array (raw, NaN where not computed), ``z`` (what the
    geometry shows) and ``vtkGhostType`` (hides points not computed yet).

    Args:
        surface: a 1-D or 2-D surface.
        path: the file to write (``.vts``); an existing one is replaced.
        split, metric: the value on the z axis.
        log: log10 of the value on the z axis.
        clip: clamp values above this first, so one huge peak does not flatten the view.

    Returns:
        The path written.
    """
    points, computed = surface_points(surface, split=split, metric=metric, log=log, clip=clip)
    nx = len(surface.alpha)
    ny = len(surface.beta) if surface.is_2d else 1
    extent = f"0 {nx - 1} 0 {ny - 1} 0 0"
    arrays = [_data_array("z", points[:, 2], "Float64")]
    for name, v in sorted(surface.values.items()):
        flat = (v.T if surface.is_2d else v).ravel()
        arrays.append(_data_array(name, flat, "Float64"))
    ghost = np.where(computed, 0, _HIDDEN_POINT)
    arrays.append(_data_array("vtkGhostType", ghost, "UInt8"))
    text = (
        '<?xml version="1.0"?>\n'
        "<!-- landscape export -->\n"
        '<VTKFile type="StructuredGrid" version="0.1" byte_order="LittleEndian" '
        'header_type="UInt64">\n'
        f'<StructuredGrid WholeExtent="{extent}">\n<Piece Extent="{extent}">\n'
        f'<PointData Scalars="z">\n{chr(10).join(arrays)}\n</PointData>\n'
        f"<Points>\n{_data_array(None, points.ravel(), 'Float64', 3)}\n</Points>\n"
        "</Piece>\n</StructuredGrid>\n</VTKFile>\n"
    )
    path = Path(path)
    atomic_write_text(path, text, encoding="ascii")
    return path


def write_csv(surface: Surface, path: str | os.PathLike) -> Path:
    """One row per grid point: alpha, beta (2-D), then every stored value ("nan" if not computed).

    Rows follow the arrays' order, alpha outer and beta inner (``indexing="ij"``).

    Args:
        surface: a 1-D or 2-D surface.
        path: the file to write (``.csv``); an existing one is replaced.

    Returns:
        The path written.
    """
    names = sorted(surface.values)
    if surface.is_2d:
        a, b = np.meshgrid(surface.alpha, surface.beta, indexing="ij")
        columns = [a.ravel(), b.ravel()]
        header = ["alpha", "beta", *names]
    else:
        columns = [surface.alpha]
        header = ["alpha", *names]
    columns += [surface.values[n].ravel() for n in names]
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in zip(*columns, strict=True):
            writer.writerow(repr(float(v)) for v in row)
    return path
