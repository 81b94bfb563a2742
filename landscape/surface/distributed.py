"""Many GPUs, many nodes: how the ranks of a ``torchrun`` job share one surface.

    torchrun --nproc_per_node 8 -m landscape.compute --ckpt ... --out s.h5

A strategy of the engine (`landscape.surface.engine.run`), not a layer above it:
`Team` is this process's place in the job, `Team.serve` the hand-out of points on
rank 0, `Team.work` the loop of the other ranks.

Every rank loads the checkpoint and data itself and evaluates with the same
batched engine on its own device (``cuda:LOCAL_RANK``, or the CPU). Rank 0
alone owns the file: it creates or checks it, sends every rank the directions
it holds (so a resumed run uses the file's), keeps the queue of pending points
(coarse-to-fine) and writes each chunk of results the moment it arrives.

Points are handed out on request, not in lock-step: a worker asks for a chunk
when it has finished the previous one (and keeps one more chunk in hand, so it
never waits for the round trip); a coordinator thread on rank 0 per worker
answers while rank 0's main thread computes chunks from the same queue. A fast
GPU takes more chunks than a slow one and nobody waits at every point for
everybody else, as
the original code did (MPI reduction of the whole array after every point).

The messages are small CPU tensors over gloo (also when evaluation runs on
NCCL-backed GPUs): ``(received, want, size, n)`` headers, indices and values.
Because every point is evaluated alone, or in the same chunks as a single
process would form, the file is the one a single process writes. A rank that
dies stops the job like an interruption (exit 130): every chunk that arrived is
on disk, the (at most two) chunks each rank held stay NaN, and a rerun, with
any number of ranks, computes them.

An interrupted rank 0 tells the workers to stop: each sends back the chunks it
holds (written), waits for rank 0 to report and exit, and exits 130 too. Bad input
on any rank stops every rank with exit code 2 and one line, from rank 0. The
process group is destroyed before the interpreter exits, on every path (`Team`), and
the rank ends without the interpreter's teardown (`rank_body`, `end_rank`).

`Solo` is the same strategy for one process, so the engine has one sequence of steps.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from landscape.core.device import resolve_device
from landscape.core.errors import InputError, os_error_message
from landscape.models import ModelError
from landscape.surface.evaluate import Evaluator
from landscape.surface.points import WAIT, PendingPoints, WriteFn

__all__ = [
    "DEFAULT_TIMEOUT_MIN",
    "QuietExit",
    "RankLost",
    "Solo",
    "Team",
    "end_rank",
    "launched",
    "rank_body",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MIN = 30.0
PREFETCH = 2  # chunks a worker holds: one computing, one waiting, so it never idles
# A chunk of n = WAIT_CODE points: none yet (adaptive refinement plans the next level once
# the points out are back); the worker asks again after WAIT_S.
WAIT_CODE, WAIT_S = -2, 0.02
_REPORT, _RESULTS, _CHUNK, _HANG_UP = 1, 2, 3, 4  # message tags
T = TypeVar("T")


class RankLost(KeyboardInterrupt):
    """A rank stopped answering: the run ends like an interruption (exit 130).

    The file is consistent, the points in the ranks' hands are still NaN, and a
    rerun computes them.
    """


class QuietExit(Exception):
    """Ends a rank other than 0 with exit code `code` and no message: rank 0 reports."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def launched() -> bool:
    """Whether this process is one rank of a ``torchrun`` job of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


@dataclass
class Solo:
    """The strategy of one process: the same steps as a `Team`'s, with no one to share with.

    The engine runs one sequence of steps for both (`landscape.surface.engine`): each step
    through `agree`, rank 0's values through `share`, the other ranks' help through
    `helpers`.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1

    def agree(self, step: Callable[[], T] | None) -> T | None:
        return step() if step is not None else None

    def share(self, value: T) -> T:
        return value

    def share_directions(
        self, dirs: Mapping[str, Mapping[str, Tensor]] | None
    ) -> dict[str, dict[str, Tensor]]:
        assert dirs is not None, "one process is rank 0"
        return {a: dict(d) for a, d in dirs.items()}

    def helpers(self, evaluator: Evaluator) -> None:
        """Nobody to help: rank 0 computes every point."""
        return None

    def work(self, evaluator: Evaluator) -> None:
        raise AssertionError("one process is rank 0: it never works for another")


def rank_body(body: Callable[[], int]) -> Callable[[], int]:
    """A command's body that ends quietly where rank 0 reports for the whole job.

    A rank other than 0 stops with `QuietExit`: its exit code is decided (rank 0 prints
    the one line), so a launcher's SIGTERM stopping the rest of the job must not change
    it; from then on SIGTERM is ignored (the command's wrapper leaves a handler it did
    not install as it is).
    """

    def run() -> int:
        try:
            return body()
        except QuietExit as e:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            return e.code

    return run


