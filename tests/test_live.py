"""``landscape view --live``: the server, the reader of files being written, the flags.

No timing luck: the server runs in a thread (its socket listens before `LiveServer`
returns) or a child that prints its address; the progress test moves a fake clock and
writes the points itself; the fault test kills the writer on signs seen on disk by the
reader, and HANG is only a hang guard.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import PYTHON, REPO, subprocess_env
from procs import HANG, Proc, compute_args, kill_when, run_to_end, wait_until
from surfaces import analytic_values, make_legacy_file, make_surface_file

from landscape import compute, view
from landscape.core.errors import InputError
from landscape.io import surface_file
from landscape.io.surface_file import (
    SurfaceWriter,
    read_per_sample,
    read_surface,
    read_surface_snapshot,
    value_name,
)
from landscape.viz.live import LiveServer, LiveView, Progress

# ---------------------------------------------------------------- helpers


@contextmanager
def serving(view_: LiveView) -> Iterator[LiveServer]:
    """A server on a free port, answering from a thread until the block ends."""
    with LiveServer(view_, port=0) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.shutdown()
            thread.join(HANG)


def get(port: int, path: str, host: str | None = "") -> tuple[int, dict, bytes]:
    """GET `path` as sent (no normalisation); `host` "" is the right Host, None none."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host or f"127.0.0.1:{port}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def get_json(port: int) -> dict:
    status, headers, body = get(port, "/data.json")
    assert status == 200 and headers["Content-Type"] == "application/json", (status, headers)
    assert headers["Cache-Control"] == "no-store"
    return json.loads(body)


def served(entry: dict, key: str) -> np.ndarray:
    """A value array as the page gets it, back in our [alpha, beta] order (null = NaN)."""
    return np.array(entry["values"][key], dtype=np.float64).T


def write_points(path: Path, flat: np.ndarray, kind: str = "bowl") -> None:
    """Write the analytic values of points `flat` (row-major) the way compute does."""
    s = read_surface(path)
    index = np.unravel_index(flat, s.shape)
    values = {}
    for split in s.splits:
        for metric, v in analytic_values(kind, s.alpha, s.beta, split=split).items():
            values[value_name(split, metric)] = v[index]
    with SurfaceWriter(path) as writer:
        writer.write(index, values)


# ---------------------------------------------------------------- the reader


def test_snapshot_equals_a_whole_read_and_hides_half_written_points(tmp_path):
    path = make_surface_file(tmp_path, shape=(9, 7), partial=0.5)
    whole, snap = read_surface(path), read_surface_snapshot(path)
    assert snap.values.keys() == whole.values.keys() and snap.config == whole.config
    for key, v in whole.values.items():
        np.testing.assert_array_equal(snap.values[key], v, err_msg=key)

    # A writer stopped between a point's accuracy and its loss (SurfaceWriter writes the
    # losses last): the snapshot does not show that point, in any array.
    p = (8, 6)
    with h5py.File(path, "r+") as f:
        f["train_accuracy"][p] = 0.5
        f["test_accuracy"][p] = 0.5
        f["train_loss"][p] = 1.0  # one split's loss written, the other's not yet
    snap = read_surface_snapshot(path)
    assert all(np.isnan(v[p]) for v in snap.values.values())
    assert snap.computed.sum() == whole.computed.sum()


def test_snapshot_hides_a_loss_that_changes_between_its_two_reads(tmp_path, monkeypatch):
    path = make_surface_file(tmp_path, shape=(5, 4), splits=("train",))
    p, flat = (2, 3), 2 * 4 + 3
    with h5py.File(path, "r") as f:
        offset = f["train_loss"].id.get_offset()
    real, calls = surface_file._read_values, []

    def racing(f, name):  # the writer rewrites a loss while the reader reads the others
        values = real(f, name)
        calls.append(name)
        if calls == ["train_loss"]:
            fd = os.open(path, os.O_WRONLY)
            os.pwrite(fd, np.float64(7.0).tobytes(), offset + 8 * flat)
            os.close(fd)
        return values

    monkeypatch.setattr(surface_file, "_read_values", racing)
    snap = read_surface_snapshot(path)
    assert calls[0] == calls[-1] == "train_loss" and len(calls) == 3  # loss, accuracy, loss
    assert np.isnan(snap.values["train_loss"][p]) and np.isnan(snap.values["train_accuracy"][p])
    assert snap.computed.sum() == 19
    assert read_surface_snapshot(path).values["train_loss"][p] == 7.0  # the next poll shows it


