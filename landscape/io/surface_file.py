"""The surface file: one HDF5 file per surface, written so a kill never corrupts it.

Layout::

    /alpha, /beta              float64 dimension scales
    /{split}_{metric}          float64 (nx, ny) or (nx,), NaN = not computed yet
    /directions/x/<name>       float32, one dataset per parameter (and /directions/y/)
    /per_sample/{split}_loss   float32 (*grid, N), where kept
    /refinement/interpolated   uint8, the grid's shape: 1 where the values are predicted
                               from coarser points, not evaluated (``--tolerance``)
    /refinement/tolerance      float64 (1,): the tolerance they are within; NaN: none
    attrs on /: format, format_version, config (JSON), provenance (JSON)

Crash safety: the file is built completely in memory, written to a temporary file
and renamed into place, at its full size: every array a compute writes (the values and
the per-sample losses) is contiguous and allocated then. Afterwards only values inside
those arrays are written, straight to the disk (no HDF5 cache holds them), so HDF5
metadata never changes and the file never grows: a process killed at any moment
(SIGKILL included) leaves a file that opens, and a full disk or a file-size limit stops
a compute with one line (at creation, or, where a filesystem still needs space to
overwrite, at the write that failed) keeping every point written before it. Points
still NaN are recomputed. A file of an earlier version (per-sample losses in compressed
chunks, which grow as they are written) is rewritten so, atomically, when it is opened
for writing.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

from landscape.core.errors import InputError
from landscape.core.files import atomic_hdf5, atomic_path, hdf5_disk_error

__all__ = [
    "DIRECTIONS_FORMAT",
    "SURFACE_FORMAT",
    "SURFACE_VERSION",
    "STORED_METRICS",
    "SE_METRICS",
    "PER_SAMPLE",
    "REFINEMENT",
    "read_per_sample",
    "has_per_sample",
    "StoreError",
    "Surface",
    "SurfaceFile",
    "SurfaceWriter",
    "OutError",
    "create_surface_file",
    "open_readonly",
    "read_surface",
    "read_surface_snapshot",
    "refuse_links",
    "read_directions",
    "has_directions",
    "stored_directions_sha256",
    "write_without_directions",
    "is_published_copy",
    "being_written",
    "not_being_written",
    "value_name",
    "write_directions_file",
]

SURFACE_FORMAT = "landscape-surface"
SURFACE_VERSION = 2  # 2: standard errors beside the values; readers take 1 and 2
DIRECTIONS_FORMAT = "landscape-directions"
STORED_METRICS = ("loss", "accuracy")
# Standard errors of the mean over the evaluated samples (format_version 2).
SE_METRICS = ("loss_se", "accuracy_se")
# Group of per-sample losses: /per_sample/{split}_loss, float32 (*grid, N), contiguous.
PER_SAMPLE = "per_sample"
REFINEMENT = "refinement"  # adaptive refinement's record (files computed with a tolerance)


class StoreError(InputError):
    """A surface file that cannot be used as asked; the message names the fix."""


class OutError(StoreError):
    """An output file that cannot be resumed or written as asked.

    The fix names the arguments as the caller knows them: ``str(e)`` says ``out=`` and
    ``overwrite=True`` (the library's arguments), `as_flag` ``--out`` and ``--overwrite``
    (what the command line prints).
    """

    def __init__(self, problem: str, *, fix: str | None = None, flag_fix: str | None = None):
        python = fix or "choose another out=, or pass overwrite=True to replace it"
        flags = flag_fix or "use another --out, or --overwrite to replace it"
        super().__init__(f"{problem}; {python}", arg=("out", "overwrite"))
        self._flags = f"{problem}; {flags}"

    def as_flag(self) -> str:
        return self._flags


def value_name(split: str, metric: str) -> str:
    """Dataset name of a value array, e.g. ``train_loss``."""
    return f"{split}_{metric}"


@dataclass(frozen=True)
class Surface:
    """A surface file read into memory (directions excluded; see `read_directions`).

    Attributes:
        alpha: the alpha grid, (nx,).
        beta: the beta grid, (ny,), or None for a 1-D surface.
        values: the arrays by name (``"train_loss"``, ``"test_accuracy_se"``, ...), each
            (nx, ny) or (nx,): ``values[name][i, j]`` is at (alpha[i], beta[j]); NaN where
            not computed yet, +inf where the loss diverged.
        config: the settings it was computed with (`SurfaceConfig.to_json`).
        provenance: package, torch and device versions, checkpoint and data hashes, time.
        path: the file it was read from, if any.
        interpolated: mask of the points whose values were predicted from coarser ones
            within `tolerance` (``landscape compute --tolerance``), not evaluated; None
            when every computed point was evaluated.
        tolerance: the largest error of the loss at an interpolated point, by design.
    """

    alpha: np.ndarray  # (nx,)
    beta: np.ndarray | None  # (ny,) or None for a 1-D surface
    values: dict[str, np.ndarray]  # "train_loss" -> (nx, ny) or (nx,)
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    interpolated: np.ndarray | None = None
    tolerance: float | None = None

    @property
    def evaluated(self) -> np.ndarray:
        """Mask of the points evaluated (computed and not interpolated)."""
        if self.interpolated is None:
            return self.computed
        return self.computed & ~self.interpolated

    @property
    def is_2d(self) -> bool:
        return self.beta is not None

    def __repr__(self) -> str:
        grid = f"alpha [{self.alpha[0]:g}, {self.alpha[-1]:g}]"
        if self.beta is not None:
            grid += f" x beta [{self.beta[0]:g}, {self.beta[-1]:g}]"
        done = float(self.computed.mean()) if self.computed.size else 0.0
        settings = ", ".join(
            f"{k}={self.config[k]}"
            for k in ("norm", "seed", "samples")
            if self.config.get(k) is not None
        )
        where = f", {self.path.name}" if self.path is not None else ""
        return (
            f"Surface({self.label!r}: {'x'.join(map(str, self.shape))} on {grid}, "
            f"splits {','.join(self.splits) or '-'}, {done:.0%} computed"
            f"{f', {settings}' if settings else ''}{where})"
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.alpha),) if self.beta is None else (len(self.alpha), len(self.beta))

    @property
    def splits(self) -> list[str]:
        return sorted({k.rsplit("_", 1)[0] for k in self.values if k.endswith("_loss")})

    @property
    def label(self) -> str:
        """A short human name: the configured label, else the model name, else the file stem."""
        model = self.config.get("model")
        if isinstance(model, str):  # a builder module:function is named by its function
            model = model.rsplit(":", 1)[-1]
        return str(
            self.config.get("label") or model or (self.path.stem if self.path else "surface")
        )

    def get(self, split: str = "train", metric: str = "loss") -> np.ndarray:
        """Values of `metric` (loss | accuracy | error | any stored name) on `split`."""
        if metric == "error":
            return 1.0 - self.get(split, "accuracy")
        key = value_name(split, metric)
        if key not in self.values:
            known = ", ".join(sorted(self.values))
            raise StoreError(f"surface {self.label!r} has no {key!r}; available: {known}")
        return self.values[key]

    def standard_error(self, split: str = "train", metric: str = "loss") -> np.ndarray | None:
        """The standard error of `metric` (loss | accuracy | error) over the evaluated
        samples at each point; None for files without them (format version 1)."""
        key = value_name(split, "accuracy_se" if metric == "error" else f"{metric}_se")
        return self.values.get(key)

    @property
    def computed(self) -> np.ndarray:
        """Boolean mask of points whose loss and accuracy are known (on every split).

        Analyses stored beside them (e.g. a curvature map) do not count.
        """
        mask = np.ones(self.shape, dtype=bool)
        for name, v in self.values.items():
            if name.rsplit("_", 1)[-1] in STORED_METRICS:
                mask &= ~np.isnan(v)
        return mask

    @property
    def diverged(self) -> np.ndarray:
        """Boolean mask of computed points whose loss is not finite (NaN or inf)."""
        mask = np.zeros(self.shape, dtype=bool)
        for name, v in self.values.items():
            if name.endswith("_loss"):
                mask |= np.isinf(v)
        return mask


def _json_attr(f: h5py.File, name: str, what: Path) -> dict:
    """A JSON-object attribute (``config``, ``provenance``); absent reads as {}."""
    try:  # a damaged attribute table fails here: HDF5's KeyError, OSError, ...
        raw = f.attrs.get(name)
    except (KeyError, OSError, RuntimeError, TypeError, ValueError) as e:
        raise _damaged(what, f"attribute {name!r} cannot be read ({type(e).__name__})") from e
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    if not isinstance(raw, str):
        raise _damaged(what, f"attribute {name!r} is {type(raw).__name__}, not JSON text")
    try:
        value = json.loads(raw)
    except RecursionError:  # e.g. [[[[...]]]] 200,000 deep: no settings of ours
        raise _damaged(what, f"attribute {name!r} is JSON nested too deep") from None
    except ValueError:
        raise _damaged(what, f"attribute {name!r} is not valid JSON") from None
    if not isinstance(value, dict):
        raise _damaged(what, f"attribute {name!r} is a JSON {type(value).__name__}, not an object")
    return value


# The most grid points a surface has (`landscape.surface.config.MAX_POINTS`): a file
# declaring more is refused before its arrays are allocated.
MAX_GRID_POINTS = 10_000_000


def _damaged(path: Path, part: str) -> StoreError:
    return StoreError(
        f"surface file {str(path)!r} is damaged: {part}; recompute it or use another copy"
    )


def _coordinates(f: h5py.File, name: str, path: Path) -> np.ndarray:
    """/alpha or /beta: a 1-D dataset of finite, strictly increasing numbers."""
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        raise _damaged(path, f"/{name} is missing or not a dataset")
    if obj.ndim != 1 or obj.size < 1 or obj.dtype.kind not in "fiu":
        raise _damaged(path, f"/{name} must be a 1-D array of numbers, not {obj.dtype} {obj.shape}")
    if obj.size > MAX_GRID_POINTS:  # refused before it is read (allocated)
        raise _damaged(path, f"/{name} declares {obj.size:,} values, too large for a grid")
    values = np.asarray(obj[()], dtype=np.float64)
    if not np.isfinite(values).all():
        raise _damaged(path, f"/{name} holds NaN or inf")
    if np.any(np.diff(values) <= 0):
        raise _damaged(path, f"/{name} is not strictly increasing (a repeated or unsorted value)")
    return values


def open_readonly(path: str | os.PathLike, what: str = "file", *, live: bool = False) -> h5py.File:
    """Open an HDF5 file for reading; a missing or non-HDF5 file is a `StoreError`, and so
    is one whose arrays live elsewhere (`refuse_links`), before anything is read.

    `live`: a file a writer may be filling now (`read_surface_snapshot`): see
    `refuse_links`."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{what} {str(path)!r} does not exist; check the path")
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as e:
        raise StoreError(
            f"{str(path)!r} is not a readable HDF5 file ({e}); it may be truncated or another "
            "file type: recompute it or use another copy"
        ) from e
    try:
        refuse_links(f, path, what, live=live)
    except BaseException:
        f.close()
        raise
    return f


