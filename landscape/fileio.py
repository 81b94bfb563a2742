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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from . import __version__

__all__ = [
    "atomic_path",
    "atomic_savefig",
    "atomic_write_text",
    "exclusive_lock",
    "make_parent",
    "sha256",
    "provenance",
]


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
                raise ValueError(busy) from None
        yield


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding, newline="")


def atomic_savefig(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """``fig.savefig`` through `atomic_path`; the format comes from `path`'s suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or None, **kwargs)


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
