"""Surface files of the original loss-landscape code (Li et al. 2018), read as a `Surface`.

The original code (github.com/tomgoldstein/loss-landscape, ``plot_surface.py``) writes::

    /xcoordinates   (nx,)        /ycoordinates  (ny,)   (2-D only)
    /train_loss     (nx, ny)     /train_acc     (nx, ny)  accuracy in percent, 0-100
    /test_loss ...               /dir_file      the direction file's name (a string)

Its scheduler fills a value through the flat index ``k = j * nx + i`` for the point
``(x[i], y[j])`` (it enumerates ``numpy.meshgrid(x, y)``), so a square array is stored
``[y, x]``, and a non-square one only makes sense read through that flat index. Points
not computed yet hold -1. Settings live only in the file name (``xnorm=filter``,
``xignore=biasbn``); what can be parsed from it goes into ``Surface.config``.

`landscape.io.surfaces.read_surface` opens either kind of file, so every command and the
public API accept both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

from landscape.core.files import atomic_hdf5, atomic_path
from landscape.io.surface_file import (
    SURFACE_FORMAT,
    StoreError,
    Surface,
    create_surface_file,
    open_readonly,
    read_surface,
    replacing,
    value_name,
)

__all__ = [
    "convert_legacy",
    "format_of",
    "is_legacy_directions",
    "is_legacy_file",
    "is_legacy_layout",
    "read_legacy_directions",
    "read_legacy_surface",
    "write_legacy_surface",
]

LEGACY_SOURCE = "tomgoldstein/loss-landscape"
LEGACY_EXPORT_FORMAT = "landscape-legacy-export"
# The original names its values {split}_loss and {split}_acc (train / test).
_VALUE_RE = re.compile(r"^(?P<split>\w+?)_(?P<metric>loss|acc)$")
# The original's model names (cifar10/model_loader.py), e.g. resnet56_noshort, vgg9, wrn56_2.
_MODEL_RE = re.compile(
    r"^((?:resnet|preresnet|wrn|densenet|vgg|alexnet|lenet|googlenet|mobilenet|init_baseline)"
    r"[a-z]*\d+(?:_\d+)?(?:_noshort)?)(?:_|$)",
    re.IGNORECASE,
)


def format_of(f: h5py.File) -> str | None:
    """The ``format`` attribute of the open file `f` as text; None when absent or not
    text (an array, a number: no format of ours)."""
    try:  # a damaged attribute table: HDF5's OSError, KeyError, ...
        value = f.attrs.get("format")
    except (KeyError, OSError, RuntimeError, TypeError, ValueError) as e:
        raise StoreError(
            f"{f.filename!r} is damaged: its attributes cannot be read ({type(e).__name__}: "
            f"{e}); recompute it or use another copy"
        ) from e
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value if isinstance(value, str) else None


def is_legacy_layout(f: h5py.File) -> bool:
    """Whether the open HDF5 file `f` has the original code's layout (and not ours)."""
    return format_of(f) != SURFACE_FORMAT and "xcoordinates" in f


def is_legacy_file(path: str | os.PathLike) -> bool:
    """True when `path` is an HDF5 surface file of the original loss-landscape code."""
    with open_readonly(path, "surface file") as f:
        return is_legacy_layout(f)


def _settings_from_name(path: Path, dir_file: str | None) -> dict[str, str]:
    """Settings the original encodes into file and folder names."""
    config: dict[str, str] = {}
    text = " ".join(filter(None, [dir_file, str(path)]))
    for key in ("norm", "ignore"):
        m = re.search(rf"x{key}=([A-Za-z]+)", text)
        if m:
            config[key] = m.group(1)
    m = re.search(r"_(weights|states)_", text)
    if m:
        config["dir_type"] = m.group(1)
    # Its trained nets live in folders such as resnet56_noshort_sgd_lr=0.1_bs=128/.
    for part in reversed(path.resolve().parent.parts):
        m = _MODEL_RE.match(part)
        if m:
            config["model"] = m.group(1)
            break
    return config