def refuse_links(f: h5py.File, path: Path, what: str = "file", *, live: bool = False) -> None:
    """Refuse a file whose arrays are not its own: soft links (cycles included), external
    links, virtual datasets and external raw storage.

    Every value of a landscape file lives in that file. Followed, a link would make a
    reader show another file's numbers and a resumed compute write into another file.
    Only the links are listed (none is followed) and only link targets of hard links are
    opened (a dataset's header, never its values), so nothing else is read or touched.
    `live`: the datasets under /per_sample are not opened (a writer may be adding their
    chunks now, and a snapshot reader never reads them); their links are still checked.
    """
    found: list[str] = []

    def visit(name: str, link: object) -> bool | None:
        if isinstance(link, h5py.SoftLink):
            found.append(f"/{name} is a soft link to {link.path!r}")
        elif isinstance(link, h5py.ExternalLink):
            found.append(f"/{name} is an external link to {link.path!r} in {link.filename!r}")
        elif isinstance(link, h5py.HardLink):
            if live and name.startswith(f"{PER_SAMPLE}/"):
                return None
            obj = f.get(name)
            if isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    sources = sorted({m.file_name for m in obj.virtual_sources()})
                    found.append(
                        f"/{name} is a virtual dataset over {', '.join(map(repr, sources))}"
                    )
                elif obj.external:
                    found.append(f"/{name} keeps its values in the file {obj.external[0][0]!r}")
        else:  # a user-defined link class: nothing of ours
            found.append(f"/{name} is a link of an unknown kind")
        return True if found else None  # the first one is enough

    try:
        f.visititems_links(visit)
    except (KeyError, OSError, RuntimeError, ValueError) as e:  # a link table HDF5 cannot read
        raise _damaged(path, f"its links cannot be listed ({type(e).__name__}: {e})") from e
    if found:
        raise StoreError(
            f"{what} {str(path)!r} does not hold its own values: {found[0]}; a landscape file "
            "must keep every array inside it - use the original file, or recompute it"
        )


