"""Progress bars: a tqdm bar only when one is shown.

``tqdm.auto`` picks the notebook bar inside Jupyter and, where ipywidgets is missing,
warns ``TqdmWarning: IProgress not found`` as it is imported, even for a bar that is
never shown. `progress_bar` creates no tqdm bar at all when progress is off (`NoBar`
counts silently), and when one is shown uses the notebook bar only where ipywidgets
can draw it, else the plain text bar, without the warning.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

__all__ = ["NoBar", "progress_bar"]


class NoBar:
    """What a progress bar offers the code that advances it, showing nothing."""

    def __init__(self, total: float | None = None, initial: float = 0, **_: Any) -> None:
        self.total, self.n = total, initial

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(show: bool, **kwargs: Any) -> Any:
    """A tqdm bar when `show`, else a `NoBar`.

    Args:
        show: whether to show a bar (the callers' ``progress=``).
        **kwargs: tqdm's arguments (total, desc, unit, ...).

    Returns:
        The bar, a context manager with ``update``, ``set_postfix`` and ``n``.
    """
    if not show:
        return NoBar(**kwargs)
    kwargs.pop("disable", None)
    return _tqdm_class()(**kwargs)


def _tqdm_class() -> type:
    """tqdm.auto's choice where it can make it quietly: the plain bar unless this is a
    Jupyter kernel with ipywidgets to draw the notebook bar."""
    in_kernel = "ipykernel" in sys.modules
    if in_kernel and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm
