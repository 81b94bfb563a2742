"""A headless Chromium for the viewer's tests, driven through the DevTools protocol.

Over a pipe (``--remote-debugging-pipe``), standard library only: no browser download,
no Playwright. `find_chromium` finds the system's Chromium (``.ci/run`` installs it);
tests skip with the reason where there is none.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image
from procs import HANG, POLL

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
    # offline: no name resolves; only the live viewer's loopback server is reachable
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
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


class Page:
    """One browser tab: navigate, wait for the viewer, evaluate, click, screenshot."""

    def __init__(self, chrome: DevTools, width: int = 1600, height: int = 1000) -> None:
        self.chrome = chrome
        target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Network", "Page"):
            chrome.send(f"{domain}.enable", session=self.session)
        self.resize(width, height)

    def resize(self, width: int, height: int) -> None:
        self.chrome.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            self.session,
        )

    def open(self, url: str) -> None:
        self.chrome.send("Page.navigate", {"url": url}, self.session)
        self.wait_until("document.body && document.body.dataset.ready === '1'", "the page ready")

    def eval(self, expression: str):
        return self.chrome.evaluate(self.session, expression)

    def wait_until(self, expression: str, what: str, timeout: float = HANG) -> None:
        """Poll a JavaScript predicate: the page's own sign that a state is reached."""
        deadline = time.monotonic() + timeout
        while not self.eval(expression):
            assert time.monotonic() < deadline, f"hang: no {what} after {timeout:g} s"
            time.sleep(POLL * 10)

    def mouse(self, kind: str, x: float, y: float) -> None:
        params = {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
        if kind == "mouseMoved":
            params["button"] = "none"
        self.chrome.send("Input.dispatchMouseEvent", params, self.session)

    def click(self, x: float, y: float) -> None:
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y)
        self.mouse("mouseReleased", x, y)

    def box(self, selector: str) -> dict:
        return self.eval(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; })()"
        )

    def screenshot(self) -> np.ndarray:
        shot = self.chrome.send("Page.captureScreenshot", {"format": "png"}, self.session)
        png = base64.b64decode(shot["data"])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)

    def errors(self) -> list[str]:
        return page_errors(self.chrome.events, self.session)

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.chrome.events
            if e.get("sessionId") == self.session and e.get("method") == "Network.requestWillBeSent"
        ]


def coloured_fraction(rgb: np.ndarray) -> float:
    """Share of pixels in colour (not white, grey or black): a drawn plot has many."""
    return float(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).mean())
