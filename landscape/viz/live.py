"""The live viewer: the viewer page served on 127.0.0.1 while `landscape compute` fills
the files (``landscape view --live``).

Two routes: ``/`` is the page (`landscape.viz.viewer.build_viewer_html` in live mode) and
``/data.json`` what it polls, `viewer_data` of the files as they are now, plus ``live``
(``url``, ``interval_ms``, ``complete``) and each surface's ``eta_s``. Any other path is
404: the file list is fixed at start and nothing from a request reaches the filesystem.
Requests whose Host header is not ``127.0.0.1:PORT`` or ``localhost:PORT`` are refused,
so a web page whose DNS name is rebound to 127.0.0.1 cannot read the data.

The standard library's `http.server.ThreadingHTTPServer` is enough: one local user (a
tab or two) polling two routes every few seconds needs no framework, and no new
dependency. Files are read with `read_surface_snapshot`, which never locks them, so
neither the writer nor this server ever waits for the other; a read that fails while the
writer flushes keeps the last good snapshot of that file until the next poll.
"""

from __future__ import annotations

import errno
import json
import math
import os
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from landscape.core.errors import InputError
from landscape.io.surface_file import (
    SURFACE_FORMAT,
    StoreError,
    Surface,
    open_readonly,
    read_surface_snapshot,
)
from landscape.io.surfaces import read_surface
from landscape.viz.style import display_names
from landscape.viz.viewer import build_viewer_html, metrics_by_name, viewer_data

__all__ = [
    "DATA_URL",
    "ETA_WINDOW_S",
    "HOST",
    "LiveServer",
    "LiveView",
    "Progress",
    "wait_for_files",
]

HOST = "127.0.0.1"  # never another interface: the data is the user's own
DATA_URL = "data.json"  # relative: the page polls it beside itself
ETA_WINDOW_S = 60.0  # the rate behind an ETA: the progress seen over about this long
# The page's polling interval: a browser clamps a huge timeout to ~0 (continuous polling).
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.2, 3600.0
REQUEST_QUEUE = 1024  # the listen backlog (the kernel caps it at net.core.somaxconn)
_START_TRIES = 10  # reads of a file being written at start, before it counts as unreadable
_START_PAUSE_S = 0.05
_TRANSIENT = (StoreError, OSError, KeyError)  # what a read racing the writer's flush raises


class Progress:
    """Points done over time, as this process saw them: the rate and time left of a file.

    `observe` records ``(time, done)``; the rate is taken over the last `window` seconds
    (from the latest sample at or before its start), so it follows a run that speeds up or
    slows down. `eta` is None until two different counts were seen in that span, and when
    the count has not moved over it (the writer may be stopped).
    """

    def __init__(self, window: float = ETA_WINDOW_S) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque(maxlen=4096)

    def observe(self, now: float, done: int) -> None:
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()  # fewer points than before: a new file in its place
        self._samples.append((now, done))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()

    def eta(self, total: int) -> float | None:
        """Seconds until `total` points are done at the recent rate; None when unknown."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if d1 >= total or d1 <= d0 or t1 <= t0:
            return None
        return (total - d1) * (t1 - t0) / (d1 - d0)


def wait_for_files(
    files: Iterable[str | os.PathLike],
    *,
    timeout: float,
    said: Callable[[list[str]], None] = lambda missing: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until every file exists: a viewer started beside ``landscape compute ... &``
    comes up before the compute has created its file (it does so after loading torch,
    the checkpoint and the data).

    Args:
        files: the surface files.
        timeout: seconds to wait at most (0: not at all).
        said: called once with the missing files when waiting starts.
        sleep, clock: time (tests pass their own).

    Raises:
        InputError: a file is still missing after `timeout` seconds.
    """
    deadline = clock() + timeout
    told = False
    while missing := [str(f) for f in files if not Path(f).exists()]:
        if clock() >= deadline:
            raise InputError(
                f"{', '.join(repr(m) for m in missing)} does not exist"
                + (f" after waiting {timeout:g} s" if timeout > 0 else "")
                + "; check the path, or start landscape compute first",
                arg="wait",
            )
        if not told:
            said(missing)
            told = True
        sleep(0.2)