# The most grid points a file may hold (as `landscape compute` allows): a small file may
# declare an array of billions of values, refused before it is read.
MAX_POINTS = 10_000_000


def _damaged(path: Path, part: str) -> StoreError:
    return StoreError(
        f"surface file {str(path)!r} is damaged: {part}; recompute it with the original code "
        "or use another copy"
    )


def _legacy_coordinates(f: h5py.File, name: str, path: Path) -> np.ndarray:
    """/xcoordinates or /ycoordinates, checked as landscape's own /alpha and /beta are: a
    1-D array of finite, strictly increasing real numbers."""
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        raise _damaged(path, f"/{name} is a group, not an array of coordinates")
    if obj.ndim != 1 or obj.size < 1 or obj.dtype.kind not in "fiu":
        raise _damaged(
            path, f"/{name} must be a 1-D array of real numbers, not {obj.dtype} {obj.shape}"
        )
    if obj.size > MAX_POINTS:
        raise _damaged(path, f"/{name} declares {obj.size:,} points; at most {MAX_POINTS:,}")
    values = np.asarray(obj[()], dtype=np.float64)
    if not np.isfinite(values).all():
        raise _damaged(path, f"/{name} holds NaN or inf")
    if np.any(np.diff(values) <= 0):
        raise _damaged(path, f"/{name} is not strictly increasing (a repeated or unsorted value)")
    return values


def _dir_file(f: h5py.File) -> str | None:
    """The direction file's name the original records in /dir_file (anything else: none)."""
    obj = f.get("dir_file")
    if not isinstance(obj, h5py.Dataset) or obj.ndim != 0 or obj.dtype.kind not in "OSU":
        return None
    value = obj[()]
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value if isinstance(value, str) else None


def read_legacy_surface(path: str | os.PathLike) -> Surface:
    """Read a file of the original code as a `Surface` (values [alpha, beta], accuracy a fraction).

    Every part is checked as landscape's own files are: coordinates 1-D, finite and
    strictly increasing, values real numbers, one per grid point, the grid at most
    `MAX_POINTS`.

    Raises:
        StoreError: the file is missing, unreadable, damaged or not such a file; the
            message names the part that is wrong.
    """
    path = Path(path)
    with open_readonly(path, "surface file") as f:
        if not is_legacy_layout(f):
            raise StoreError(
                f"{str(path)!r} is not a file of the original loss-landscape code "
                "(no /xcoordinates); a landscape surface file needs no conversion - use it as it is"
            )
        try:
            alpha, beta, raw, dir_file = _read_legacy_open(f, path)
        except StoreError:
            raise
        except (KeyError, OSError, TypeError, ValueError) as e:  # HDF5's own read errors
            raise _damaged(path, f"{type(e).__name__}: {e}") from e
    if not any(name.endswith("_loss") for name in raw):
        raise StoreError(f"{str(path)!r} holds no computed values (no train_loss or test_loss)")

    values: dict[str, np.ndarray] = {}
    for name, data in raw.items():
        m = _VALUE_RE.match(name)
        assert m is not None
        split = m.group("split")
        # -1 marks points not computed yet; the loss of the same split decides for both.
        marker = raw.get(f"{split}_loss", data)
        data = np.where(marker < 0, np.nan, data)
        if m.group("metric") == "acc":
            values[value_name(split, "accuracy")] = data / 100.0  # percent -> fraction
        else:
            values[value_name(split, "loss")] = data
    config: dict[str, object] = {"source": LEGACY_SOURCE, "legacy_file": path.name}
    if dir_file:
        config["dir_file"] = dir_file
    config.update(_settings_from_name(path, dir_file))
    return Surface(alpha=alpha, beta=beta, values=values, config=config, path=path)


