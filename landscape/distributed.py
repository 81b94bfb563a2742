"""Many GPUs, many nodes: one surface computed by the ranks of a ``torchrun`` job.

    torchrun --nproc_per_node 8 -m landscape.compute --ckpt ... --out s.h5

Every rank loads the checkpoint and data itself and evaluates with the same
batched engine on its own device (``cuda:LOCAL_RANK``, or the CPU). Rank 0
alone owns the file: it creates or checks it, sends every rank the directions
it holds (so a resumed run uses the file's), keeps the queue of pending points
(coarse-to-fine) and writes each chunk of results the moment it arrives.

Points are handed out on request, not in lock-step: a worker asks for a chunk
when it has finished the previous one (and keeps one more chunk in hand, so it
never waits for the round trip); a coordinator thread on rank 0 answers while
rank 0's main thread computes chunks from the same queue. A fast GPU takes more
chunks than a slow one and nobody waits at every point for everybody else, as
the original code did (MPI reduction of the whole array after every point).

The messages are small CPU tensors over gloo (also when evaluation runs on
NCCL-backed GPUs): ``(received, want, size, n)`` headers, indices and values.
Because every point is evaluated alone, or in the same chunks as a single
process would form, the file is the one a single process writes. A rank that
dies stops the job like an interruption (exit 130): every chunk that arrived is
on disk, the (at most two) chunks each rank held stay NaN, and a rerun, with
any number of ranks, computes them.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from .cliutil import os_error_message
from .evaluate import Evaluator
from .store import Surface, SurfaceWriter, read_surface
from .surface import (
    PendingPoints,
    SurfaceConfig,
    WriteFn,
    fill_surface,
    load_inputs,
    open_surface,
    prepare,
    resolve_device,
)

__all__ = ["DEFAULT_TIMEOUT_MIN", "QuietExit", "RankLost", "launched", "run"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MIN = 30.0
PREFETCH = 2  # chunks a worker holds: one computing, one waiting, so it never idles
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


def rank_device(name: str, local_rank: int, local_world_size: int) -> torch.device:
    """The device of one rank: ``auto``/``cuda`` -> ``cuda:LOCAL_RANK``; ``cpu``; ``cuda:N``."""
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        n = torch.cuda.device_count()
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA device here; use --device cpu")
        if local_rank >= n:
            raise ValueError(
                f"--device {name}: local rank {local_rank} needs cuda:{local_rank} but this "
                f"node has {n} GPU(s); start at most {n} processes per node (--nproc_per_node)"
            )
        return torch.device("cuda", local_rank)
    device = resolve_device(name)
    if device.type == "cuda" and local_world_size > 1:
        raise ValueError(
            f"--device {name} puts all {local_world_size} ranks of this node on one GPU; "
            "use --device cuda (each rank takes cuda:LOCAL_RANK)"
        )
    return device


@dataclass(frozen=True)
class Team:
    """This process's place in the job, and the gloo group the ranks talk over."""

    rank: int
    world_size: int
    device: torch.device
    group: Any  # dist.ProcessGroup: gloo, CPU tensors

    @classmethod
    def start(cls, device_name: str, *, timeout: datetime.timedelta) -> Team:
        """Join the torchrun job (``env://``): NCCL for GPUs, gloo for CPUs and messages."""
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        device = rank_device(
            device_name,
            int(os.environ.get("LOCAL_RANK", "0")),
            int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        )
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        # The timeout bounds every wait, so a lost rank ends the job instead of hanging it.
        dist.init_process_group(backend, timeout=timeout)
        group = (
            dist.new_group(backend="gloo", timeout=timeout)
            if backend != "gloo"
            else dist.group.WORLD
        )
        return cls(rank, world_size, device, group)

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

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
        except ValueError as e:
            error = str(e) or type(e).__name__
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
            raise ValueError(message if rank == 0 else f"rank {rank}: {message}")
        return result

    def _wait_for_rank_0_to_exit(self) -> None:
        """Let rank 0 print its message first: torchrun stops every rank once one exits."""
        # Rank 0 never sends this: the wait ends when its process closes the connection.
        with contextlib.suppress(RuntimeError, KeyboardInterrupt):
            dist.recv(torch.empty(1), src=0, group=self.group, tag=_HANG_UP)

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

    @contextmanager
    def serve(
        self, points: PendingPoints, write: WriteFn, *, value_names: list[str]
    ) -> Iterator[None]:
        """Rank 0: answer the workers from a thread while this thread computes too."""
        coordinator = _Coordinator(self, points, write, value_names)
        coordinator.start()
        try:
            yield
        except BaseException:
            points.close()  # workers get no more points; the process is going down
            raise
        while coordinator.is_alive():  # until every worker reported its last chunk
            coordinator.join(0.5)
        if coordinator.error is not None:
            raise coordinator.error

    def work(self, evaluator: Evaluator) -> None:
        """A worker: ask rank 0 for chunks, evaluate them, send the values back."""
        names = evaluator.value_names()
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
                    payload = np.concatenate([flat, *(values[k] for k in names)], dtype=np.float64)
                    dist.send(torch.from_numpy(payload), dst=0, group=self.group, tag=_RESULTS)
            sizes.extend([size] * want)

        def next_chunk() -> tuple[np.ndarray, np.ndarray] | None:
            nonlocal received
            size = sizes.popleft()
            reply = torch.empty(1 + 3 * size, dtype=torch.float64)  # n, flat (size,), (size, 2)
            with _link(f"rank {self.rank} lost contact with rank 0"):
                dist.recv(reply, src=0, group=self.group, tag=_CHUNK)
            received += 1
            n = int(reply[0])
            if n == 0:
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


