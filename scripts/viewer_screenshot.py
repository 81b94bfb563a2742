"""The README's screenshot of the viewer: `landscape view` of the given files, drawn by
headless Chromium at 1600x1000 (the test suite's DevTools client, tests/browser.py).

    .venv/bin/python scripts/viewer_screenshot.py OUT.png FILE.h5 [FILE.h5 ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser import DevTools, Page, find_chromium  # noqa: E402
from PIL import Image  # noqa: E402

from landscape import view  # noqa: E402


def main(out: str, *files: str) -> None:
    exe = find_chromium()
    if exe is None:
        raise SystemExit("no Chromium found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "view.html"
        if view.main([*files, "--out", str(page_file), "--title", "resnet56 vs plain56"]):
            raise SystemExit("landscape view failed")
        chrome = DevTools(exe, Path(tmp) / "profile")
        try:
            page = Page(chrome, 1600, 1000)
            page.open(page_file.as_uri())
            rgb = page.screenshot()
        finally:
            chrome.close()
    Image.fromarray(rgb.astype("uint8")).save(out, optimize=True)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