def read_surface(path: str | os.PathLike) -> Surface:
    """Read a surface file (without directions), checking every part the format defines.

    Raises:
        StoreError: the file is missing, not a landscape surface file, or damaged; the
            message names the part that is wrong.
    """
    return _read_surface_file(Path(path), snapshot=False)


def read_surface_snapshot(path: str | os.PathLike) -> Surface:
    """Read a surface file that a `SurfaceWriter` may be writing at this very moment.

    For ``landscape view --live``. It never takes a lock (the writer must not see a reader,
    and a reader must not block it) and never touches /per_sample or /directions (it
    needs neither; the value arrays are contiguous and written in place). The ``*_loss``
    arrays are read first, every other value array after them, then the loss arrays again:
    `SurfaceWriter.write` writes the losses last, so a point whose loss was set in both
    reads has all its values on disk. Every other point (not computed, half-written, or
    changed between the reads) reads as NaN in every array, so no half-written point is
    ever shown.

    Raises:
        StoreError: the file is missing, not a landscape surface file, damaged, or read
            while the writer flushes (a transient failure: try again and keep the last
            good snapshot meanwhile).
    """
    return _read_surface_file(Path(path), snapshot=True)


def _value_names(f: h5py.File, path: Path, shape: tuple[int, ...]) -> list[str]:
    """The value arrays, checked; /per_sample and /directions are never opened here."""
    names = []
    for name in f:
        if name in ("alpha", "beta", "directions", PER_SAMPLE, REFINEMENT):
            continue
        obj = f[name]
        if not isinstance(obj, h5py.Dataset):
            raise _damaged(path, f"/{name} is a group, not an array of values")
        if obj.shape != shape or obj.dtype.kind not in "fiu":
            raise _damaged(
                path,
                f"/{name} is {obj.dtype} {obj.shape}, not numbers of the grid's shape {shape}",
            )
        names.append(name)
    if not any(name.endswith("_loss") for name in names):
        raise _damaged(path, "no /{split}_loss array")
    return names


def _read_values(f: h5py.File, name: str) -> np.ndarray:
    """One value array, as float64, read from the disk: the dataset is closed on return,
    and with it HDF5's cache of its raw data (a second read sees what is on disk now)."""
    return np.asarray(f[name][()], dtype=np.float64)


def _read_surface_file(path: Path, *, snapshot: bool) -> Surface:
    with open_readonly(path, "surface file", live=snapshot) as f:
        return _read_open(f, path, snapshot=snapshot)


def _read_open(f: h5py.File, path: Path, *, snapshot: bool = False) -> Surface:
    """`read_surface` (or `read_surface_snapshot`) on a file already open."""
    try:
        if f.attrs.get("format") != SURFACE_FORMAT:
            raise StoreError(
                f"{str(path)!r} is not a landscape surface file (no format="
                f"{SURFACE_FORMAT!r}); files of the original loss-landscape code are read "
                "by landscape.io.legacy"
            )
        alpha = _coordinates(f, "alpha", path)
        beta = _coordinates(f, "beta", path) if "beta" in f else None
        shape = (len(alpha),) if beta is None else (len(alpha), len(beta))
        if int(np.prod(shape)) > MAX_GRID_POINTS:  # before any array is allocated
            raise _damaged(
                path,
                f"it declares {int(np.prod(shape)):,} grid points, too large (a surface has at "
                f"most {MAX_GRID_POINTS:,})",
            )
        names = _value_names(f, path, shape)
        if not snapshot:
            values = {name: _read_values(f, name) for name in names}
            if "directions" in f:  # every part of the file is checked, directions too
                _checked_directions(f, path)
        else:  # the losses first, the rest, the losses again: see read_surface_snapshot
            losses = [name for name in names if name.endswith("_loss")]
            values = {name: _read_values(f, name) for name in losses}
            values.update((name, _read_values(f, name)) for name in names if name not in losses)
            done = np.ones(shape, dtype=bool)
            for name in losses:
                first, again = values[name], _read_values(f, name)
                done &= (first == again) & ~np.isnan(first)
            for v in values.values():
                v[~done] = np.nan
        interpolated, tolerance = _refinement(f, path, shape)
        if interpolated is not None:
            interpolated &= ~np.isnan(values[names[0]])  # a point still pending is neither
            if not interpolated.any():
                interpolated, tolerance = None, None
        return Surface(
            alpha=alpha,
            beta=beta,
            values={name: values[name] for name in names},
            config=_json_attr(f, "config", path),
            provenance=_json_attr(f, "provenance", path),
            path=path,
            interpolated=interpolated,
            tolerance=tolerance,
        )
    except StoreError:
        raise
    except (KeyError, OSError, TypeError, ValueError) as e:  # HDF5's own read errors
        raise _damaged(path, f"{type(e).__name__}: {e}") from e


def _refinement(
    f: h5py.File, path: Path, shape: tuple[int, ...]
) -> tuple[np.ndarray | None, float | None]:
    """The interpolated mask and the tolerance of a file computed with one (else None)."""
    group = f.get(REFINEMENT)
    if group is None:
        return None, None
    mask, tol = group.get("interpolated"), group.get("tolerance")
    if not isinstance(group, h5py.Group) or not isinstance(mask, h5py.Dataset):
        raise _damaged(path, f"/{REFINEMENT} has no array 'interpolated'")
    if mask.shape != shape or mask.dtype.kind not in "iub":
        raise _damaged(
            path, f"/{REFINEMENT}/interpolated is {mask.dtype} {mask.shape}, not {shape}"
        )
    if not isinstance(tol, h5py.Dataset) or tol.shape != (1,) or tol.dtype.kind != "f":
        raise _damaged(path, f"/{REFINEMENT}/tolerance is not one number")
    value = float(tol[0])
    return np.asarray(mask[()]).astype(bool), (value if np.isfinite(value) else None)