def end_rank(code: int) -> int:
    """Under torchrun, end this rank with `code` now, without the interpreter's teardown;
    in one process, return `code`.

    gloo's worker threads let go of a finished collective's tensors only after the
    collective has returned, and letting go takes the GIL. When that comes after the
    interpreter has begun to finalize (a busy machine, a rank exiting right after a
    collective), CPython ends the thread inside a C++ destructor and the rank aborts
    (``terminate called without an active exception``, exit code -6).
    ``destroy_process_group`` does not join those threads (torch 2.14), so no teardown
    order avoids it; not finalizing does. Every file is closed where it is written, so
    only what was printed is left to flush; peers see the connection close.
    """
    if not launched():
        return code
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


@dataclass
class Team:
    """This process's place in the job, and the gloo group the ranks talk over.

    Teardown: the group is destroyed by `close` after a clean finish, or at exit
    (`atexit`) on every other path, which is also after rank 0 has printed its one
    line (the others wait for it to hang up). That is not enough for a clean exit:
    gloo runs collectives on worker threads of its own, such a thread lets go of a
    finished collective (and of the Python tensors it holds) only after the rank's
    `wait` has returned, and ``destroy_process_group`` does not join it (torch 2.14).
    If the interpreter is finalizing by then, the thread cannot take the GIL, CPython
    ends it inside a C++ destructor and the process aborts (``terminate called without
    an active exception``). So a rank ends without finalizing (`end_rank`: `os._exit`
    once everything is written and printed), as ``landscape compute`` does; a script of
    your own that computes a surface under torchrun should end the same way.
    """

    rank: int
    world_size: int
    device: torch.device
    group: Any  # dist.ProcessGroup: gloo, CPU tensors; None once closed
    _at_exit: Callable[[], None] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, device_name: str, *, timeout: datetime.timedelta) -> Team:
        """Join the torchrun job (``env://``): NCCL for GPUs, gloo for CPUs and messages."""
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        device = resolve_device(
            device_name,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        )
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        # The timeout bounds every wait, so a lost rank ends the job instead of hanging it.
        dist.init_process_group(backend, timeout=timeout)
        team = cls(rank, world_size, device, None)
        team._at_exit = team._close_at_exit
        atexit.register(team._at_exit)  # before anything can fail
        team.group = (
            dist.new_group(backend="gloo", timeout=timeout)
            if backend != "gloo"
            else dist.group.WORLD
        )
        return team

    def close(self) -> None:
        """Destroy the process groups; returns once gloo's threads have ended.

        Call it only when this rank has no message in flight: every peer is done
        talking to it, or this process is exiting anyway (then peers waiting on it
        see the connection close, which is what they wait for).
        """
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
            self._at_exit = None
        # The last reference to the group is dropped here, with the GIL released by
        # torch, so its destructor joins gloo's worker threads before this returns.
        self.group = None
        if dist.is_initialized():
            dist.destroy_process_group()

    def _close_at_exit(self) -> None:
        """Exit-time teardown: the exit code is decided and reported by now."""
        # torchrun stops the other ranks (SIGTERM) once one of them exits, and this
        # rank may be the last one; the stop must not turn its exit code into -15.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.close()

    def agree(self, step: Callable[[], T] | None) -> T | None:
        """Run this rank's part of a step; bad input on any rank stops every rank.

        Rank 0 raises the first message (the one line the user sees); the others
        end quietly with exit code 2. Other errors keep their traceback on the rank
        they happen on, and torchrun stops the rest.
        """
        result, error = None, None
        try:
            if step is not None:
                result = step()
        except (InputError, ModelError) as e:  # bad input; anything else is a bug
            text = e.as_flag() if isinstance(e, InputError) else str(e)
            error = text or type(e).__name__
        except OSError as e:
            error = os_error_message(e)
        errors: list[str | None] = [None] * self.world_size
        with _link(f"rank {self.rank} lost contact with the other ranks"):
            dist.all_gather_object(errors, error, group=self.group)
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        if failed:
            rank, message = failed[0]
            if self.rank != 0:
                self._wait_for_rank_0_to_exit()
                raise QuietExit(2)
            raise InputError(message if rank == 0 else f"rank {rank}: {message}")
        return result

    def _wait_for_rank_0_to_exit(self) -> None:
        """Let rank 0 print its message first: torchrun stops every rank once one exits.

        Rank 0 never sends this: the wait ends when it destroys its process group at
        exit (or dies), after its message. This rank's exit code is decided, so a
        launcher's SIGTERM must not change it into an interruption.
        """
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(RuntimeError, KeyboardInterrupt):
            dist.recv(torch.empty(1), src=0, group=self.group, tag=_HANG_UP)

    def share(self, value: T | None) -> T:
        """Rank 0's `value` (a small picklable one) on every rank."""
        box = [value]
        with _link("cannot receive a setting from rank 0"):
            dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def share_directions(
        self, dirs: Mapping[str, Mapping[str, Tensor]] | None
    ) -> dict[str, dict[str, Tensor]]:
        """Rank 0's `dirs`, bit for bit, on every rank (on this rank's device).

        Rank 0's are the file's when resuming, so no rank needs to see the file.
        """
        layout = [
            [(a, k, v.dtype, tuple(v.shape)) for a, d in dirs.items() for k, v in d.items()]
            if dirs is not None
            else None
        ]
        with _link("cannot receive the directions from rank 0"):
            dist.broadcast_object_list(layout, src=0, group=self.group)
            out: dict[str, dict[str, Tensor]] = {}
            for axis, name, dtype, shape in layout[0]:
                if dirs is not None:
                    t = dirs[axis][name].detach().to("cpu").contiguous()
                else:
                    t = torch.empty(shape, dtype=dtype)
                dist.broadcast(t, src=0, group=self.group)
                out.setdefault(axis, {})[name] = t.to(self.device)
        return out

    def helpers(
        self, evaluator: Evaluator
    ) -> Callable[[PendingPoints, WriteFn], contextlib.AbstractContextManager[None]]:
        """Rank 0's hand-out of points to the other ranks, for `engine.fill_surface`."""
        return functools.partial(self.serve, widths=evaluator.value_widths())

    @contextmanager
    def serve(
        self, points: PendingPoints, write: WriteFn, *, widths: Mapping[str, int]
    ) -> Iterator[None]:
        """Rank 0: answer the workers from threads (one each) while this thread computes too.

        One thread per worker, each receiving from its worker alone: a receive from
        any rank is not failed by gloo when one rank dies, a receive from that rank is.
        """
        stop = _Stop()
        coordinators = [
            _Coordinator(self, src, points, write, dict(widths), stop)
            for src in range(1, self.world_size)
        ]
        for coordinator in coordinators:
            coordinator.start()
        try:
            yield
        except BaseException:
            # Workers get no more points and are told to stop; each coordinator ends once
            # its worker has sent back what it holds (it is written) or is lost. None may
            # be left blocked in gloo: a thread waking there while the interpreter exits
            # aborts the process.
            stop.stop(points)
            _join(coordinators)
            raise
        _join(coordinators)  # until every worker reported its last chunk
        for coordinator in coordinators:
            if coordinator.error is not None:
                raise coordinator.error

    def work(self, evaluator: Evaluator) -> None:
        """A worker: ask rank 0 for chunks, evaluate them, send the values back."""
        names = list(evaluator.value_widths())
        sizes: deque[int] = deque()  # requested sizes of the chunks not yet received
        received = 0

        def report(
            want: int,
            flat: np.ndarray | None = None,
            values: Mapping[str, np.ndarray] | None = None,
        ) -> None:
            n = 0 if flat is None or values is None else len(flat)
            size = evaluator.chunk_size
            header = torch.tensor([received, want, size, n], dtype=torch.int64)
            with _link(f"rank {self.rank} lost contact with rank 0"):
                dist.send(header, dst=0, group=self.group, tag=_REPORT)
                if n:
                    parts = [np.asarray(values[k]).reshape(-1) for k in names]
                    payload = np.concatenate([flat, *parts], dtype=np.float64)
                    dist.send(torch.from_numpy(payload), dst=0, group=self.group, tag=_RESULTS)
            sizes.extend([size] * want)

        stopped = False  # rank 0 was interrupted: no more points, and exit 130

        def next_chunk() -> tuple[np.ndarray, np.ndarray] | None:
            while (chunk := receive()) is WAIT:
                time.sleep(WAIT_S)
                report(1)
            return chunk

        def receive() -> tuple[np.ndarray, np.ndarray] | None:
            nonlocal received, stopped
            size = sizes.popleft()
            reply = torch.empty(1 + 3 * size, dtype=torch.float64)  # n, flat (size,), (size, 2)
            with _link(f"rank {self.rank} lost contact with rank 0"):
                dist.recv(reply, src=0, group=self.group, tag=_CHUNK)
            received += 1
            n = int(reply[0])
            if n == WAIT_CODE:
                return WAIT
            if n <= 0:
                stopped = stopped or n < 0
                return None
            flat = reply[1 : 1 + n].numpy().astype(np.int64)
            return flat, reply[1 + size : 1 + size + 2 * n].numpy().reshape(n, 2)

        start, done = time.perf_counter(), 0
        report(PREFETCH)
        while (chunk := next_chunk()) is not None:
            flat, coords = chunk
            report(1, flat, evaluator(coords))
            done += len(flat)
        while sizes:  # the answers to the chunks asked for in advance: all empty
            next_chunk()
        log.info("rank %d: %d points in %.1f s", self.rank, done, time.perf_counter() - start)
        if stopped:  # everything this rank held is on disk; rank 0 reports the interruption
            self._wait_for_rank_0_to_exit()
            raise QuietExit(130)


