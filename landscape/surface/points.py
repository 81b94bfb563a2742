"""The grid points still to compute, handed out coarse-to-fine to one process or many:
all of them (`PendingPoints`), or level by level those adaptive refinement asks for
(`AdaptivePoints`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import numpy as np

from landscape.surface.grid import coarse_to_fine, grid_origin
from landscape.surface.refine import Walk

__all__ = ["WAIT", "AdaptivePoints", "PendingPoints", "WriteFn"]

# What `take(block=False)` returns while the next points depend on values still being
# computed elsewhere (adaptive refinement between two levels): ask again shortly.
WAIT = (np.zeros(0, dtype=np.int64), np.zeros((0, 2)))


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

    def take(self, k: int, *, block: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to `k` next points: flat indices (K,) and coordinates (K, 2); None at the end.
        (`block` is for `AdaptivePoints`: every pending point is known here.)"""
        with self._lock:
            flat = self._order[self._next : self._next + k]
            self._next += len(flat)
        return (flat, self.coords(flat)) if len(flat) else None

    def coords(self, flat: np.ndarray) -> np.ndarray:
        """(alpha, beta) of flat grid indices: (K, 2), beta 0 on a 1-D surface."""
        index = np.unravel_index(flat, self.shape)
        beta = self.beta[index[1]] if self.beta is not None else np.zeros(len(flat))
        return np.stack([self.alpha[index[0]], beta], axis=1)  # (K, 2)

    def exhausted(self) -> bool:
        """Whether no point is left to hand out, now or later."""
        return len(self) == 0

    def record(self, flat: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Values of points handed out are written (nothing depends on them here)."""

    def close(self) -> None:
        """Hand out nothing more (a run that stops early)."""
        with self._lock:
            self._next = len(self._order)


class AdaptivePoints(PendingPoints):
    """Adaptive refinement's points (`landscape.surface.refine.Walk`), level by level.

    The points of a level are handed out as `PendingPoints` hands out all of them; the
    next level is planned once every point handed out is `record`-ed. Meanwhile `take`
    waits (rank 0's own loop) or returns `WAIT` (``block=False``: the coordinators of other
    ranks, which must keep answering their workers). The points the walk skips go to
    `skip(level, flat)`, which stores their predictions.

    Args:
        walk: the refinement's state (what is evaluated already, the rule).
        alpha, beta: the grid's coordinates.
        skip: stores the predictions at skipped points.
        lock: the lock the caller holds while it writes (`record` and `skip` run under it).
    """

    def __init__(
        self,
        walk: Walk,
        alpha: np.ndarray,
        beta: np.ndarray | None,
        skip: Callable[[int, np.ndarray], None],
        lock: threading.RLock,
    ) -> None:
        self.shape = walk.r.shape
        self.alpha, self.beta = alpha, beta
        self.walk, self._skip = walk, skip
        self._rank = np.empty(int(np.prod(self.shape)), dtype=np.int64)
        self._rank[coarse_to_fine(self.shape, grid_origin(alpha, beta))] = np.arange(
            len(self._rank)
        )
        self._order = np.zeros(0, dtype=np.int64)
        self._next = 0
        self._out = 0  # points handed out, not recorded yet
        self._done = False
        self._lock = lock
        self._ready = threading.Condition(lock)
        self.evaluated = 0  # points this run evaluated
        self.skipped = 0  # points this run stored as predictions

    def take(self, k: int, *, block: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
        with self._ready:
            while True:
                if self._next < len(self._order):
                    flat = self._order[self._next : self._next + k]
                    self._next += len(flat)
                    self._out += len(flat)
                    return flat, self.coords(flat)
                if self._done:
                    return None
                if self._out == 0:
                    self._advance()
                    continue
                if not block:
                    return WAIT
                self._ready.wait(0.5)  # in steps: the main thread still takes signals

    def _advance(self) -> None:
        """Plan what comes next (every point handed out is recorded)."""
        step = self.walk.step()
        if step is None:
            self._done = True
            return
        evaluate, skipped = step
        if len(skipped):
            self._skip(int(self.walk.r.point_level[skipped[0]]), skipped)
            self.skipped += len(skipped)
        self._order = evaluate[np.argsort(self._rank[evaluate], kind="stable")]
        self._next = 0

    def record(self, flat: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        with self._ready:
            self.walk.record(flat, values)
            self._out -= len(flat)
            self.evaluated += len(flat)
            self._ready.notify_all()

    def __len__(self) -> int:
        with self._lock:
            return len(self._order) - self._next

    def exhausted(self) -> bool:
        with self._lock:
            return self._done

    def close(self) -> None:
        with self._ready:
            self._next = len(self._order)
            self._done = True
            self._ready.notify_all()


# Writes computed values: flat grid indices (K,) and name -> (K,) values.
WriteFn = Callable[[np.ndarray, Mapping[str, np.ndarray]], None]