def directions_sha256(directions: Mapping[str, Mapping[str, torch.Tensor | np.ndarray]]) -> str:
    """A hash of direction tensors as stored (float32, by axis and name): edits change it."""
    h = hashlib.sha256()
    for axis in sorted(directions):
        for name in sorted(directions[axis]):
            t = directions[axis][name]
            a = np.ascontiguousarray(
                t.detach().to("cpu", torch.float32).numpy()
                if isinstance(t, torch.Tensor)
                else np.asarray(t, dtype=np.float32)
            )
            h.update(f"{axis}/{name}:{a.shape};".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def read_directions(path: str | os.PathLike) -> dict[str, dict[str, torch.Tensor]]:
    """The directions stored in a surface (or directions) file.

    Checked: the layout, finite numbers, and the ``directions_sha256`` attribute where the
    file has one (so directions edited after the file was made are refused).

    Args:
        path: a surface file or a directions file written by landscape.

    Returns:
        ``{"x": {name: tensor}, "y": {...}}`` on the CPU (``"y"`` for two directions).
    """
    path = Path(path)
    with open_readonly(path, "directions file") as f:
        if f.get("directions") is None:
            raise StoreError(
                f"{str(path)!r} holds no /directions group; pass a surface or directions file "
                "written by landscape"
            )
        return _checked_directions(f, path)


def _checked_directions(f: h5py.File, path: Path) -> dict[str, dict[str, torch.Tensor]]:
    def bad(part: str) -> StoreError:
        return StoreError(
            f"directions in {str(path)!r} are damaged: {part}; recompute the file or use "
            "another copy"
        )

    group = f["directions"]
    if not isinstance(group, h5py.Group):
        raise bad("/directions is not a group")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for axis, sub in group.items():
        if axis not in ("x", "y") or not isinstance(sub, h5py.Group):
            raise bad(f"/directions/{axis} is not an x or y group of tensors")
        out[axis] = {}
        for name, ds in sub.items():
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f":
                raise bad(f"/directions/{axis}/{name} is not an array of floats")
            array = ds[()]
            if not np.isfinite(array).all():
                raise bad(f"/directions/{axis}/{name} holds NaN or inf")
            out[axis][name] = torch.from_numpy(np.asarray(array))
    if "y" in out and "x" not in out:
        raise bad("a y direction without an x direction")
    recorded = f.attrs.get("directions_sha256")
    if isinstance(recorded, bytes):
        recorded = recorded.decode()
    if recorded is not None and recorded != directions_sha256(out):
        raise bad("they differ from the ones the file was made with (directions_sha256)")
    return out


@contextmanager
def _new_hdf5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """A new HDF5 file built in memory, then written to `path` with `atomic_path`
    (`atomic_hdf5`): a full disk is a clean OSError and never half a file."""
    with atomic_hdf5(path, track_order=True) as f:
        yield f


def _allocated(
    f: h5py.File | h5py.Group, name: str, shape: tuple[int, ...], dtype: Any, fill: Any = np.nan
) -> h5py.Dataset:
    """A contiguous dataset of `fill` (NaN), its storage allocated in the file now: writing
    values into it later never grows the file nor changes HDF5 metadata."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    return f.create_dataset(
        name, shape=shape, dtype=dtype, fillvalue=fill, track_times=False, dcpl=dcpl
    )


def _add_refinement_group(f: h5py.File, shape: tuple[int, ...]) -> None:
    _allocated(f, f"{REFINEMENT}/interpolated", shape, np.uint8, 0)
    _allocated(f, f"{REFINEMENT}/tolerance", (1,), np.float64)


def create_surface_file(
    path: str | os.PathLike,
    *,
    alpha: np.ndarray,
    beta: np.ndarray | None,
    value_names: Iterable[str],
    directions: Mapping[str, Mapping[str, torch.Tensor]],
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    extra_attrs: Mapping[str, Any] | None = None,
    values: Mapping[str, np.ndarray] | None = None,
    per_sample: Mapping[str, int] | None = None,
    refinement: bool = False,
) -> None:
    """Write a complete new surface file atomically at `path`.

    Values not given in `values` start as NaN (not computed yet). `per_sample` (split ->
    number of samples) makes room for every sample's loss at every point:
    ``/per_sample/{split}_loss``, float32, shape (*grid, N), contiguous (uncompressed) and
    allocated now, NaN until computed: the file has its final size from the start.
    `refinement`: make room for adaptive refinement's record (``/refinement``).
    """
    with _new_hdf5(path) as f:
        f.attrs["format"] = SURFACE_FORMAT
        f.attrs["format_version"] = SURFACE_VERSION
        f.attrs["config"] = json.dumps(dict(config), sort_keys=True)
        f.attrs["provenance"] = json.dumps(dict(provenance), sort_keys=True)
        for k, v in (extra_attrs or {}).items():
            f.attrs[k] = v
        if directions:
            f.attrs["directions_sha256"] = directions_sha256(directions)
        scales = []
        for name, coords in (("alpha", alpha), ("beta", beta)):
            if coords is None:
                continue
            ds = f.create_dataset(name, data=np.asarray(coords, dtype=np.float64))
            ds.make_scale(name)
            scales.append(ds)
        shape = tuple(len(s) for s in scales)
        for name in value_names:
            # Contiguous and allocated now: later writes touch raw data only.
            ds = f.create_dataset(
                name, shape=shape, dtype=np.float64, fillvalue=np.nan, track_times=False
            )
            ds[...] = np.nan if values is None or name not in values else values[name]
            for dim, scale in enumerate(scales):
                ds.dims[dim].attach_scale(scale)
        for split, n in (per_sample or {}).items():
            _allocated(f, f"{PER_SAMPLE}/{split}_loss", (*shape, n), np.float32)
        if refinement:
            _add_refinement_group(f, shape)
        _write_directions_group(f, directions)


def has_per_sample(path: str | os.PathLike) -> bool:
    """Whether the surface file has room for per-sample losses."""
    with open_readonly(path, "surface file") as f:
        return f.get(PER_SAMPLE) is not None


def read_per_sample(path: str | os.PathLike, split: str = "train") -> np.ndarray | None:
    """Every sample's loss at every point, kept for intervals over samples.

    Args:
        path: a surface file.
        split: ``"train"`` or ``"test"``.

    Returns:
        A (*grid, N) float32 array (NaN where not computed), or None when the file was
        made without them (``landscape compute --per-sample``).
    """
    with open_readonly(path, "surface file") as f:
        ds = f.get(f"{PER_SAMPLE}/{split}_loss")
        if ds is None:
            return None
        where = f"/{PER_SAMPLE}/{split}_loss"
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f":
            raise _damaged(Path(path), f"{where} is not an array of floats")
        # Its shape must be the grid's and the sample count the file's: a disagreeing
        # array gives intervals of other samples (e.g. one excluding its own estimate).
        grid = tuple(
            int(f[k].shape[0]) if isinstance(f.get(k), h5py.Dataset) and f[k].ndim == 1 else -1
            for k in ("alpha", "beta")
            if k in f
        )
        try:
            declared = json.loads(f.attrs.get("provenance", "{}"))["data"][split]["n"]
        except (KeyError, TypeError, ValueError, RecursionError, OSError, RuntimeError):
            declared = None  # not said (or unreadable: the file's reader says why)
        if not isinstance(declared, int) or isinstance(declared, bool):
            declared = None
        if ds.ndim != len(grid) + 1 or tuple(ds.shape[:-1]) != grid or ds.shape[-1] < 1:
            raise _damaged(
                Path(path), f"{where} has shape {ds.shape}, the grid {grid} plus one sample axis"
            )
        if declared is not None and ds.shape[-1] != declared:
            raise _damaged(
                Path(path),
                f"{where} holds {ds.shape[-1]} samples per point, the file's {split} data "
                f"{declared}",
            )
        try:
            return np.asarray(ds[()])
        except (OSError, RuntimeError, ValueError) as e:  # HDF5's own read errors
            raise _damaged(Path(path), f"{where} cannot be read ({type(e).__name__}: {e})") from e


def _write_directions_group(
    f: h5py.File, directions: Mapping[str, Mapping[str, torch.Tensor]]
) -> None:
    """``/directions/<axis>/<name>`` as float32, one dataset per tensor, by name."""
    group = f.create_group("directions")
    for axis, tensors in directions.items():
        sub = group.create_group(axis)
        for name, t in tensors.items():
            sub.create_dataset(
                name, data=t.detach().to("cpu", torch.float32).numpy(), track_times=False
            )


def write_directions_file(
    path: str | os.PathLike,
    directions: Mapping[str, Mapping[str, torch.Tensor]],
    *,
    config: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    groups: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> None:
    """A directions file (``format="landscape-directions"``), atomically.

    ``/directions/x/<name>`` (and ``y``) as in a surface file, so `read_directions`
    and ``landscape compute --directions`` read either; `groups` adds more arrays
    (e.g. ``{"path": {"alpha": ..., "beta": ...}}`` for a trajectory); `attrs` and the
    JSON `config` go on the root.
    """
    with _new_hdf5(path) as f:
        f.attrs["format"] = DIRECTIONS_FORMAT
        f.attrs["format_version"] = 1
        f.attrs["config"] = json.dumps(dict(config or {}), sort_keys=True)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        f.attrs["directions_sha256"] = directions_sha256(directions)
        _write_directions_group(f, directions)
        for gname, arrays in (groups or {}).items():
            g = f.create_group(gname)
            for name, data in arrays.items():
                g.create_dataset(name, data=np.asarray(data))


def has_directions(path: str | os.PathLike) -> bool:
    """Whether the file stores its direction tensors (files for publishing may not)."""
    with open_readonly(path, "surface file") as f:
        return f.get("directions") is not None


def stored_directions_sha256(path: str | os.PathLike) -> str | None:
    """The ``directions_sha256`` attribute: what regenerated directions must hash to."""
    with open_readonly(path, "surface file") as f:
        value = f.attrs.get("directions_sha256")
    return value.decode() if isinstance(value, bytes) else value


def write_without_directions(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A copy of the surface file `src` without its direction tensors, for publishing.

    The directions are most of a file's size and `--seed` regenerates them exactly; the
    copy keeps ``directions_sha256`` (computed now if `src` predates it), so tools that
    need them regenerate them from the stored config and check the hash.

    Never while another process writes `src` (a copy would mix points read before and
    after its writes) or `dst` (its writer would lose every point since): both are
    refused (`StoreError`), and neither can be opened by a writer while the copy is made.
    Whether `dst` may be replaced at all is the caller's to decide (`is_published_copy`).
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise StoreError(f"{str(dst)!r} is the file to publish; write the copy elsewhere")
    with (
        not_being_written(src, "wait for it to finish, then publish the finished file"),
        replacing(dst, "wait for it to finish, or write the copy elsewhere"),
    ):
        read_surface(src)  # every part checked, directions too
        digest = stored_directions_sha256(src)
        if digest is None and has_directions(src):
            digest = directions_sha256(read_directions(src))
        with open_readonly(src, "surface file") as f, _new_hdf5(dst) as out:
            for key, value in f.attrs.items():
                out.attrs[key] = value
            if digest is not None:
                out.attrs["directions_sha256"] = digest
            for name in f:
                if name != "directions":
                    f.copy(f[name], out, name=name)
    return dst


def is_published_copy(path: str | os.PathLike, src: str | os.PathLike) -> bool:
    """Whether the file `path` is a copy of the surface file `src` made by
    `write_without_directions` that holds no computed point `src` lacks: publishing `src`
    again may replace it, and nothing is lost. Any other file, surface files included, is
    not (False, also for a file that cannot be read)."""
    try:
        with open_readonly(path, "file") as f, open_readonly(src, "surface file") as g:
            if "directions" in f or f.attrs.get("format") != SURFACE_FORMAT:
                return False
            for key in ("config", "provenance"):
                if f.attrs.get(key) is None or f.attrs.get(key) != g.attrs.get(key):
                    return False
            digest = g.attrs.get("directions_sha256")
            if digest is not None and f.attrs.get("directions_sha256") != digest:
                return False
            copy, source = _read_open(f, Path(path)), _read_open(g, Path(src))
    except StoreError:
        return False
    if copy.shape != source.shape:
        return False
    return not (copy.computed & ~source.computed).any()


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


_BUSY_FIX = "wait for it to finish (or stop it) before replacing it with --overwrite"
# HDF5 readers (xarray, h5py, a notebook) hold a shared lock: not a writer, say so.
_OPEN_ELSEWHERE = "is open in another program (xarray, h5py or a notebook holds it for reading)"
_CLOSE_IT = "close it there (e.g. ds.close()), then rerun"


@contextmanager
def replacing(path: str | os.PathLike, fix: str = _BUSY_FIX) -> Iterator[None]:
    """Hold the writers' lock on an existing file while the block replaces it.

    ``--overwrite`` goes through here, so it is refused while another process writes
    the file (`SurfaceWriter` holds the same lock), and no writer can open the old file
    between the check and the rename. `fix`: what the refusal tells the user to do.
    """
    with _flocked(path, shared=False, busy=fix):
        yield


@contextmanager
def not_being_written(path: str | os.PathLike, fix: str) -> Iterator[None]:
    """Refuse to read `path` whole while another process writes it; while the block runs,
    no writer can open it (a shared lock: other readers still may).

    A file a compute is filling changes under its reader: a copy of it would mix points
    read before and after a write. `fix`: what the refusal tells the user to do.
    """
    with _flocked(path, shared=True, busy=fix):
        yield


def being_written(path: str | os.PathLike) -> bool:
    """Whether another process holds the writers' lock on `path` now (a compute fills it)."""
    try:
        with _flocked(path, shared=True, busy=""):
            return False
    except StoreError:
        return True
    except OSError:  # unreadable, or not a file: its reader says what is wrong
        return False


@contextmanager
def _flocked(path: str | os.PathLike, *, shared: bool, busy: str) -> Iterator[None]:
    """flock() `path` for the block (nothing when it does not exist); `StoreError` naming
    `busy` when a writer holds it.

    HDF5 locks the file itself with flock(), so this takes the same lock on the same
    file; `filelock` (used for other locks) opens its lock file truncated, which would
    destroy a surface. Where fcntl is missing, HDF5's own lock still applies.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                if not shared and not being_written(path):
                    raise StoreError(f"{str(path)!r} {_OPEN_ELSEWHERE}; {_CLOSE_IT}") from None
                raise StoreError(
                    f"{str(path)!r} is being written by another process; {busy}"
                ) from None
        yield
    finally:
        os.close(fd)


def _open_for_writing(path: Path) -> h5py.File:
    """`path` open for writing under HDF5's (exclusive) file lock, with no cache of raw
    data: every value written goes to the disk at once, so a failed write fails in the
    call that made it and leaves nothing for a later flush or close to retry. (HDF5 may
    crash the interpreter closing a file whose cached writes cannot be flushed.)"""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(True, False)
    fapl.set_sieve_buf_size(0)
    fapl.set_cache(*fapl.get_cache()[:2], 0, fapl.get_cache()[3])  # no raw-data chunk cache
    try:
        return h5py.File(h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR, fapl=fapl))
    except OSError as e:
        raise _open_error(path, e) from e


def _written_arrays(f: h5py.File) -> list[h5py.Dataset]:
    """The arrays a compute writes into: the value arrays and the per-sample losses."""
    arrays = [
        obj
        for name, obj in f.items()
        if isinstance(obj, h5py.Dataset) and name not in ("alpha", "beta")
    ]
    for name in (PER_SAMPLE, REFINEMENT):
        group = f.get(name)
        if isinstance(group, h5py.Group):
            arrays += [obj for obj in group.values() if isinstance(obj, h5py.Dataset)]
    return arrays


def _preallocated(f: h5py.File) -> bool:
    """Whether every array a compute writes is contiguous and allocated (see the module's
    docstring); files made before 0.3 keep per-sample losses in compressed chunks."""
    return all(
        ds.chunks is None and ds.id.get_storage_size() >= ds.size * ds.dtype.itemsize
        for ds in _written_arrays(f)
    )


def _preallocate(path: Path) -> None:
    """Rewrite the surface file `path` with every array a compute writes contiguous and
    allocated (the values kept), atomically and under the writers' lock."""
    with replacing(path, "wait for it to finish, or choose another out"):
        buf = io.BytesIO(path.read_bytes())
        with h5py.File(buf, "r+") as f:
            scales = [f[n] for n in ("alpha", "beta") if n in f]
            for ds in _written_arrays(f):
                if ds.chunks is None and ds.id.get_storage_size() >= ds.size * ds.dtype.itemsize:
                    continue
                name, data = ds.name, ds[()]
                attrs = {k: v for k, v in ds.attrs.items() if k != "DIMENSION_LIST"}
                parent = ds.parent
                del f[name]
                new = _allocated(f, name, data.shape, data.dtype)
                new[...] = data
                for k, v in attrs.items():
                    new.attrs[k] = v
                if parent.name == "/" and data.shape == tuple(len(s) for s in scales):
                    for dim, scale in enumerate(scales):
                        new.dims[dim].attach_scale(scale)
        with atomic_path(path) as tmp:
            tmp.write_bytes(buf.getbuffer())


class SurfaceFile:
    """One surface file, opened once for a whole run: what a compute asks of its output.

    ``SurfaceFile(path)`` opens it for writing and holds HDF5's file lock while open, so a
    second writer is refused (``write=False``: for reading, no lock). Its links are refused
    (`refuse_links`) before anything is read. The handle answers the coordinates, config,
    provenance, directions, per-sample layout and pending points, checks a resume
    (`check_resume`) and writes values (`write`). `SurfaceWriter` is its former name.
    """

    def __init__(self, path: str | os.PathLike, *, write: bool = True) -> None:
        self.path = Path(path)
        self.writable = write
        if not write:
            self._f = open_readonly(self.path, "surface file")
            return
        self._f = _open_for_writing(self.path)
        try:
            refuse_links(self._f, self.path, "surface file")
            if not _preallocated(self._f):  # an older file: its per-sample chunks would grow
                _read_open(self._f, self.path)  # rewritten only once checked (size included)
                self._f.close()
                _preallocate(self.path)
                self._f = _open_for_writing(self.path)
                refuse_links(self._f, self.path, "surface file")
            self._identity = _identity(os.fstat(self._f.id.get_vfd_handle()))
        except BaseException:
            self.close()
            raise

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        alpha: np.ndarray,
        beta: np.ndarray | None,
        splits: Iterable[str],
        directions: Mapping[str, Mapping[str, torch.Tensor]],
        config: Mapping[str, Any],
        provenance: Mapping[str, Any],
        extra_attrs: Mapping[str, Any] | None = None,
        per_sample: Mapping[str, int] | None = None,
        metrics: Iterable[str] = STORED_METRICS,
        refinement: bool = False,
    ) -> SurfaceFile:
        """A new surface file for `splits` (every value not computed yet), written whole
        (`create_surface_file`) under the writers' lock of any file it replaces
        (`replacing`), then opened for writing. `metrics`: the values of each split, each
        with its standard error ``{split}_{metric}_se`` (a task's loss and metrics)."""
        metrics = tuple(metrics)
        with replacing(path):
            create_surface_file(
                path,
                alpha=alpha,
                beta=beta,
                value_names=[
                    value_name(s, m)
                    for s in splits
                    for m in (*metrics, *(f"{m}_se" for m in metrics))
                ],
                directions=directions,
                config=config,
                provenance=provenance,
                extra_attrs=extra_attrs,
                per_sample=per_sample,
                refinement=refinement,
            )
        return cls(path)

    # What the file holds -------------------------------------------------------------

    def read(self, *, snapshot: bool = False) -> Surface:
        """The surface as `read_surface` reads it (every part checked, directions too)."""
        return _read_open(self._f, self.path, snapshot=snapshot)

    @property
    def alpha(self) -> np.ndarray:
        return _coordinates(self._f, "alpha", self.path)

    @property
    def beta(self) -> np.ndarray | None:
        return _coordinates(self._f, "beta", self.path) if "beta" in self._f else None

    @property
    def config(self) -> dict[str, Any]:
        return _json_attr(self._f, "config", self.path)

    @property
    def provenance(self) -> dict[str, Any]:
        return _json_attr(self._f, "provenance", self.path)

    @property
    def has_directions(self) -> bool:
        """Whether the direction tensors are stored (files for publishing may lack them)."""
        return self._f.get("directions") is not None

    @property
    def directions_sha256(self) -> str | None:
        """The ``directions_sha256`` attribute: what regenerated directions must hash to."""
        try:
            value = self._f.attrs.get("directions_sha256")
        except (KeyError, OSError, RuntimeError, TypeError, ValueError) as e:
            raise _damaged(self.path, f"its attributes cannot be read ({type(e).__name__})") from e
        value = value.decode(errors="replace") if isinstance(value, bytes) else value
        if value is not None and not isinstance(value, str):
            raise _damaged(self.path, "attribute 'directions_sha256' is not text")
        return value

    def directions(self) -> dict[str, dict[str, torch.Tensor]]:
        """The stored directions, checked as `read_directions` checks them."""
        if not self.has_directions:
            raise StoreError(
                f"{str(self.path)!r} holds no /directions group; pass a surface or directions "
                "file written by landscape"
            )
        return _checked_directions(self._f, self.path)

    @property
    def per_sample(self) -> bool:
        """Whether the file has room for per-sample losses (``/per_sample``)."""
        return self._f.get(PER_SAMPLE) is not None

    def values(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        """The value arrays `names` (those the file has) as on disk now."""
        return {n: _read_values(self._f, n) for n in names if n in self._f}

    def per_sample_grid(self, split: str) -> np.ndarray | None:
        """``/per_sample/{split}_loss`` as on disk now, (*grid, N); None where not kept."""
        ds = self._f.get(f"{PER_SAMPLE}/{split}_loss")
        return None if ds is None else np.asarray(ds[()])

    # Adaptive refinement -------------------------------------------------------------

    @property
    def has_refinement(self) -> bool:
        """Whether the file has room for adaptive refinement's record (``/refinement``)."""
        return self._f.get(REFINEMENT) is not None

    def interpolated(self) -> np.ndarray:
        """Mask of the points stored as predictions (all False in a file without a record)."""
        shape = tuple(len(a) for a in (self.alpha, self.beta) if a is not None)
        if not self.has_refinement:
            return np.zeros(shape, dtype=bool)
        mask, _ = _refinement(self._f, self.path, shape)
        assert mask is not None
        return mask

    def add_refinement(self) -> None:
        """Make room for adaptive refinement's record in a file made without it: the file
        is rewritten with it, atomically, under the writers' lock (values kept)."""
        if self.has_refinement:
            return
        shape = tuple(len(a) for a in (self.alpha, self.beta) if a is not None)
        self._f.close()
        with replacing(self.path, "wait for it to finish, or choose another out"):
            buf = io.BytesIO(self.path.read_bytes())
            with h5py.File(buf, "r+") as f:
                _add_refinement_group(f, shape)
            with atomic_path(self.path) as tmp:
                tmp.write_bytes(buf.getbuffer())
        self._f = _open_for_writing(self.path)
        refuse_links(self._f, self.path, "surface file")
        self._identity = _identity(os.fstat(self._f.id.get_vfd_handle()))

    def set_tolerance(self, tolerance: float | None) -> None:
        """Record the tolerance of this run (None: every point evaluated)."""
        if self.has_refinement:
            self._guarded(
                lambda: self._f[f"{REFINEMENT}/tolerance"].__setitem__(
                    0, np.nan if tolerance is None else float(tolerance)
                )
            )

    def mark(self, index: tuple[np.ndarray, ...], interpolated: bool) -> None:
        """Set the interpolated flag of the grid points `index`."""
        ds = self._f[f"{REFINEMENT}/interpolated"]
        points = list(zip(*(np.asarray(i).tolist() for i in index), strict=True))

        def set_flags() -> None:
            for point in points:
                ds[point] = int(interpolated)

        self._guarded(set_flags)

    # Resuming ------------------------------------------------------------------------

    def check_resume(
        self, settings: Callable[[Surface], list[str]], provenance: Mapping[str, Any]
    ) -> Surface:
        """Refuse to resume a file made otherwise; the file as read, when it may be resumed.

        `settings(surface)` lists the caller's differences (settings, grid); the handle
        adds the inputs' content recorded in the provenance: checkpoints, directions
        file, the data's fingerprint per split and the hash of the model's state (the
        parameters and buffers actually evaluated). Every difference is named.

        Raises:
            OutError: the file is damaged or differs; the message lists every difference.
        """
        try:
            existing = self.read()
        except StoreError as e:  # never overwritten unasked: it may be someone's result
            raise OutError(str(e)) from e
        diffs = list(settings(existing))
        stored, now = existing.provenance, provenance
        for key in ("ckpt_sha256", "ckpt2_sha256", "ckpt3_sha256", "directions_sha256"):
            if stored.get(key) != now.get(key):
                what = key.split("_")[0]
                diffs.append(f"{what} content differs from the one the file was made with")
        # Files written before these were recorded (data_sha256 before 0.2; state_sha256 and
        # bn_data_sha256 by 0.2.0 and earlier) have none: they still resume, checked by what
        # they do record. The format version stays 2: an extra provenance key changes no
        # reader, and every reader keeps taking versions 1 and 2 (SPEC).
        data, data_now = stored.get("data_sha256"), now.get("data_sha256")
        if isinstance(data, dict) and isinstance(data_now, dict):
            diffs += [
                f"the {s} samples' content differs from those the file was computed on "
                "(same dataset name and settings, other images or labels)"
                for s in sorted(data_now)
                if s in data and data[s] != data_now[s]
            ]
        for key, what in (
            ("state_sha256", "the model's parameters and buffers differ from those"),
            ("bn_data_sha256", "the BatchNorm samples (bn_data) differ from those"),
        ):
            if stored.get(key) is not None and now.get(key) is not None:
                if stored[key] != now[key]:
                    diffs.append(f"{what} the file was computed with ({key})")
        if diffs:
            raise OutError(
                f"{str(self.path)!r} was computed with other settings or inputs "
                f"({len(diffs)} difference{'s' if len(diffs) > 1 else ''}: {'; '.join(diffs)})"
            )
        return existing

    # Writing -------------------------------------------------------------------------

    def _check_still_there(self) -> None:
        """Stop when the file at `path` is no longer the one being written (replaced or
        deleted by someone else): values written into it would be lost unseen."""
        try:
            now = _identity(os.stat(self.path))
        except FileNotFoundError:
            now = None
        if now != self._identity:
            raise StoreError(
                f"{str(self.path)!r} was replaced or deleted by another process while this one "
                "wrote into it; the points computed here since are lost - check what replaced "
                "it, then rerun the same command to resume"
            )

    def pending(self, names: Iterable[str]) -> np.ndarray:
        """Mask of points where any of the value arrays `names` is still NaN.

        Only loss and accuracy arrays say whether a point is done (a standard error is NaN
        for one sample), and arrays a file does not have (a version-1 file has no standard
        errors) are skipped.
        """
        mask = None
        names = [n for n in names if n in self._f and n.rsplit("_", 1)[-1] in STORED_METRICS]
        for name in names:
            m = np.isnan(self._f[name][()])
            mask = m if mask is None else mask | m
        assert mask is not None, "no value arrays named"
        return mask

    def write(
        self,
        index: tuple[np.ndarray, ...],
        values: Mapping[str, np.ndarray],
        *,
        interpolated: bool = False,
    ) -> None:
        """Set ``values[name][k]`` at grid point ``(index[0][k], index[1][k])``.

        `interpolated`: the values are predictions (adaptive refinement): the points are
        flagged so before their values are written; evaluated values are written before a
        flag is cleared. A kill in between leaves a flagged point, which a rerun evaluates.

        Each value goes to the disk at once, into room allocated when the file was made
        (see the module's docstring), and only the given points' bytes are written. The
        loss arrays are written last, so a point counts as done only when all of its values
        are on disk. NaN means "not computed yet" in a surface file, so a loss or accuracy
        that came out NaN (a diverged point) is stored as +inf: it counts as computed, is
        never recomputed, and figures mask it.

        Raises:
            OSError: the disk is full or a file-size limit is reached (ENOSPC, EFBIG,
                EDQUOT); the points written before stay, and a rerun resumes after them.
            StoreError: the file cannot be written otherwise, or was replaced meanwhile.
        """
        # Arrays the file lacks are skipped: a version-1 file resumed has no standard errors,
        # a file made without per-sample losses has no room for them.
        names = [n for n in values if n in self._f]
        rows = [n for n in names if n.startswith(f"{PER_SAMPLE}/")]
        order = sorted((n for n in names if n not in rows), key=lambda n: n.endswith("_loss"))
        points = list(zip(*(np.asarray(i).tolist() for i in index), strict=True))
        if interpolated:
            self.mark(index, True)
        try:
            for name in rows:  # (*grid, N): one row per point
                ds, data = self._f[name], np.asarray(values[name], dtype=np.float32)
                for k, point in enumerate(points):
                    ds[point] = data[k]
            for name in order:
                ds = self._f[name]
                v = np.asarray(values[name], dtype=np.float64).reshape(len(points))
                if name.rsplit("_", 1)[-1] in STORED_METRICS:
                    v = np.where(np.isnan(v), np.inf, v)
                for k, point in enumerate(points):
                    ds[point] = v[k]
            self._f.flush()  # nothing is cached (`_open_for_writing`): a safeguard
        except (OSError, RuntimeError) as e:
            error = self._write_error(e)
            if error is e:
                raise
            raise error from e
        self._check_still_there()
        if not interpolated and self.has_refinement:
            flagged = self._f[f"{REFINEMENT}/interpolated"][()].astype(bool)
            was = [k for k, p in enumerate(points) if flagged[p]]
            if was:
                self.mark(tuple(np.asarray(i)[was] for i in index), False)

    def _guarded(self, write: Callable[[], None]) -> None:
        """Run a small write with `write`'s disk errors made one line."""
        try:
            write()
            self._f.flush()
        except (OSError, RuntimeError) as e:
            error = self._write_error(e)
            if error is e:
                raise
            raise error from e
        self._check_still_there()

    def _write_error(self, e: OSError | RuntimeError) -> BaseException:
        """What a failed write raises: a full disk, else a StoreError (an OSError), else
        the error itself (not the disk: a bug, with its traceback)."""
        full = hdf5_disk_error(e, self.path)
        if full is not None:  # the points written before stay: one line, then resume
            return full
        if not isinstance(e, OSError):
            return e  # not the disk: a bug, with its traceback
        return StoreError(
            f"cannot write to {str(self.path)!r} ({e}); check the disk, then rerun "
            "the same command to resume"
        )

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()

    def __enter__(self) -> SurfaceFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SurfaceWriter = SurfaceFile  # the former name: a handle opened for writing


def _open_error(path: Path, e: OSError) -> StoreError:
    """Why a surface file cannot be opened for writing, in one line."""
    if "lock" in str(e).lower():
        if not being_written(path):  # only readers hold it: a notebook, xarray, h5py
            return OutError(
                f"{str(path)!r} {_OPEN_ELSEWHERE}",
                fix=f"{_CLOSE_IT}, or choose another out=",
                flag_fix=f"{_CLOSE_IT}, or choose another --out",
            )
        return OutError(
            f"{str(path)!r} is being written by another process",
            fix="wait for it to finish, or choose another out=",
            flag_fix="wait for it to finish or choose another --out",
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) or "errno = 13" in str(e):
        return OutError(
            f"cannot write {str(path)!r}: permission denied (a read-only file or folder)",
            fix="make it writable (chmod u+w), or copy it and pass the copy as out=",
            flag_fix="make it writable (chmod u+w) or copy it and use the copy as --out",
        )
    if isinstance(e, FileNotFoundError) or e.errno == errno.ENOENT:
        return StoreError(f"surface file {str(path)!r} does not exist; check the path")
    return OutError(
        f"{str(path)!r} is not a readable HDF5 file ({e}); it may be truncated or another file type"
    )