@contextmanager
def _link(what: str) -> Iterator[None]:
    """A gloo error (a peer gone, or the timeout passed) ends the run like an interruption."""
    try:
        yield
    except RuntimeError as e:
        log.error("%s (%s)", what, " ".join(str(e).split())[:300])
        raise RankLost(what) from e


class _Stop:
    """Shared by rank 0's coordinators: the run stops early (interrupted, a rank lost)."""

    def __init__(self) -> None:
        self.stopping = False

    def stop(self, points: PendingPoints) -> None:
        self.stopping = True  # first: a coordinator finding no points then says "stop"
        points.close()


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        while thread.is_alive():  # in steps: the main thread still takes signals
            thread.join(0.5)


class _Coordinator(threading.Thread):
    """Rank 0's server for one worker: hands it chunks of the queue, writes what it sends."""

    def __init__(
        self,
        team: Team,
        src: int,
        points: PendingPoints,
        write: WriteFn,
        widths: dict[str, int],
        stop: _Stop,
    ) -> None:
        super().__init__(name=f"landscape-coordinator-{src}", daemon=True)
        self.team, self.src, self.points, self.write = team, src, points, write
        self.widths, self.stop = widths, stop  # numbers per point of each value
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._serve()
        except BaseException as e:  # handed to the main thread, which raises it
            self.error = e
            self.stop.stop(self.points)  # the other workers are told to stop

    def _serve(self) -> None:
        group, v, src = self.team.group, sum(self.widths.values()), self.src
        in_hand = 0  # chunks given out, values not back yet
        waits = 0  # "wait" answers the worker has not asked again after yet
        sent: deque[tuple[int, Any, Tensor]] = deque()
        count = 0  # answers sent
        header = torch.empty(4, dtype=torch.int64)
        lost = f"rank 0 lost contact with rank {src}"
        while True:
            with _link(lost):
                dist.recv(header, src=src, group=group, tag=_REPORT)
            received, want, size, n = header.tolist()
            if count and not n:  # not its first report, no values: asking again after a wait
                waits -= want
            if n:
                payload = torch.empty(n * (1 + v), dtype=torch.float64)  # flat, then by name
                with _link(lost):
                    dist.recv(payload, src=src, group=group, tag=_RESULTS)
                flat = payload[:n].numpy().astype(np.int64)
                values, start = {}, n
                for name, width in self.widths.items():
                    part = payload[start : start + n * width].numpy()
                    values[name] = part.reshape(n, width) if width > 1 else part
                    start += n * width
                self.write(flat, values)
                in_hand -= 1
            with _link(lost):
                while sent and sent[0][0] < received:  # delivered: free the buffers
                    sent.popleft()[1].wait()
            for _ in range(want):
                reply = torch.zeros(1 + 3 * size, dtype=torch.float64)  # n, flat, (size, 2)
                chunk = self.points.take(size, block=False)
                if chunk is None and self.stop.stopping:
                    reply[0] = -1  # "stop": not the end of the grid, an interruption
                elif chunk is WAIT:
                    reply[0] = WAIT_CODE
                    waits += 1
                elif chunk is not None:
                    flat, coords = chunk
                    reply[0] = len(flat)
                    reply[1 : 1 + len(flat)] = torch.from_numpy(flat.astype(np.float64))
                    reply[1 + size : 1 + size + 2 * len(flat)] = torch.from_numpy(coords.ravel())
                    in_hand += 1
                # Not a blocking send: the worker takes it only when it needs the chunk.
                with _link(lost):
                    work = dist.isend(reply, dst=src, group=group, tag=_CHUNK)
                sent.append((count, work, reply))
                count += 1
            # Done when the worker holds nothing, every "wait" was followed by a new request
            # (answered: it will ask nothing more) and no point is left, now or later.
            if in_hand == 0 and waits == 0 and self.points.exhausted():
                break  # it holds nothing and will only be told "no more" (or "stop")
        with _link(lost):
            for _, work, _ in sent:
                work.wait()
