"""The grid points still to compute, handed out coarse-to-fine to one process or many."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import numpy as np

from landscape.surface.grid import coarse_to_fine, grid_origin

__all__ = ["PendingPoints", "WriteFn"]


class PendingPoints:
    """The grid points still to compute, coarse-to-fine (`coarse_to_fine`: θ* first),
    handed out in chunks (thread-safe).

    Args:
        pending: mask of the points to compute, the grid's shape.
        alpha, beta: the grid's coordinates (beta None for a 1-D surface).
    """

    def __init__(self, pending: np.ndarray, alpha: np.ndarray, beta: np.ndarray | None) -> None:
        self.shape = pending.shape
        self.alpha, self.beta = alpha, beta
        # θ* and the corners first, then ever finer sub-grids of the whole range: every
        # process (one, many ranks, a resumed run) takes this one order.
        order = coarse_to_fine(pending.shape, grid_origin(alpha, beta))
        self._order = order[pending.ravel()[order]].astype(np.int64)
        self._next = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Points not handed out yet."""
        return len(self._order) - self._next

    def take(self, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to `k` next points: flat indices (K,) and coordinates (K, 2); None at the end."""
        with self._lock:
            flat = self._order[self._next : self._next + k]
            self._next += len(flat)
        return (flat, self.coords(flat)) if len(flat) else None

    def coords(self, flat: np.ndarray) -> np.ndarray:
        """(alpha, beta) of flat grid indices: (K, 2), beta 0 on a 1-D surface."""
        index = np.unravel_index(flat, self.shape)
        beta = self.beta[index[1]] if self.beta is not None else np.zeros(len(flat))
        return np.stack([self.alpha[index[0]], beta], axis=1)  # (K, 2)

    def close(self) -> None:
        """Hand out nothing more (a run that stops early)."""
        with self._lock:
            self._next = len(self._order)


# Writes computed values: flat grid indices (K,) and name -> (K,) values.
WriteFn = Callable[[np.ndarray, Mapping[str, np.ndarray]], None]