def test_snapshot_never_reads_directions_but_checks_the_rest(tmp_path):
    path = make_surface_file(tmp_path, shape=(5, 4))
    with h5py.File(path, "r+") as f:
        f["directions/x/fc.weight"][0, 0] = np.nan  # read_surface refuses the file
    with pytest.raises(surface_file.StoreError, match="directions"):
        read_surface(path)
    assert read_surface_snapshot(path).computed.all()
    with pytest.raises(surface_file.StoreError, match="does not exist"):
        read_surface_snapshot(tmp_path / "missing.h5")
    legacy = make_legacy_file(tmp_path)
    with pytest.raises(surface_file.StoreError, match="not a landscape surface file"):
        read_surface_snapshot(legacy)


# ---------------------------------------------------------------- the server


def test_serves_the_page_and_its_data_on_loopback_only(tmp_path):
    path = make_surface_file(tmp_path, "half.h5", shape=(9, 7), partial=0.5, label="half")
    whole = make_surface_file(tmp_path, "whole.h5", shape=(9, 7), label="whole")
    legacy = make_legacy_file(tmp_path, uncomputed=3)
    with serving(LiveView([path, whole, legacy], interval=0.5)) as server:
        host, port = server.socket.getsockname()
        assert host == "127.0.0.1" and server.url == f"http://127.0.0.1:{port}/"

        status, headers, body = get(port, "/")
        page = body.decode()
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert '"url":"data.json"' in page and '"interval_ms":500' in page and "half" in page

        data = get_json(port)
        half, complete, old = data["surfaces"]
        assert (half["done"], half["total"]) == (32, 63) and half["eta_s"] is None
        assert (complete["done"], complete["total"]) == (63, 63) and complete["eta_s"] is None
        assert old["done"] == 42 and old["eta_s"] is None  # the original code's: all it holds
        assert data["live"] == {"url": "data.json", "interval_ms": 500, "complete": False}
        # Metrics of complete surfaces only: a half-computed grid's would mislead.
        assert half["scores"] == [] and complete["scores"] and old["scores"]
        np.testing.assert_array_equal(
            served(half, "train_loss"), read_surface(path).values["train_loss"]
        )

        for bad in (
            "/x",
            "/index.html",
            "/../../etc/passwd",
            "/data.json/../../etc/passwd",
            "/data.json/",
            f"/{path.name}",
            str(path),
            f"/{tmp_path.name}/{path.name}",
        ):
            status, _, body = get(port, bad)
            assert status == 404 and path.name.encode() not in body, bad
        assert get(port, "/data.json?t=1")[0] == 200  # a query is ignored

        # DNS rebinding: a page of another site that resolves to 127.0.0.1 is refused.
        for host_header in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}"):
            status, _, body = get(port, "/data.json", host=host_header)
            assert status == 403 and b"surfaces" not in body, host_header
        assert get(port, "/data.json", host=None)[0] == 400
        assert get(port, "/data.json", host=f"localhost:{port}")[0] == 200


def test_progress_done_grows_eta_and_complete(tmp_path):
    path = make_surface_file(tmp_path, shape=(9, 7), partial=0.75)  # 16 of 63 done
    now = [100.0]
    live = LiveView([path], clock=lambda: now[0])
    with serving(live) as server:
        first = get_json(server.port)["surfaces"][0]
        assert first["done"] == 16 and first["eta_s"] is None
        now[0] += 1.0
        again = get_json(server.port)["surfaces"][0]
        assert again["done"] == 16 and again["eta_s"] is None  # one count seen: unknown

        write_points(path, np.arange(16, 26))  # 10 points in the next 10 s
        now[0] += 10.0
        data = get_json(server.port)
        entry = data["surfaces"][0]
        assert entry["done"] == 26 and not data["live"]["complete"]
        # 10 points in 11 s since the first sample: 37 left take 40.7 s at that rate.
        assert entry["eta_s"] == pytest.approx(37 * 11.0 / 10)
        for key, v in read_surface(path).values.items():
            np.testing.assert_array_equal(served(entry, key), v, err_msg=key)
        assert entry["scores"] == []

        write_points(path, np.arange(26, 63))
        now[0] += 5.0
        data = get_json(server.port)
        entry = data["surfaces"][0]
        assert (entry["done"], entry["total"]) == (63, 63) and data["live"]["complete"]
        assert entry["eta_s"] is None and entry["scores"]  # complete: metrics shown
        for key, v in read_surface(path).values.items():
            np.testing.assert_array_equal(served(entry, key), v, err_msg=key)
        _, _, body = get(server.port, "/")
        assert '"complete":true' in body.decode()