@contextmanager
def _link(what: str) -> Iterator[None]:
    """A gloo error (a peer gone, or the timeout passed) ends the run like an interruption."""
    try:
        yield
    except RuntimeError as e:
        log.error("%s (%s)", what, " ".join(str(e).split())[:300])
        raise RankLost(what) from e


class _Coordinator(threading.Thread):
    """Rank 0's server: hands out chunks of the queue and writes the values sent back."""

    def __init__(
        self, team: Team, points: PendingPoints, write: WriteFn, value_names: list[str]
    ) -> None:
        super().__init__(name="landscape-coordinator", daemon=True)
        self.team, self.points, self.write, self.names = team, points, write, value_names
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._serve()
        except BaseException as e:  # handed to the main thread, which raises it
            self.error = e
            self.points.close()

    def _serve(self) -> None:
        group, v = self.team.group, len(self.names)
        workers = set(range(1, self.team.world_size))
        in_hand = dict.fromkeys(workers, 0)  # chunks given out, values not back yet
        sent: dict[int, deque[tuple[int, Any, Tensor]]] = {r: deque() for r in workers}
        count = dict.fromkeys(workers, 0)  # answers sent to each worker
        header = torch.empty(4, dtype=torch.int64)
        lost = "rank 0 lost contact with a worker"
        while workers:
            with _link(lost):
                src = dist.recv(header, src=None, group=group, tag=_REPORT)
            received, want, size, n = header.tolist()
            if n:
                payload = torch.empty(n * (1 + v), dtype=torch.float64)  # flat (n,), (v, n)
                with _link(lost):
                    dist.recv(payload, src=src, group=group, tag=_RESULTS)
                values = payload[n:].numpy().reshape(v, n)
                flat = payload[:n].numpy().astype(np.int64)
                self.write(flat, dict(zip(self.names, values, strict=True)))
                in_hand[src] -= 1
            with _link(lost):
                while sent[src] and sent[src][0][0] < received:  # delivered: free the buffers
                    sent[src].popleft()[1].wait()
            for _ in range(want):
                reply = torch.zeros(1 + 3 * size, dtype=torch.float64)  # n, flat, (size, 2)
                chunk = self.points.take(size)
                if chunk is not None:
                    flat, coords = chunk
                    reply[0] = len(flat)
                    reply[1 : 1 + len(flat)] = torch.from_numpy(flat.astype(np.float64))
                    reply[1 + size : 1 + size + 2 * len(flat)] = torch.from_numpy(coords.ravel())
                    in_hand[src] += 1
                # Not a blocking send: the worker takes it only when it needs the chunk.
                with _link(lost):
                    work = dist.isend(reply, dst=src, group=group, tag=_CHUNK)
                sent[src].append((count[src], work, reply))
                count[src] += 1
            if in_hand[src] == 0 and len(self.points) == 0:
                workers.discard(src)  # it holds nothing and will only be told "no more"
        with _link(lost):
            for queue in sent.values():
                for _, work, _ in queue:
                    work.wait()


def run(
    config: SurfaceConfig,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool = True,
    timeout_min: float = DEFAULT_TIMEOUT_MIN,
) -> Surface | None:
    """`landscape.surface.run` for one rank of a torchrun job.

    Returns the surface on rank 0 and None on the others. Raises `QuietExit` on
    ranks other than 0 where rank 0 reports the problem.
    """
    team = Team.start(config.device, timeout=datetime.timedelta(minutes=timeout_min))
    try:
        surface = _run(team, config, Path(out), overwrite=overwrite, progress=progress)
    except KeyboardInterrupt:
        if team.rank == 0:
            raise
        raise QuietExit(130) from None
    # Only after a clean finish: a rank stopping early may have a peer still talking to it.
    team.close()
    return surface


def _run(
    team: Team, config: SurfaceConfig, out: Path, *, overwrite: bool, progress: bool
) -> Surface | None:
    lead = team.rank == 0
    job = team.agree(lambda: load_inputs(config, team.device))
    ready = team.agree(
        lambda: prepare(job.model, job.data, job.config, device=team.device, bn_data=job.bn_data)
    )
    with ExitStack() as stack:

        def open_file() -> tuple[dict[str, dict[str, Tensor]], Surface, SurfaceWriter]:
            dirs = open_surface(
                out, job.config, ready, provenance=job.provenance, overwrite=overwrite
            )
            surface = read_surface(out)
            return dirs, surface, stack.enter_context(SurfaceWriter(out))

        opened = team.agree(open_file if lead else None)
        dirs = team.share_directions(opened[0] if lead else None)
        evaluator = team.agree(lambda: ready.evaluator(job.config, dirs))
        if not lead:
            team.work(evaluator)
            return None
        _, surface, writer = opened
        log.info("%s: %d ranks share the pending points", out, team.world_size)
        fill_surface(
            writer,
            evaluator,
            surface.alpha,
            surface.beta,
            progress=progress,
            helpers=functools.partial(team.serve, value_names=evaluator.value_names()),
        )
    return read_surface(out)