def _read_legacy_open(
    f: h5py.File, path: Path
) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray], str | None]:
    alpha = _legacy_coordinates(f, "xcoordinates", path)
    beta = _legacy_coordinates(f, "ycoordinates", path) if "ycoordinates" in f else None
    nx, ny = len(alpha), (len(beta) if beta is not None else 1)
    if nx * ny > MAX_POINTS:
        raise _damaged(path, f"its grid has {nx}x{ny} points; at most {MAX_POINTS:,}")
    raw: dict[str, np.ndarray] = {}
    for name in f:
        if not _VALUE_RE.match(name):
            continue
        obj = f[name]
        if not isinstance(obj, h5py.Dataset):
            raise _damaged(path, f"/{name} is a group, not an array of values")
        if obj.dtype.kind not in "fiu":
            raise _damaged(path, f"/{name} holds {obj.dtype}, not real numbers")
        if obj.size != nx * ny:
            raise StoreError(
                f"{str(path)!r}: /{name} holds {obj.size} values but the grid has "
                f"{nx}x{ny} points; the file is damaged or not a surface file"
            )
        data = np.asarray(obj[()], dtype=np.float64)
        # Flat index k = j * nx + i holds (x[i], y[j]): read as (ny, nx), transpose.
        flat = data.reshape(-1)
        raw[name] = flat.reshape(ny, nx).T.copy() if beta is not None else flat.copy()
    return alpha, beta, raw, _dir_file(f)


