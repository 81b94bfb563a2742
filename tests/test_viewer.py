"""The interactive viewer (landscape.viz.viewer, landscape.view), with a headless-Chromium test.

The browser test drives Chromium through the DevTools protocol over a pipe
(``--remote-debugging-pipe``, standard library only). It runs wherever Chromium is
installed (``.ci/run`` installs it) and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from procs import HANG
from surfaces import make_surface_file

from landscape import view
from landscape.io.surface_file import read_surface
from landscape.viz import viewer

EVIL = '<img src=x onerror="document.body.dataset.pwned=1"><script>alert(1)</script>'


def embedded_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="landscape-data">(.*?)</script>', page, re.S)
    assert m, "no embedded data"
    assert "<" not in m.group(1)
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("viewer")
    return {
        "bowl": make_surface_file(d, "bowl.h5", shape=(11, 9), label="resnet56"),
        "evil": make_surface_file(
            d,
            "evil.h5",
            kind="spiky",
            shape=(9, 11),
            label=EVIL,
            partial=0.3,
            config={"seed": 7, "samples": 512},
        ),
        "line": make_surface_file(d, "line.h5", kind="sines", shape=(21,), label="line a"),
        "line2": make_surface_file(d, "line2.h5", shape=(15,), splits=("train",)),
    }


def test_html_holds_each_surface_and_settings(files):
    surfaces = [read_surface(files[k]) for k in ("bowl", "evil", "line")]
    page = viewer.build_viewer_html(surfaces, title="cmp")
    data = embedded_data(page)
    assert [s["name"] for s in data["surfaces"]] == [s.label for s in surfaces]
    for s, d in zip(surfaces, data["surfaces"], strict=True):
        assert d["alpha"] == s.alpha.tolist()
        for key, v in s.values.items():
            got = np.array(d["values"][key], dtype=float)  # null -> nan
            np.testing.assert_array_equal(got, v.T if s.is_2d else v)
    assert data["splits"] == ["train", "test"] and data["metrics"] == ["loss", "accuracy", "error"]
    assert 'id="s0-3d"' in page and 'id="s1-contour"' in page and 'id="s2-line"' in page
    # settings beside each surface
    assert "<th>seed</th><td>7</td>" in page and "<th>samples</th><td>512</td>" in page
    assert "<th>norm</th><td>filter</td>" in page and "<th>model</th><td>resnet56</td>" in page
    assert "evil.h5" in page


def test_labels_are_escaped(files):
    page = viewer.build_viewer_html([read_surface(files["evil"])], title="<b>t</b>")
    assert EVIL not in page and "alert(1)</script>" not in page
    assert html.escape(EVIL) in page
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    assert embedded_data(page)["surfaces"][0]["name"] == EVIL


def test_standalone_offline(files):
    page = viewer.build_viewer_html([read_surface(files["bowl"])])
    assert "<script src" not in page and "<link" not in page
    assert "Plotly" in page and len(page) > 1_000_000  # plotly.js inlined


def test_metrics_and_paths(files):
    s = read_surface(files["bowl"])
    t = np.linspace(0, 1, 5)
    page = viewer.build_viewer_html(
        [s],
        metrics={"resnet56": {"sharpness": 1.23456789, "<i>x</i>": 2}},
        paths={"SGD": (t, -t)},
    )
    assert "<th>sharpness</th><td>1.235</td>" in page
    assert "&lt;i&gt;x&lt;/i&gt;" in page
    (p,) = embedded_data(page)["surfaces"][0]["paths"]
    assert p["label"] == "SGD" and p["beta"] == (-t).tolist()
    with pytest.raises(ValueError, match="one per surface"):
        viewer.build_viewer_html([s], paths=[{}, {}])


def test_view_cli(files, tmp_path, capsys):
    out = tmp_path / "v.html"
    assert view.main([str(files["bowl"]), str(files["line"]), "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    for argv, message in [
        ([str(tmp_path / "none.h5")], "does not exist"),
        ([str(files["bowl"]), "--out", str(tmp_path / "v.png")], ".html"),
    ]:
        assert view.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_plotly_comparison_shares_one_scale(files):
    bowl, evil = read_surface(files["bowl"]), read_surface(files["evil"])
    fig = viewer.plotly_comparison([bowl, evil], log=False)
    a, b = fig.data
    both = np.concatenate([bowl.get().ravel(), evil.get().ravel()])
    lo, hi = np.nanmin(both), np.nanmax(both)
    assert (a.cmin, a.cmax) == (b.cmin, b.cmax) == pytest.approx((lo, hi))
    assert list(fig.layout.scene.zaxis.range) == list(fig.layout.scene2.zaxis.range)
    z = np.array(b.z, dtype=float)  # (ny, nx); NaN where not computed
    np.testing.assert_array_equal(np.isnan(z), np.isnan(evil.get().T))
    np.testing.assert_allclose(np.array(a.z, dtype=float), bowl.get().T)
    assert [t.text for t in fig.layout.annotations] == ["resnet56", html.escape(EVIL)]
    assert a.showscale and not b.showscale

    logged = viewer.plotly_comparison([bowl], log=True, names=["r"])
    np.testing.assert_allclose(np.array(logged.data[0].z, dtype=float), np.log10(bowl.get().T))
    assert logged.layout.scene.zaxis.title.text == "log10 train loss"
    with pytest.raises(ValueError, match="1-D"):
        viewer.plotly_comparison([read_surface(files["line"])])


# ---------------------------------------------------------------- headless Chromium

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--enable-unsafe-swiftshader",  # software WebGL for the 3-D views
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no name resolves
    "--proxy-server=http://127.0.0.1:9",
    "--remote-debugging-pipe",
)
OFFLINE_SCHEMES = ("file:", "data:", "blob:", "about:")


def find_chromium() -> str | None:
    found = os.environ.get("LANDSCAPE_CHROMIUM")
    return found or next(filter(None, (shutil.which(b) for b in BROWSERS)), None)


class DevTools:
    """A minimal DevTools-protocol client over Chromium's --remote-debugging-pipe."""

    def __init__(self, exe: str, profile) -> None:
        to_r, self._w = os.pipe()
        self._r, from_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4: a tiny launcher
        # moves the pipe ends there (copies first, in case they already are 3 or 4).
        launcher = (
            "import os, sys; r, w = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2])); "
            "os.dup2(r, 3); os.dup2(w, 4); os.set_inheritable(3, True); "
            "os.set_inheritable(4, True); os.execvp(sys.argv[3], sys.argv[3:])"
        )
        cmd = [
            sys.executable,
            "-c",
            launcher,
            str(to_r),
            str(from_w),
            exe,
            *CHROME_FLAGS,
            f"--user-data-dir={profile}",
        ]
        self.proc = subprocess.Popen(
            cmd, pass_fds=(to_r, from_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = HANG,
    ) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") != self._id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply["result"]

    def evaluate(self, session: str, expression: str):
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError, EOFError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


def page_errors(events: list[dict], session: str) -> list[str]:
    errors = []
    for e in events:
        if e.get("sessionId") != session:
            continue
        p = e.get("params", {})
        if e.get("method") == "Runtime.exceptionThrown":
            errors.append(json.dumps(p["exceptionDetails"])[:500])
        elif e.get("method") == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            errors.append(json.dumps(p["args"])[:500])
        elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
            errors.append(p["entry"]["text"][:500])
    return errors


def test_browser_renders_offline_without_errors(files, tmp_path):
    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium not installed (apt-get install chromium; .ci/run installs it)")
    page = tmp_path / "view.html"
    surfaces = [read_surface(files[k]) for k in ("bowl", "evil", "line", "line2")]
    viewer.write_viewer(page, surfaces, paths=[{"SGD": ([0, 0.5], [0, 0.5])}, None, None, None])
    chrome = DevTools(exe, tmp_path / "profile")
    try:
        target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Network", "Page"):
            chrome.send(f"{domain}.enable", session=session)
        chrome.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        chrome.send("Page.navigate", {"url": page.as_uri()}, session)
        deadline = time.monotonic() + HANG
        ready = "document.body && document.body.dataset.ready === '1'"
        while not chrome.evaluate(session, ready):
            assert time.monotonic() < deadline, "hang: the viewer never finished rendering"
            time.sleep(0.2)
        # drawn: 2-D views as SVG, 3-D views as WebGL, 1-D charts and the overlay
        assert chrome.evaluate(session, "document.querySelectorAll('.main-svg').length") >= 6
        assert chrome.evaluate(session, "document.querySelectorAll('#s1-3d canvas').length") > 0
        assert (
            chrome.evaluate(session, "document.querySelectorAll('#overlay-1d .trace').length") == 2
        )
        assert (
            chrome.evaluate(session, "document.querySelector('h2').textContent")
            == "resnet56 (bowl.h5)"
        )
        assert chrome.evaluate(session, "document.querySelectorAll('h2')[1].textContent") == EVIL
        assert not chrome.evaluate(session, "document.body.dataset.pwned || ''")

        # the controls restyle every view; the cameras follow each other
        script = """(async () => {
          const set = (id, prop, v, ev) => { const e = document.getElementById(id);
            e[prop] = v; e.dispatchEvent(new Event(ev)); };
          set('metric', 'value', 'error', 'change');
          set('split', 'value', 'test', 'change');
          set('log', 'checked', true, 'change');
          set('clip', 'value', '90', 'input');
          const eye = {x: 0.3, y: -2.1, z: 0.9};
          await Plotly.relayout('s0-3d', {'scene.camera.eye': eye});
          await new Promise(r => setTimeout(r, 300));
          const cam = document.getElementById('s1-3d').layout.scene.camera.eye;
          return {renders: document.body.dataset.renders, cam: [cam.x, cam.y, cam.z],
                  clip: document.getElementById('clip-value').textContent,
                  msg: document.getElementById('s3-msg').textContent,
                  z: document.getElementById('s0-3d').layout.scene.zaxis.title.text};
        })()"""
        state = chrome.evaluate(session, script)
        assert state["renders"] == "5"
        assert state["cam"] == pytest.approx([0.3, -2.1, 0.9])
        assert state["clip"].startswith("p90 = ")
        assert "no test error" in state["msg"]  # line2 has no test split: said so
        assert state["z"] == "log10 test error"

        shot = chrome.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(shot))).convert("RGB"), float)
        assert rgb.mean(axis=2).var() > 100, "the screenshot is blank"
        assert ((rgb.max(axis=2) - rgb.min(axis=2)) > 60).mean() > 0.02, "no coloured plot"

        errors = page_errors(chrome.events, session)
        assert not errors, errors
        urls = [
            e["params"]["request"]["url"]
            for e in chrome.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        assert urls and all(u.startswith(OFFLINE_SCHEMES) for u in urls), urls
    finally:
        chrome.close()