def test_eta_follows_the_recent_rate_and_is_unknown_when_stalled():
    p = Progress(window=60.0)
    p.observe(0.0, 0)
    assert p.eta(100) is None
    p.observe(10.0, 10)
    assert p.eta(100) == pytest.approx(90.0)
    p.observe(20.0, 40)  # faster now
    assert p.eta(100) == pytest.approx(60 * 20 / 40)
    p.observe(200.0, 40)  # nothing moved over the window: the writer may be stopped
    assert p.eta(100) is None
    p.observe(201.0, 50)
    assert p.eta(100) == pytest.approx(50 * 181 / 10)
    p.observe(202.0, 5)  # fewer points: a new file in its place, start again
    assert p.eta(100) is None
    assert p.eta(5) is None  # complete


def test_live_view_refuses_bad_input_at_start(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        LiveView([tmp_path / "later.h5"])
    (tmp_path / "text.h5").write_text("not HDF5")
    with pytest.raises(InputError, match="not a readable HDF5 file"):
        LiveView([tmp_path / "text.h5"])
    ok = make_surface_file(tmp_path)
    # (a browser clamps a huge timeout to ~0: 1e300 s would poll continuously)
    for interval in (0, -1.0, float("nan"), float("inf"), 1e300, 3601, 0.01, True, "2"):
        with pytest.raises(InputError, match=r"interval must be a positive number.*0\.2 to 3,600"):
            LiveView([ok], interval=interval)
    for interval in (0.2, 3600):
        assert LiveView([ok], interval=interval).interval_ms == round(interval * 1000)
    for port in (-1, 65536):
        with pytest.raises(InputError, match="port must be 0"):
            LiveServer(LiveView([ok]), port=port)


def test_a_burst_of_200_simultaneous_requests_is_all_answered(tmp_path):
    """200 connections made at once, before the server accepts any, all wait in its listen
    backlog (socketserver's default of 5 dropped most of them), then all get their data."""
    n = 200
    somaxconn = Path("/proc/sys/net/core/somaxconn")
    if somaxconn.exists() and int(somaxconn.read_text()) < n:
        pytest.skip(f"the kernel caps every listen backlog at {somaxconn.read_text().strip()}")
    path = make_surface_file(tmp_path, shape=(5, 4), partial=0.5)
    with LiveServer(LiveView([path]), port=0) as server:
        clients = []
        try:
            for _ in range(n):
                client = socket.socket()
                clients.append(client)
                client.setblocking(False)
                client.connect_ex(("127.0.0.1", server.port))
            # The sign: every handshake completes while nothing accepts yet (a connection
            # beyond the backlog stays unanswered however long one waits).
            with selectors.DefaultSelector() as sel:
                for client in clients:
                    sel.register(client, selectors.EVENT_WRITE)
                pending = set(clients)
                while pending:
                    ready = sel.select(timeout=HANG)
                    assert ready, f"{len(pending)} of {n} connections were not taken in"
                    for key, _ in ready:
                        assert key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                        sel.unregister(key.fileobj)
                        pending.discard(key.fileobj)
            request = f"GET /data.json HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
            for client in clients:
                client.setblocking(True)
                client.settimeout(HANG)
                client.sendall(request.encode())
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()
            try:
                for client in clients:
                    response = http.client.HTTPResponse(client)
                    response.begin()
                    assert response.status == 200
                    assert json.loads(response.read())["surfaces"][0]["done"] == 10
            finally:
                server.shutdown()
                thread.join(HANG)
        finally:
            for client in clients:
                client.close()


# ---------------------------------------------------------------- the command line

SERVING = r"^serving (http://127\.0\.0\.1:(\d+)/) \(Ctrl-C to stop\)$"


@pytest.mark.child
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_serves_until_ctrl_c_then_stops_cleanly(tmp_path, sig):
    path = make_surface_file(tmp_path, shape=(9, 7), partial=0.5)
    cmd = [PYTHON, "-m", "landscape.view", str(path), "--live", "--port", "0"]
    with Proc(cmd + ["--interval", "0.5"]) as proc:
        match = proc.wait_for(SERVING, stream="stdout")
        port = int(match.group(2))
        status, _, body = get(port, "/")
        assert status == 200 and b'"interval_ms":500' in body
        assert get_json(port)["surfaces"][0]["done"] == 32
        proc.send_signal(sig)
        code, out, err = proc.finish()
    assert code == 0, err
    assert "Traceback" not in err and err.strip() == "landscape view: stopped", err
    assert out.strip() == match.group(0)  # no line per request
    with socket.socket() as s:  # nothing listens on the port any more
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_cli_refuses_out_with_live_and_a_port_in_use(tmp_path, capsys):
    path = make_surface_file(tmp_path)

    def one_line_error(argv: list[str], words: str) -> None:
        assert view.main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1, captured.err
        assert words in captured.err, captured.err

    one_line_error([str(path), "--live", "--out", str(tmp_path / "x.html")], "drop --out")
    assert not (tmp_path / "x.html").exists()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error([str(path), "--live", "--port", str(port)], f"--port {port} is in use")
    one_line_error([str(path), "--live", "--port", "70000"], "--port must be 0")
    one_line_error([str(path), "--live", "--interval", "0"], "--interval must be a positive")
    one_line_error([str(path), "--live", "--interval", "1e300"], "from 0.2 to 3,600")
    one_line_error([str(path), "--live", "--port", "x"], "--port: invalid int value")
    one_line_error([str(tmp_path / "later.h5"), "--live", "--wait", "0"], "does not exist")


# ---------------------------------------------------------------- a reader racing compute

# Reads the file as fast as it can until its stdin closes; reports what it saw. Publishes
# the latest point count it saw in SEEN (atomically), the sign the test kills the writer on.
_READER = r"""
import json, os, sys, threading, time
import numpy as np
from landscape.io.surface_file import read_surface_snapshot, StoreError
path, seen_path, report_path = sys.argv[1:4]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
first, conflicts, partial, counts, failures, snapshots, last = {}, [], 0, [], [], 0, None

def publish(n):
    with open(seen_path + ".tmp", "w") as f:
        f.write(str(n))
    os.replace(seen_path + ".tmp", seen_path)

publish(0)
while not stop.is_set():
    if not os.path.exists(path):
        time.sleep(0.001)
        continue
    try:
        s = read_surface_snapshot(path)
    except (StoreError, OSError, KeyError) as e:
        failures.append(str(e)[:300])
        continue
    snapshots += 1
    for split in s.splits:  # loss and accuracy: both shown or neither
        partial += int((np.isnan(s.values[split + "_loss"])
                        != np.isnan(s.values[split + "_accuracy"])).sum())
    for name, v in s.values.items():
        seen = first.setdefault(name, np.full(v.shape, np.nan))
        new = np.isnan(seen) & ~np.isnan(v)
        seen[new] = v[new]
        for k in np.flatnonzero(~np.isnan(v) & ~np.isnan(seen) & (v != seen)):
            conflicts.append([name, int(k), float(seen.flat[k]), float(v.flat[k])])
    n = int(s.computed.sum())
    if n != last:
        counts.append(n)
        publish(n)
        last = n
with open(report_path, "w") as f:
    json.dump({"first": {k: v.tolist() for k, v in first.items()}, "conflicts": conflicts,
               "partial": partial, "counts": counts, "failures": failures,
               "snapshots": snapshots}, f)
"""


@pytest.mark.child
def test_a_reader_racing_killed_and_resumed_compute_sees_only_final_values(tmp_path, tiny_ckpt):
    """The writer is SIGKILLed at random moments and resumed while a reader polls the
    file as fast as it can: the writer never fails because of the reader, no point is lost,
    the file ends as a run without any reader, and the reader never saw a value the file
    does not end with, nor a half-written point."""
    out, ref = tmp_path / "live.h5", tmp_path / "ref.h5"
    argv = compute_args(tiny_ckpt, out)  # 13 x 11 points, each evaluated alone
    code, err = run_to_end(compute.main, compute_args(tiny_ckpt, ref), tmp_path)
    assert code == 0, err

    seen, report = tmp_path / "seen", tmp_path / "report.json"
    with open(tmp_path / "reader.err", "w") as reader_err:
        reader = subprocess.Popen(
            [PYTHON, "-c", _READER, str(out), str(seen), str(report)],
            cwd=REPO,
            env=subprocess_env(),
            stdin=subprocess.PIPE,
            stderr=reader_err,
        )

    def seen_count() -> int:
        try:
            return int(seen.read_text())
        except (FileNotFoundError, ValueError):
            return -1

    try:
        wait_until(lambda: seen_count() >= 0, alive=lambda: reader.poll() is None, what="reader")
        rng = random.Random(3)
        on_sign = 0  # kills on the sign alone: each one after the reader saw a new count
        for _ in range(5):
            # A random moment of start-up or work, at the latest once the reader saw 1 to 4
            # more points: the 143 points are far from done when the writer dies.
            before, more = seen_count(), rng.randint(1, 4)
            within = rng.choice([rng.uniform(0.0, 1.0), HANG])
            on_sign += within == HANG
            kill_when(
                compute.main,
                argv,
                tmp_path,
                lambda before=before, more=more: seen_count() >= before + more,
                within=within,
            )
        assert on_sign >= 2
        code, err = run_to_end(compute.main, argv, tmp_path)  # resumes, to the end
        assert code == 0, err
        wait_until(lambda: seen_count() == 143, alive=lambda: reader.poll() is None, what="all")
    finally:
        reader.stdin.close()
        assert reader.wait(HANG) == 0, (tmp_path / "reader.err").read_text()
    saw = json.loads(report.read_text())

    final, expected = read_surface(out), read_surface(ref)
    assert final.computed.all()  # no point lost
    assert final.values.keys() == expected.values.keys()
    for key, v in expected.values.items():
        np.testing.assert_array_equal(final.values[key], v, err_msg=key)
    np.testing.assert_array_equal(read_per_sample(out), read_per_sample(ref))

    assert saw["conflicts"] == [] and saw["partial"] == 0, saw
    for key, values in saw["first"].items():
        first = np.array(values, dtype=np.float64)
        shown = ~np.isnan(first)
        np.testing.assert_array_equal(first[shown], final.values[key][shown], err_msg=key)
    # The reader saw the writers at work (a new count before each kill on the sign), and
    # never fewer points than before.
    partial_counts = [n for n in saw["counts"] if 0 < n < 143]
    assert len(partial_counts) >= on_sign and saw["counts"] == sorted(saw["counts"]), saw
    failed = saw["failures"]
    print(f"reader: {saw['snapshots']} snapshots, {len(failed)} failed reads: {failed[:3]}")


def test_live_waits_for_a_file_that_a_compute_creates_later(tmp_path, capsys):
    from landscape.viz.live import wait_for_files

    target = tmp_path / "later.h5"
    told, naps = [], []

    def sleep(seconds):  # the compute creates its file while the viewer waits
        naps.append(seconds)
        if len(naps) == 3:
            make_surface_file(tmp_path, "later.h5", shape=(5,))

    wait_for_files([target], timeout=60, said=told.append, sleep=sleep)
    assert told == [[str(target)]] and len(naps) == 3 and target.is_file()
    clock = iter(range(0, 1000, 30)).__next__  # 30 s per look: the timeout comes
    with pytest.raises(InputError, match="does not exist after waiting 60 s"):
        wait_for_files([tmp_path / "never.h5"], timeout=60, sleep=lambda s: None, clock=clock)


def test_live_without_waiting_names_the_missing_file(tmp_path, capsys):
    assert view.main([str(tmp_path / "none.h5"), "--live", "--wait", "0"]) == 2
    err = capsys.readouterr().err
    assert "none.h5' does not exist" in err and len(err.strip().splitlines()) == 1
