"""Files written safely, and the provenance recorded with every result.

Every result file of the package is written through `atomic_path`: into a
temporary file beside the target, flushed to disk, then renamed over it, so a
crash never leaves half a file and never destroys the previous one.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import io
import json
import math
import os
import platform
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import torch

from landscape import __version__
from landscape.core.errors import InputError
from landscape.models.atomic import atomic_path, make_parent

__all__ = [
    "OutputError",
    "atomic_hdf5",
    "atomic_path",
    "atomic_savefig",
    "atomic_write_text",
    "check_output",
    "file_kind",
    "exclusive_lock",
    "hdf5_disk_error",
    "make_parent",
    "sha256",
    "provenance",
]

# Written into every figure, page and table the package makes, so that a rerun may
# replace its own earlier output while a file of anyone else is never overwritten unasked.
GENERATOR = "landscape"
_SNIFF_BYTES = 1 << 16


@contextmanager
def exclusive_lock(path: str | os.PathLike, busy: str, *, arg: str | None = None) -> Iterator[None]:
    """Hold an advisory lock on the file `path` (created if missing) for the block.

    A second holder, in this process or another, gets ``InputError(busy)``; the operating
    system drops the lock when its holder dies, so a killed run never blocks the next one.
    `filelock` makes it work on Windows too.
    """
    path = Path(path)
    make_parent(path)
    lock = filelock.FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise InputError(busy, arg=arg) from None
    try:
        yield
    finally:
        lock.release()


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


@contextmanager
def atomic_hdf5(path: str | os.PathLike, **kwargs: Any) -> Iterator[Any]:
    """A new HDF5 file built in memory, then written whole to `path` with `atomic_path`.

    HDF5 never writes to the disk here: Python's file I/O does, so a full disk or a
    file-size limit is a clean `OSError` (and no temporary file is left). HDF5 itself, when
    its writes to a file on disk fail, raises `RuntimeError` and may crash the interpreter
    (a segmentation fault) closing that file. `kwargs` go to `h5py.File`.
    """
    import h5py  # only here: this module is imported by light modules

    buf = io.BytesIO()
    with h5py.File(buf, "w", **kwargs) as f:
        yield f
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def hdf5_disk_error(e: BaseException, path: str | os.PathLike) -> OSError | None:
    """HDF5's error for a full disk, a file-size limit or a quota, as an `OSError` naming
    `path` with its errno (ENOSPC, EFBIG or EDQUOT); None for any other error.

    h5py raises these as `OSError` or `RuntimeError` ("Unable to synchronously flush file
    (... errno = 27 ...)"), with the errno only in the text.
    """
    full = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", 122))
    code = e.errno if isinstance(e, OSError) else None
    if code not in full:
        found = [int(n) for n in _HDF5_ERRNO.findall(str(e))]
        code = next((n for n in found if n in full), None)
    if code is None or not isinstance(e, OSError | RuntimeError):
        return None
    return OSError(code, os.strerror(code), str(path))


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


# The exact marks of our outputs (issue #35): a generator string is "landscape" and a
# version, nothing more; a file that merely mentions the word is someone else's.
_VERSION = rb"[0-9][0-9A-Za-z.+!-]*"
_OUR_GENERATOR = re.compile(GENERATOR.encode() + rb" " + _VERSION)
_PDF_MARK = re.compile(rb"/Creator \(" + _OUR_GENERATOR.pattern + rb"\)")
_SVG_MARK = re.compile(
    rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>"
    + _OUR_GENERATOR.pattern
    + rb"</dc:title>\s*</cc:Agent>\s*</dc:creator>"
)
_HTML_MARK = re.compile(
    rb'<meta name="generator" content="' + GENERATOR.encode() + rb"(?: " + _VERSION + rb')?">'
)
_CSV_NAME = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9_]+")
_CSV_NUMBER = re.compile(r"-?(?:inf|nan|[0-9]+\.[0-9]+(?:e[+-][0-9]+)?|[0-9]+e[+-][0-9]+)")


def _png_software(head: bytes) -> bool:
    """Whether the PNG's text chunks (before its image data) hold ``Software`` equal to
    our generator string, as `atomic_savefig` writes it."""
    import struct

    at = 8
    while at + 8 <= len(head):
        (size,) = struct.unpack(">I", head[at : at + 4])
        kind, data = head[at + 4 : at + 8], head[at + 8 : at + 8 + size]
        if kind in (b"IDAT", b"IEND") or len(data) < size:
            return False
        if kind == b"tEXt" and data.startswith(b"Software\0"):
            return bool(_OUR_GENERATOR.fullmatch(data[len(b"Software\0") :]))
        if kind == b"iTXt" and data.startswith(b"Software\0\0"):  # uncompressed
            parts = data[len(b"Software\0\0") :].split(b"\0", 3)
            return len(parts) == 4 and bool(_OUR_GENERATOR.fullmatch(parts[3]))
        at += 12 + size
    return False


def _our_csv(head: bytes) -> bool:
    """`landscape export --csv`'s exact form: the header ``alpha[,beta],<value names>``
    (sorted ``split_metric`` names), CRLF lines, and rows of as many Python float reprs."""
    lines = head.split(b"\r\n")
    if len(lines) < 3 or b"\n" in b"".join(lines[:-1]):  # a header, a row, the rest
        return False
    try:
        header = lines[0].decode("ascii").split(",")
        rows = [line.decode("ascii").split(",") for line in lines[1:-1] if line]
    except UnicodeDecodeError:
        return False
    lead = 2 if header[:2] == ["alpha", "beta"] else 1
    names = header[lead:]
    return (
        header[0] == "alpha"
        and bool(names)
        and names == sorted(set(names))
        and all(_CSV_NAME.fullmatch(n) for n in names)
        and bool(rows)
        and all(len(r) == len(header) and all(_CSV_NUMBER.fullmatch(v) for v in r) for r in rows)
    )


def file_kind(path: str | os.PathLike) -> str | None:
    """Which kind of landscape output `path` holds, or None for anything else.

    Kinds: the ``format`` of a landscape HDF5 or JSON file (``landscape-surface``,
    ``landscape-directions``, ``landscape-hessian``, ...), ``figure`` (PNG/PDF/SVG made
    by the package), ``html`` (the viewer), ``csv`` and ``vtk`` (``landscape export``).
    Figures, pages and tables are told by their exact marks (a PNG's ``Software`` text
    chunk, a PDF's ``/Creator``, an SVG's creator, the page's generator tag, the table's
    exact form), never by the word "landscape" somewhere in them.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            size = os.fstat(fh.fileno()).st_size
            if size > _SNIFF_BYTES:
                fh.seek(max(size - _SNIFF_BYTES, _SNIFF_BYTES))
                tail = fh.read(_SNIFF_BYTES)
            else:
                tail = b""
    except OSError:
        return None
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        import h5py  # only here: fileio is imported by light modules

        try:
            with h5py.File(path, "r", locking=False) as f:
                fmt = f.attrs.get("format")
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        return fmt if isinstance(fmt, str) and fmt.startswith(f"{GENERATOR}-") else None
    if head.lstrip().startswith(b"{"):
        import json

        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        fmt = doc.get("format") if isinstance(doc, dict) else None
        return fmt if isinstance(fmt, str) and fmt.startswith(f"{GENERATOR}-") else None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "figure" if _png_software(head) else None
    if head.startswith(b"%PDF"):  # matplotlib writes the document info near the end
        return "figure" if _PDF_MARK.search(head) or _PDF_MARK.search(tail) else None
    if head.startswith((b"<?xml", b"<svg")) and b"<VTKFile" not in head:
        return "figure" if _SVG_MARK.search(head) else None
    if head.startswith(b"<!DOCTYPE html>"):
        return "html" if _HTML_MARK.search(head) else None
    if head.startswith(b"<?xml") and b"<VTKFile" in head:
        return "vtk" if f"\n<!-- {GENERATOR} export -->\n<VTKFile ".encode() in head else None
    if head.startswith(b"alpha,"):
        return "csv" if _our_csv(head) else None
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


def json_safe(value: Any) -> Any:
    """NaN and infinities as None, numpy scalars and arrays as Python values (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, doc: Mapping[str, Any]) -> None:
    """Write `doc` as strict JSON (NaN as null), atomically."""
    atomic_write_text(path, json.dumps(json_safe(doc), indent=1, allow_nan=False))