class _LiveFile:
    """One file of the page: its last good snapshot, its progress, its metrics."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # A file being written may fail to open for a moment (its end moves while the
        # writer flushes): read again a few times before calling it unreadable.
        for _ in range(_START_TRIES - 1):
            try:
                self.grows, self.surface = self._first_read()
                break
            except _TRANSIENT:
                if not path.is_file():
                    raise
                time.sleep(_START_PAUSE_S)
        else:
            self.grows, self.surface = self._first_read()
        self.progress = Progress()
        self.failures = 0  # reads that failed (racing the writer); the last good one is shown
        self._metrics: tuple[Surface, dict[str, float] | None] | None = None

    def _first_read(self) -> tuple[bool, Surface]:
        """Whether the file grows, and what it holds now."""
        with open_readonly(self.path, "surface file") as f:
            try:
                # Ours grow while `landscape compute` writes them; a file of the original
                # code is read once, whole (`read_surface` names any other file's fault).
                grows = f.attrs.get("format") == SURFACE_FORMAT
            except (OSError, KeyError) as e:
                raise StoreError(f"{str(self.path)!r} is not readable ({e}); check it") from e
        if grows:
            return True, read_surface_snapshot(self.path)
        return False, read_surface(self.path)

    @property
    def done(self) -> int:
        return int(self.surface.computed.sum())

    @property
    def total(self) -> int:
        return int(self.surface.computed.size)

    @property
    def complete(self) -> bool:
        # A file of the original code never changes: whatever it holds is all it will hold.
        return not self.grows or self.done == self.total

    def refresh(self, now: float) -> None:
        if not self.grows:
            return
        try:
            new = read_surface_snapshot(self.path)
        except _TRANSIENT:
            self.failures += 1
            return
        if not _same_values(new, self.surface):
            self.surface = new
        self.progress.observe(now, self.done)

    def eta(self) -> float | None:
        return None if self.complete else self.progress.eta(self.total)

    def metrics(self) -> dict[str, float] | None:
        """The surface's metrics once it is complete (a half-computed grid's mislead)."""
        if not self.complete:
            return None
        if self._metrics is None or self._metrics[0] is not self.surface:
            try:
                found: dict[str, float] | None = next(
                    iter(metrics_by_name([self.surface]).values())
                )
            except InputError:  # values the metrics cannot use: the page shows none
                found = None
            self._metrics = (self.surface, found)
        return self._metrics[1]


def _same_values(a: Surface, b: Surface) -> bool:
    return a.values.keys() == b.values.keys() and all(
        np.array_equal(v, b.values[k], equal_nan=True) for k, v in a.values.items()
    )


class LiveView:
    """What the live page shows: the files' latest snapshots, re-read on each request.

    Args:
        files: surface files (ours, or the original code's); each must exist and read now.
        title: the page title.
        paths: 2-D paths drawn on the contours, as `build_viewer_html` takes them.
        interval: seconds between the page's polls.
        clock: monotonic seconds (tests pass their own).

    Raises:
        InputError: a file is missing or unreadable, or `interval` is not a positive number.
    """

    def __init__(
        self,
        files: Iterable[str | os.PathLike],
        *,
        title: str = "Loss landscapes",
        paths: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        ok = isinstance(interval, int | float) and not isinstance(interval, bool)
        if not (ok and math.isfinite(interval) and MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S):
            raise InputError(
                f"interval must be a positive number of seconds from {MIN_INTERVAL_S:g} to "
                f"{MAX_INTERVAL_S:,g} (how often the page reads the files), got {interval!r}",
                arg="interval",
            )
        self.title = title
        self.paths = paths
        self.interval_ms = max(1, round(interval * 1000))
        self._clock = clock
        self._lock = threading.Lock()
        self.files = [_LiveFile(Path(f)) for f in files]
        if not self.files:
            raise InputError("the live viewer needs at least one surface file")
        now = clock()
        for f in self.files:
            f.progress.observe(now, f.done)
        self.data()  # bad paths (or names) are bad input now, not an error on each request

    @property
    def complete(self) -> bool:
        return all(f.complete for f in self.files)

    def _current(self) -> dict[str, Any]:
        """Re-read the files (with the lock held); the arguments of the page's data."""
        now = self._clock()
        for f in self.files:
            f.refresh(now)
        surfaces = [f.surface for f in self.files]
        names = display_names(surfaces)
        metrics = {}
        for name, f in zip(names, self.files, strict=True):
            found = f.metrics()
            if found is not None:
                metrics[name] = found
        return {"surfaces": surfaces, "names": names, "metrics": metrics, "paths": self.paths}

    def _live(self) -> dict[str, Any]:
        return {"url": DATA_URL, "interval_ms": self.interval_ms, "complete": self.complete}

    def data(self) -> dict[str, Any]:
        """The body of ``data.json``: `viewer_data` of the files now, with ``live`` and
        each surface's ``eta_s`` (seconds, or None when complete or not known yet)."""
        with self._lock:
            data = viewer_data(**self._current())
            for entry, f in zip(data["surfaces"], self.files, strict=True):
                entry["eta_s"] = f.eta()
            data["live"] = self._live()
            return data

    def page(self) -> str:
        """The page, drawing the files as they are now and polling `DATA_URL`."""
        with self._lock:
            return build_viewer_html(**self._current(), title=self.title, live=self._live())


class _Handler(BaseHTTPRequestHandler):
    server: LiveServer

    def version_string(self) -> str:
        return "landscape"  # the Server header: no Python version for the curious

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request on stderr."""

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, code: int, text: str) -> None:
        self._send(code, f"{text}\n".encode(), "text/plain; charset=utf-8")

    def do_GET(self) -> None:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1:
            self._text(400, "one Host header is required")
            return
        if hosts[0].strip().lower() not in self.server.hosts:
            self._text(403, "wrong Host: open the address landscape view printed")
            return
        route = self.path.split("?", 1)[0]  # the page may add a query; nothing else is read
        if route == "/":
            page = self.server.view.page()
            self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")
        elif route == "/" + DATA_URL:
            body = json.dumps(self.server.view.data(), allow_nan=False, separators=(",", ":"))
            self._send(200, body.encode("utf-8"), "application/json")
        else:
            self._text(404, "not found")

    do_HEAD = do_GET


class LiveServer(ThreadingHTTPServer):
    """Serves a `LiveView` on 127.0.0.1 only; the socket listens once this returns.

    Run it with ``serve_forever()`` (a KeyboardInterrupt ends it) and close it with
    ``server_close()`` or a ``with`` block.

    Args:
        view: what to serve.
        port: the port; 0 takes a free one (see `port` and `url`).

    Raises:
        InputError: `port` is out of range, in use, or not allowed to this user.
    """

    daemon_threads = True  # a request still running never holds up the stop
    # The listen backlog: connections waiting to be accepted. socketserver's default of 5
    # drops most of a burst (200 pages polling at once, a reload of many tabs).
    request_queue_size = REQUEST_QUEUE
    allow_reuse_port = False  # never share the port with another process

    def __init__(self, view: LiveView, port: int = 0) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InputError(f"port must be 0 (any free one) to 65535, got {port!r}", arg="port")
        self.view = view
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise InputError(
                    f"port {port} is in use on {HOST}; choose another port, or 0 for a free one",
                    arg="port",
                ) from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise InputError(
                    f"port {port} needs privileges on {HOST} ({e.strerror}); choose a port "
                    "above 1023, or 0 for a free one",
                    arg="port",
                ) from None
            raise
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the browser closed the page mid-answer: nothing to report
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look the host name up (socket.getfqdn): not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.port

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"
