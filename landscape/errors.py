"""The one error type for bad input, so that a bug is never reported as the user's mistake.

Raised where input is checked (arguments, files, data, settings); its message names the
problem and the fix. The command line prints it on one line and exits 2; any other
exception is a bug and keeps its traceback (exit 1).
"""

from __future__ import annotations

import re

__all__ = ["InputError"]


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
        """The message with the names of the arguments at fault written as flags."""
        text = str(self)
        names = (self.arg,) if isinstance(self.arg, str) else tuple(self.arg or ())
        for name in names:
            flag = "--" + name.replace("_", "-")
            text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, text)
        return text
