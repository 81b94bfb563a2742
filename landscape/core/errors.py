"""The one error type for bad input, so that a bug is never reported as the user's mistake.

Raised where input is checked (arguments, files, data, settings); its message names the
problem and the fix. The command line prints it on one line and exits 2; any other
exception is a bug and keeps its traceback (exit 1).
"""

from __future__ import annotations

import errno
import re

__all__ = ["InputError", "os_error_message"]

_DISK_FULL = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", 122))
_DISK_FULL_TEXT = re.compile(r"errno = (28|27|122)\b|No space left|File too large|quota", re.I)


class InputError(ValueError):
    """Bad input: an argument, file, dataset or setting the caller must change.

    Args:
        message: what is wrong and how to fix it, e.g. ``"norm must be one of filter,
            layer; got 'l2'"``, naming arguments as the library does.
        arg: the argument(s) at fault (``"norm"``, ``("ckpt3", "ckpt2")``), or None; the
            command line writes each of their names in the message as its flag
            (``--norm must be ...``).
    """

    def __init__(self, message: str, *, arg: str | tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.arg = arg

    def as_flag(self) -> str:
        """The message with the arguments at fault written as flags: ``out`` and ``out=``
        as ``--out``, ``overwrite=True`` as ``--overwrite``, ``device='cpu'`` as
        ``--device cpu``; from Python the message names arguments, as they are called."""
        text = str(self)
        names = (self.arg,) if isinstance(self.arg, str) else tuple(self.arg or ())
        for name in names:
            flag = "--" + name.replace("_", "-")
            start = rf"(?<![\w-]){re.escape(name)}"
            text = re.sub(rf"{start}=True\b", flag, text)
            text = re.sub(rf"{start}='([^']*)'", rf"{flag} \1", text)
            text = re.sub(rf"{start}=(?=[\s,;.)]|$)", flag, text)
            text = re.sub(rf"{start}=", f"{flag} ", text)
            text = re.sub(rf"{start}(?![\w-])", flag, text)
        return text


def os_error_message(e: OSError) -> str:
    """One line for an OS error: the path, the reason, and what to do about it."""
    reason = e.strerror or str(e) or type(e).__name__
    where = f" {str(e.filename)!r}" if e.filename is not None else ""
    if e.errno in _DISK_FULL or _DISK_FULL_TEXT.search(str(e)):
        return (
            f"cannot write{where}: {reason} (disk full or file-size limit); free some space, "
            "then rerun the same command - finished work is kept"
        )
    if isinstance(e, FileNotFoundError):
        return f"{where.strip() or 'a file'} does not exist ({reason}); check the path"
    if isinstance(e, PermissionError) or e.errno == errno.EROFS:
        return f"cannot write{where}: {reason}; choose a place you may write to"
    return f"cannot write{where}: {reason}; check the path"
