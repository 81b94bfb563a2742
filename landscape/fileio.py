"""Files written safely, and the provenance recorded with every result.

Every result file of the package is written through `atomic_path`: into a
temporary file beside the target, flushed to disk, then renamed over it, so a
crash never leaves half a file and never destroys the previous one.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import os
import platform
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from . import __version__
from .errors import InputError

__all__ = [
    "OutputError",
    "atomic_path",
    "atomic_savefig",
    "atomic_write_text",
    "check_output",
    "file_kind",
    "exclusive_lock",
    "make_parent",
    "sha256",
    "provenance",
]

# Written into every figure, page and table the package makes, so that a rerun may
# replace its own earlier output while a file of anyone else is never overwritten unasked.
GENERATOR = "landscape"
_SNIFF_BYTES = 1 << 16


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path`; it replaces `path` only when the block succeeds."""
    path = Path(path)
    make_parent(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename in (None, tmp):  # name the file the user asked for, not the temporary
            raise type(e)(e.errno, e.strerror or str(e), str(path)) from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_parent(path: Path) -> None:
    """Create the folder `path` goes in; a file in the way is named as the problem."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise NotADirectoryError(
            errno.ENOTDIR, "a part of the path is a file, not a folder", str(path)
        ) from e


@contextmanager
def exclusive_lock(path: str | os.PathLike, busy: str) -> Iterator[None]:
    """Hold an advisory lock on the file `path` (created if missing) for the block.

    A second process asking for it gets ``ValueError(busy)``; the operating system
    drops the lock when its holder dies, so a killed run never blocks the next one.
    """
    path = Path(path)
    make_parent(path)
    with open(path, "a") as fh:
        if fcntl is not None:  # POSIX; elsewhere runs are not guarded against each other
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(busy) from None
        yield


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding, newline="")


def atomic_savefig(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """``fig.savefig`` through `atomic_path`; the format comes from `path`'s suffix."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or None
    key = {"png": "Software", "pdf": "Creator", "svg": "Creator"}.get(fmt or "")
    if key and "metadata" not in kwargs:  # lets `file_kind` tell our figures from others
        kwargs["metadata"] = {key: f"{GENERATOR} {__version__}"}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def provenance(
    device: torch.device, files: Mapping[str, str | os.PathLike] | None = None
) -> dict[str, Any]:
    """Package, torch and CUDA versions, device, time, and the sha256 of each named file."""
    prov: dict[str, Any] = {
        "package": f"landscape {__version__}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    for key, path in (files or {}).items():
        prov[f"{key}_sha256"] = sha256(path)
    return prov


class OutputError(InputError):
    """An output path that would destroy something: an input, a folder, another's file."""


def file_kind(path: str | os.PathLike) -> str | None:
    """Which kind of landscape output `path` holds, or None for anything else.

    Kinds: the ``format`` of a landscape HDF5 or JSON file (``landscape-surface``,
    ``landscape-directions``, ``landscape-hessian``, ...), ``figure`` (PNG/PDF/SVG made
    by the package), ``html`` (the viewer), ``csv`` and ``vtk`` (``landscape export``).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return None
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        import h5py  # only here: fileio is imported by light modules

        try:
            with h5py.File(path, "r", locking=False) as f:
                fmt = f.attrs.get("format")
        except (OSError, ValueError):
            return None
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        return fmt if isinstance(fmt, str) and fmt.startswith(f"{GENERATOR}-") else None
    if head.lstrip().startswith(b"{"):
        import json

        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        fmt = doc.get("format") if isinstance(doc, dict) else None
        return fmt if isinstance(fmt, str) and fmt.startswith(f"{GENERATOR}-") else None
    marker = GENERATOR.encode()
    if head.startswith((b"\x89PNG", b"%PDF", b"<?xml", b"<svg")) and b"<VTKFile" not in head:
        whole = head if len(head) < _SNIFF_BYTES else path.read_bytes()
        return "figure" if marker + b" " in whole else None
    if head.startswith(b"<!DOCTYPE html>"):
        return "html" if f'name="generator" content="{GENERATOR}'.encode() in head else None
    if head.startswith(b"<?xml") and b"<VTKFile" in head:
        return "vtk" if f"<!-- {GENERATOR} ".encode() in head else None
    if head.startswith(b"alpha,"):
        return "csv"
    return None


def check_output(
    path: str | os.PathLike,
    kind: str,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
    flag: str = "--out",
    same_job: Callable[[Path], bool] | None = None,
) -> Path:
    """Refuse an output path that would destroy something; return it as a Path.

    The same rule for every command: an output is never one of the command's
    `inputs`; an existing file is replaced only when it is the same `kind` of landscape
    output (a rerun redoing its own work; `same_job` narrows that down where the kind
    alone cannot tell) or the user passed ``--overwrite``.
    """
    path = Path(path)
    for item in inputs:
        if item is not None and _same_file(path, Path(item)):
            raise OutputError(
                f"{flag} {str(path)!r} is also an input of this command; choose another {flag}"
            )
    if path.is_dir():
        raise OutputError(f"{flag} {str(path)!r} is a folder; name a file, e.g. {path / 'out'}")
    if path.exists() and not path.is_file():
        raise OutputError(
            f"{flag} {str(path)!r} is not a regular file (a pipe or device?); choose a file path"
        )
    if path.exists() and not overwrite:
        found = file_kind(path)
        if found != kind or (same_job is not None and not same_job(path)):
            what = (
                "a file this command did not write"
                if found is None
                else f"a {found} file" + (" of another job" if found == kind else "")
            )
            raise OutputError(
                f"{flag} {str(path)!r} exists and is {what}; choose another {flag}, "
                "or pass --overwrite to replace it"
            )
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False