def convert_legacy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write the surface of an original-code file as a landscape surface file at `dst`.

    The original stores its directions in a separate file as unnamed lists, so the new file
    has an empty ``/directions`` group; values and settings are carried over.
    """
    surface = read_legacy_surface(src)
    dst = Path(dst)
    # One atomic write of the finished file: a kill leaves no file or the whole one.
    # Points not computed stay NaN; a computed point whose value is NaN (diverged) is
    # +inf, as `SurfaceWriter` stores it.
    computed = surface.computed
    values = {
        name: np.where(computed & np.isnan(v), np.inf, np.where(computed, v, np.nan))
        for name, v in surface.values.items()
    }
    # Built beside `dst` and read back by the format's own reader before it replaces
    # `dst`: a file `landscape` would refuse is never written.
    with replacing(dst), atomic_path(dst) as tmp:
        create_surface_file(
            tmp,
            alpha=surface.alpha,
            beta=surface.beta,
            value_names=list(surface.values),
            directions={},
            config=surface.config,
            provenance={"converted_from": str(Path(src).resolve()), "source": LEGACY_SOURCE},
            values=values,
        )
        try:
            read_surface(tmp)
        except StoreError as e:  # the legacy reader let through what ours refuses: a bug
            raise RuntimeError(f"the conversion of {str(src)!r} does not read back: {e}") from e
    return dst


def is_legacy_directions(path: str | os.PathLike) -> bool:
    """Whether `path` is a direction file of the original code (``xdirection`` group)."""
    try:
        with open_readonly(path, "directions file") as f:
            return isinstance(f.get("xdirection"), h5py.Group)
    except StoreError:
        return False


def read_legacy_directions(
    path: str | os.PathLike,
    parameters: Sequence[tuple[str, tuple[int, ...]]],
    states: Sequence[tuple[str, tuple[int, ...]]] = (),
) -> dict[str, dict[str, torch.Tensor]]:
    """The directions of an original-code direction file, by our parameter names.

    The original code (``net_plotter.py``) writes each direction as a list of tensors, the
    datasets ``xdirection/0``, ``xdirection/1``, ... (``ydirection`` for 2-D), in the order
    of ``net.parameters()`` (``dir_type=weights``) or of the state dict (``states``),
    already normalized as it chose. They are matched to the network by position, each
    shape checked; used as they are (no normalization on top).

    Args:
        parameters: the network's ``(name, shape)`` in ``named_parameters()`` order.
        states: ``(name, shape)`` of its whole state dict, for files of ``dir_type=states``.
    """
    path = Path(path)
    out: dict[str, dict[str, torch.Tensor]] = {}
    with open_readonly(path, "directions file") as f:
        for axis, group_name in (("x", "xdirection"), ("y", "ydirection")):
            group = f.get(group_name)
            if group is None:
                continue
            if not isinstance(group, h5py.Group):
                raise StoreError(f"{str(path)!r}: /{group_name} is not a group of tensors")
            keys = sorted(group, key=lambda k: int(k) if k.isdigit() else -1)
            if not all(k.isdigit() for k in keys) or keys != [str(i) for i in range(len(keys))]:
                raise StoreError(
                    f"{str(path)!r}: /{group_name} must hold datasets 0, 1, 2, ... (one per "
                    "parameter, as the original code writes them)"
                )
            layout = parameters if len(keys) == len(parameters) else states
            if len(keys) != len(layout):
                raise StoreError(
                    f"{str(path)!r} has {len(keys)} tensors per direction; the network has "
                    f"{len(parameters)} parameters and {len(states)} state entries: it was "
                    "made for another network - pass the matching --ckpt / --model"
                )
            tensors = {}
            for key, (name, shape) in zip(keys, layout, strict=True):
                obj = group[key]
                if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "fiu":
                    what = f"{obj.dtype}" if isinstance(obj, h5py.Dataset) else "a group"
                    raise StoreError(
                        f"{str(path)!r}: {group_name}/{key} holds {what}, not real numbers; "
                        "the direction file is damaged - recreate it or use another copy"
                    )
                if tuple(obj.shape) != tuple(shape):
                    raise StoreError(
                        f"{str(path)!r}: {group_name}/{key} has shape {obj.shape}, the "
                        f"network's {name} has {tuple(shape)}: another network's directions"
                    )
                array = np.asarray(obj[()], dtype=np.float32)
                if tuple(array.shape) != tuple(shape):
                    raise StoreError(
                        f"{str(path)!r}: {group_name}/{key} has shape {array.shape}, the "
                        f"network's {name} has {tuple(shape)}: another network's directions"
                    )
                if not np.isfinite(array).all():
                    raise StoreError(f"{str(path)!r}: {group_name}/{key} holds NaN or inf")
                tensors[name] = torch.from_numpy(array)
            out[axis] = tensors
    if "x" not in out:
        raise StoreError(f"{str(path)!r} has no xdirection")
    return out


def write_legacy_surface(surface: Surface, path: str | os.PathLike) -> Path:
    """Write `surface` in the original code's layout, for its ``plot_2D.py``/``h52vtp.py``.

    ``/xcoordinates``, ``/ycoordinates``, ``/{split}_loss`` and ``/{split}_acc`` (percent)
    in its order: the value of ``(x[i], y[j])`` at flat index ``j * nx + i`` of an array
    declared ``(nx, ny)``; -1 where not computed. For a square grid this is the ``[y, x]``
    array its plotting code expects. For a non-square grid the file is exactly what the
    original code itself writes, but its ``plot_2D.py`` then pairs a ``(nx, ny)`` array with
    a ``(ny, nx)`` mesh and fails or swaps the axes: plot such files with ``landscape plot``,
    or read them through the flat index as `read_legacy_surface` does.
    """
    path = Path(path)
    nx = len(surface.alpha)
    ny = len(surface.beta) if surface.beta is not None else 1
    # Built in memory, written by Python: a full disk is one clean OSError (HDF5 writing
    # to the disk itself may crash the interpreter when its writes fail).
    with atomic_hdf5(path) as f:
        # Ignored by the original code; lets a rerun replace its own export.
        f.attrs["format"] = LEGACY_EXPORT_FORMAT
        f["xcoordinates"] = surface.alpha
        if surface.beta is not None:
            f["ycoordinates"] = surface.beta
        for split in surface.splits:
            for metric, key, scale in (("loss", "loss", 1.0), ("accuracy", "acc", 100.0)):
                name = value_name(split, metric)
                if name not in surface.values:
                    continue
                v = surface.values[name] * scale
                v = np.where(np.isnan(surface.get(split, "loss")), -1.0, v)
                flat = v.T.reshape(-1) if surface.beta is not None else v.reshape(-1)
                f[f"{split}_{key}"] = flat.reshape(nx, ny) if surface.beta is not None else flat
    return path
