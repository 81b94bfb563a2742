"""Writing a file whole or not at all: the one atomic writer of the project.

Checkpoints are written through it here, and every output of `landscape` (which
imports it from `landscape.core.files`): into a temporary file beside the target,
flushed to disk, then renamed over it, so a crash never leaves half a file and never
destroys the previous one.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "make_parent"]


def make_parent(path: Path) -> None:
    """Create the folder `path` goes in; a file in the way is named as the problem."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise NotADirectoryError(
            errno.ENOTDIR, "a part of the path is a file, not a folder", str(path)
        ) from e


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
