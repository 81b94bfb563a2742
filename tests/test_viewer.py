"""The interactive viewer (landscape.viz.viewer, landscape.view), with headless-Chromium tests.

The browser tests (tests/browser.py) run wherever Chromium is installed (``.ci/run``
installs it) and are skipped with the reason elsewhere. They check what a user sees:
pixels of the first screen, a hover, a click, the difference map, a narrow window.
"""

from __future__ import annotations

import html
import json
import re
import signal
import time

import numpy as np
import pytest
from browser import DevTools, Page, coloured_fraction, find_chromium
from helpers import PYTHON
from procs import POLL, Proc, compute_args, surface_points
from surfaces import make_surface_file

from landscape import view
from landscape.io.surface_file import read_surface
from landscape.viz import viewer
from landscape.viz.levels import LEVEL_PRESETS, resolve_scale

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
        "bowl": make_surface_file(d, "bowl.h5", shape=(11, 9), label="resnet56", errors=True),
        "sines": make_surface_file(
            d, "sines.h5", kind="sines", shape=(11, 9), label="plain56", config={"seed": 1}
        ),
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


def test_data_holds_each_surface_and_settings(files):
    surfaces = [read_surface(files[k]) for k in ("bowl", "evil", "line")]
    page = viewer.build_viewer_html(surfaces, title="cmp")
    data = embedded_data(page)
    assert data == json.loads(json.dumps(viewer.viewer_data(surfaces)))
    assert [s["name"] for s in data["surfaces"]] == [s.label for s in surfaces]
    for s, d in zip(surfaces, data["surfaces"], strict=True):
        assert d["alpha"] == s.alpha.tolist()
        assert (d["done"], d["total"]) == (int(s.computed.sum()), s.computed.size)
        for key, v in s.values.items():
            got = np.array(d["values"][key], dtype=float)  # null -> nan
            np.testing.assert_array_equal(got, v.T if s.is_2d else v)
    assert data["splits"] == ["train", "test"] and data["metrics"] == ["loss", "accuracy", "error"]
    settings = [dict(d["settings"]) for d in data["surfaces"]]
    assert settings[1]["seed"] == "7" and settings[1]["samples"] == "512"
    assert settings[0]["norm"] == "filter" and settings[0]["model"] == "resnet56"
    assert data["surfaces"][1]["file"] == "evil.h5" and data["live"] is None
    # the page's level rule and colours come from the static figures' definitions
    assert data["levels"]["presets"]["li2018"] == list(LEVEL_PRESETS["li2018"])
    assert data["styles"]["li2018"]["cmap3d"] == "coolwarm"
    assert data["colorscales"]["viridis"][0] == [0.0, "#440154"]


def test_labels_are_escaped(files):
    page = viewer.build_viewer_html([read_surface(files["evil"])], title="<b>t</b>")
    assert EVIL not in page and "alert(1)</script>" not in page
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    assert embedded_data(page)["surfaces"][0]["name"] == EVIL


MARKUP = {
    "bold": "<b>bold</b> & co",
    "link": '<a href="https://example.com/">a link</a>',
    "path": "<i>SGD</i>",
}


def plotly_text(text: str) -> str:
    """`text` as the page hands it to Plotly: its HTML subset escaped (&, <, >)."""
    return html.escape(text, quote=False)


def test_every_string_from_a_file_reaches_plotly_escaped(tmp_path):
    """Plotly renders <b>, <i>, <a href>, <br> ... in trace names, titles and legends: the
    page passes each name, title and hover text through esc() unless it is a literal.
    (The browser test below sees the result; this one names the line that forgets.)"""
    from importlib import resources

    js = (resources.files("landscape.viz") / "viewer_assets" / "viewer.js").read_text("utf-8")
    assert 'replace(/</g, "&lt;")' in js and 'replace(/&/g, "&amp;")' in js
    checked = 0
    for m in re.finditer(r"\b(name|text|hovertemplate): *([^\n]+)", js):
        value = m.group(2)
        for part in re.split(r"\s*\+\s*", value.split(", side")[0].rstrip(",}); ")):
            if not part:
                continue
            checked += 1
            ok = part.startswith(('"', "esc(", "(ratio ?"))
            assert ok, f"viewer.js gives Plotly unescaped text: {m.group(0).strip()}"
    assert checked >= 12
    # The data keeps the text as it is: the page writes it into the DOM as text.
    path = make_surface_file(tmp_path, "markup.h5", shape=(5, 4), label=MARKUP["bold"])
    data = viewer.viewer_data([read_surface(path)], paths={MARKUP["path"]: ([0], [0])})
    assert data["surfaces"][0]["name"] == MARKUP["bold"]
    assert data["surfaces"][0]["paths"][0]["label"] == MARKUP["path"]


def test_standalone_offline(files):
    page = viewer.build_viewer_html([read_surface(files["bowl"])])
    assert "<script src" not in page
    assert re.findall(r"<link [^>]*>", page) == [
        '<link rel="icon" href="data:,">'
    ]  # no favicon fetch
    assert "Plotly" in page and len(page) > 1_000_000  # plotly.js inlined


def test_metrics_and_paths(files):
    s = read_surface(files["bowl"])
    t = np.linspace(0, 1, 5)
    page = viewer.build_viewer_html(
        [s],
        metrics={"resnet56": {"sharpness": 1.23456789, "<i>x</i>": 2}},
        paths={"SGD": (t, -t)},
    )
    (d,) = embedded_data(page)["surfaces"]
    assert d["scores"] == [["sharpness", "1.235"], ["<i>x</i>", "2"]]
    (p,) = d["paths"]
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
    # Plotly's text entities: &amp; &lt; &gt; and numeric ones (&quot; would show as such)
    assert [t.text for t in fig.layout.annotations] == ["resnet56", plotly_text(EVIL)]
    assert a.name == "resnet56" and b.name == plotly_text(EVIL) and "&quot;" not in b.name
    assert a.showscale and not b.showscale

    logged = viewer.plotly_comparison([bowl], log=True, names=["r"])
    np.testing.assert_allclose(np.array(logged.data[0].z, dtype=float), np.log10(bowl.get().T))
    assert logged.layout.scene.zaxis.title.text == "log10 train loss"
    with pytest.raises(ValueError, match="1-D"):
        viewer.plotly_comparison([read_surface(files["line"])])


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def chrome(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium not installed (apt-get install chromium; .ci/run installs it)")
    browser = DevTools(exe, tmp_path_factory.mktemp("profile"))
    yield browser
    browser.close()


def nearest(axis: np.ndarray, v: float) -> int:
    return int(np.argmin(np.abs(axis - v)))


def data_xy(page: Page, plot: str, alpha: float, beta: float) -> tuple[float, float]:
    """The window position of (alpha, beta) on a 2-D Plotly panel, from its own axes
    (scrolled into view first: a mouse acts only inside the window)."""
    return page.eval(
        f"(() => {{ const d = document.getElementById('{plot}'), L = d._fullLayout;"
        "d.scrollIntoView({block: 'center'}); const r = d.getBoundingClientRect();"
        f"return [r.x + L.xaxis._offset + L.xaxis.l2p({alpha}),"
        f"        r.y + L.yaxis._offset + L.yaxis.l2p({beta})]; }})()"
    )


def click_point(page: Page, plot: str, alpha: float, beta: float) -> None:
    """Click (alpha, beta) on a 2-D panel once the page's hover is there: Plotly reports a
    click at the point it last hovered, and its hover is throttled, so a press right after
    the move may land on the previous point. The sign: the readout names the point."""
    x, y = data_xy(page, plot, alpha, beta)
    page.mouse("mouseMoved", x, y)
    page.wait_until(
        f"(document.getElementById('readout').textContent || '')"
        f".includes('α = {alpha:.4f}, β = {beta:.4f}')",
        f"the hover at ({alpha}, {beta})",
    )
    page.mouse("mousePressed", x, y)
    page.mouse("mouseReleased", x, y)


@pytest.mark.child
def test_browser_first_screen_hover_click_and_difference(chrome, files, tmp_path):
    out = tmp_path / "view.html"
    names = ("bowl", "sines", "evil", "line", "line2")
    surfaces = [read_surface(files[k]) for k in names]
    paths = [{"SGD": ([0, 0.5], [0, 0.5])}, None, None, None, None]
    viewer.write_viewer(out, surfaces, paths=paths)
    page = Page(chrome, 1600, 1000)
    page.open(out.as_uri())

    # The first screen (1600x1000) shows every 3-D surface, large and drawn.
    rgb = page.screenshot()
    for i in range(3):
        box = page.box(f"#s{i}-3d")
        assert box["y"] + box["h"] <= 1000 and box["x"] + box["w"] <= 1600, box
        assert box["w"] >= 380 and box["h"] >= 320, box
        x, y, w, h = (int(box[k]) for k in ("x", "y", "w", "h"))
        assert coloured_fraction(rgb[y : y + h, x : x + w]) > 0.05, f"3-D panel {i} is blank"
    assert page.eval("document.querySelectorAll('h2')[2].textContent") == EVIL
    assert not page.eval("document.body.dataset.pwned || ''")
    # 1-D files live in the overlay only, not in panels of their own
    assert page.eval("document.querySelectorAll('[id$=\"-line\"]').length") == 0
    overlay = page.eval("document.getElementById('overlay-1d').data.map(t => t.name)")
    assert [n for n in overlay if n] == ["line a", "resnet56 (line2.h5)"]
    # the settings table: one column per surface, rows that differ highlighted
    rows = page.eval(
        "Array.from(document.querySelectorAll('#table tbody tr')).map(r =>"
        " [r.cells[0].textContent, r.className])"
    )
    assert dict(rows)["seed"] == "differs" and dict(rows)["norm"] == ""

    # Hover over one map: the values of every surface at that point, standard errors too.
    x, y = data_xy(page, "s0-contour", 0.2, 0.25)
    page.mouse("mouseMoved", x, y)
    page.wait_until("!document.getElementById('readout').hidden", "hover readout")
    text = page.eval("document.getElementById('readout').textContent")
    bowl = read_surface(files["bowl"])
    i, j = nearest(bowl.alpha, 0.2), nearest(bowl.beta, 0.25)
    assert "α = 0.2000, β = 0.2500" in text
    loss, se = bowl.get()[i, j], bowl.standard_error()[i, j]
    assert f"train loss{loss:#.5g} ± {se:#.5g}" in text  # as JavaScript toPrecision(5)
    assert "plain56" in text and EVIL in text
    shapes = page.eval("document.getElementById('s1-contour').layout.shapes.length")
    assert shapes == 2  # the crosshair shows on the other maps

    # A click fixes the point: profiles of every 2-D surface through it, from the grid.
    renders = page.eval("Number(document.body.dataset.renders)")
    click_point(page, "s0-contour", 0.4, -0.25)
    page.wait_until(f"Number(document.body.dataset.renders) > {renders}", "a redraw on click")
    fixed = page.eval("window.landscapeState().state.fixed")
    assert (fixed["alpha"], fixed["beta"]) == pytest.approx((0.4, -0.25))
    assert page.eval("document.getElementById('profile-alpha-title').textContent").startswith(
        "Along α at β = -0.250"
    )
    along = page.eval(
        "document.getElementById('profile-alpha').data.filter(t => t.name).map(t => [t.name, t.y])"
    )
    # (Plotly draws a subset of HTML in names: they reach it escaped, shown as text)
    assert [name for name, _ in along] == ["resnet56 (bowl.h5)", "plain56", plotly_text(EVIL)]
    j = nearest(bowl.beta, -0.25)
    np.testing.assert_allclose(np.array(along[0][1], float), bowl.get()[:, j])
    across = page.eval(
        "document.getElementById('profile-beta').data.filter(t => t.name).map(t => t.y)"
    )
    sines = read_surface(files["sines"])
    np.testing.assert_allclose(np.array(across[1], float), sines.get()[nearest(sines.alpha, 0.4)])
    # ... with a 95% band where the file has standard errors (the bowl does)
    bands = page.eval("document.getElementById('profile-alpha').data.filter(t => t.fill).length")
    assert bands == 1

    # Two surfaces on one grid: their difference, A - B and log10 A / B.
    assert not page.eval("document.getElementById('diff').hidden")
    z = np.array(page.eval("document.getElementById('diff-plot').data[0].z"), float)
    np.testing.assert_allclose(z, (bowl.get() - sines.get()).T)
    page.eval(
        "(() => { const m = document.getElementById('diff-mode'); m.value = 'ratio';"
        " m.dispatchEvent(new Event('change')); })()"
    )
    z = np.array(page.eval("document.getElementById('diff-plot').data[0].z"), float)
    np.testing.assert_allclose(z, np.log10(bowl.get() / sines.get()).T)

    # The controls restyle every view; the cameras follow each other.
    state = page.eval("""(async () => {
      const set = (id, prop, v, ev) => { const e = document.getElementById(id);
        e[prop] = v; e.dispatchEvent(new Event(ev)); };
      set('metric', 'value', 'error', 'change');
      set('split', 'value', 'test', 'change');
      set('scale', 'value', 'log', 'change');
      set('clip', 'value', '90', 'input');
      await Plotly.relayout('s0-3d', {'scene.camera.eye': {x: 0.3, y: -2.1, z: 0.9}});
      const cam = document.getElementById('s1-3d').layout.scene.camera.eye;
      return {cam: [cam.x, cam.y, cam.z],
              clip: document.getElementById('clip-value').textContent,
              msg: document.getElementById('overlay-msg').textContent,
              z: document.getElementById('s0-3d').layout.scene.zaxis.title.text};
    })()""")
    assert state["cam"] == pytest.approx([0.3, -2.1, 0.9])
    assert state["clip"].startswith("p90 = ")
    assert state["msg"] == "resnet56 (line2.h5): no test error values"  # line2 has no test split
    assert state["z"] == "log10 test error"

    # Li et al.'s style: their levels and colour maps; a level count of one's own.
    page.eval(
        "(() => { const s = document.getElementById('style'); s.value = 'li2018';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert page.eval("document.getElementById('levels').value") == "li2018"
    got = page.eval("window.landscapeState().scale.levels")
    np.testing.assert_allclose(got, LEVEL_PRESETS["li2018"])
    colours = page.eval("document.getElementById('s0-3d').data[0].colorscale")
    assert colours == viewer.viewer_data([bowl])["colorscales"]["coolwarm"]
    page.eval(
        "(() => { const n = document.getElementById('nlevels'); n.value = '7';"
        " n.dispatchEvent(new Event('change')); })()"
    )
    assert len(page.eval("window.landscapeState().scale.levels")) == 7
    contours = page.eval(
        "document.getElementById('s0-contour').data.filter(t => t.type === 'contour').length"
    )
    assert contours == 7  # one trace per level

    assert not page.errors(), page.errors()
    urls = page.requested_urls()
    assert urls and all(u.startswith(("file:", "data:", "blob:", "about:")) for u in urls), urls


@pytest.mark.child
def test_browser_markup_in_labels_shows_as_text(chrome, tmp_path):
    """Labels holding markup (<b>, <a href>, <i>): the legends and titles show them as
    text; no link and no bold text is drawn (issue #35)."""
    bold = read_surface(make_surface_file(tmp_path, "b.h5", shape=(7, 5), label=MARKUP["bold"]))
    link = read_surface(
        make_surface_file(tmp_path, "l.h5", kind="sines", shape=(7, 5), label=MARKUP["link"])
    )
    line = read_surface(make_surface_file(tmp_path, "line.h5", shape=(9,), label=MARKUP["bold"]))
    out = tmp_path / "view.html"
    paths = {MARKUP["path"]: ([0.0, 0.5], [0.0, 0.5])}
    viewer.write_viewer(out, [bold, link, line], paths=[paths, None, None])
    page = Page(chrome, 1400, 1000)
    page.open(out.as_uri())
    page.wait_until("Number(document.body.dataset.renders) >= 1", "a first render")
    drawn = page.eval("""(() => {
      const text = (sel) => Array.from(document.querySelectorAll(sel)).map(t => t.textContent);
      return {
        links: document.querySelectorAll('.js-plotly-plot svg a').length,
        bold: Array.from(document.querySelectorAll('.js-plotly-plot svg tspan'))
          .filter(t => /bold|italic/.test(t.getAttribute('style') || '')).length,
        legends: text('.js-plotly-plot .legendtext'),
        titles: text('#diff-plot .gtitle'),
      };
    })()""")
    assert drawn["links"] == 0 and drawn["bold"] == 0, drawn
    legends = drawn["legends"]
    name = f"{MARKUP['bold']} (b.h5)"  # the label repeats (the 1-D file's): its file added
    assert MARKUP["path"] in legends, legends  # the path's legend on the contour map
    assert legends.count(name) == 2 and legends.count(MARKUP["link"]) == 2, legends  # profiles
    assert drawn["titles"] == [f"{name} − {MARKUP['link']} (black: 0)"], drawn
    assert not page.errors(), page.errors()


@pytest.mark.child
@pytest.mark.parametrize(
    "opts",
    [{}, {"levels": "li2018"}, {"levels": 9}, {"log": True}, {"vmin": 0.3, "vmax": 40.0}],
    ids=["auto", "li2018", "count", "log", "range"],
)
def test_browser_levels_equal_the_static_figures(chrome, tmp_path, opts):
    """The page computes its scale in JavaScript; it must pick what `landscape plot` picks."""
    out = tmp_path / "v.html"
    rng = np.random.default_rng(0)
    a = np.linspace(-1, 1, 21)
    aa, bb = np.meshgrid(a, a, indexing="ij")
    arrays = {
        "bowl": 0.1 + 5 * (aa**2 + bb**2),
        "three decades": 0.01 * 10 ** (3 * np.sqrt((aa**2 + bb**2) / 2)),
        "real-ish": 0.19 + 16 * (aa**2 + bb**2) ** 1.5 + 0.01 * rng.random(aa.shape),
        "signed": np.sin(3 * aa) * np.cos(2 * bb),
    }
    viewer.write_viewer(out, [read_surface(make_surface_file(tmp_path, "x.h5", shape=(5, 4)))])
    page = Page(chrome, 800, 600)
    page.open(out.as_uri())
    for name, z in arrays.items():
        if opts.get("log") and z.min() <= 0:
            continue
        want = resolve_scale([z], **opts)
        js = {"log": opts.get("log"), "levels": opts.get("levels", "auto")}
        js |= {k: opts.get(k) for k in ("vmin", "vmax")}
        got = page.eval(f"window.landscapeScale([{json.dumps(z.tolist())}], {json.dumps(js)})")
        assert got["log"] == want.log, name
        np.testing.assert_allclose(got["levels"], want.levels, rtol=1e-9, err_msg=name)
        assert (got["vmin"], got["vmax"]) == pytest.approx((want.vmin, want.vmax)), name


@pytest.mark.child
def test_browser_narrow_window_wraps_the_panels(chrome, files, tmp_path):
    out = tmp_path / "view.html"
    viewer.write_viewer(out, [read_surface(files[k]) for k in ("bowl", "sines", "line")])
    page = Page(chrome, 600, 900)
    page.open(out.as_uri())
    a, b = page.box("#s0-3d"), page.box("#s1-3d")
    assert b["y"] >= a["y"] + a["h"], "the 3-D panels overlap instead of wrapping"
    assert a["w"] <= 600 and b["w"] <= 600
    assert page.eval("document.documentElement.scrollWidth") <= 600, "horizontal overflow"
    assert not page.errors(), page.errors()


SERVING = r"^serving (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)$"


def pause_between_writes(compute: Proc, out) -> int:
    """SIGSTOP the compute where its file reads whole, and return the points it holds.

    A writer stopped in the middle of a flush leaves a file no reader can open until it
    goes on; then let it go on a little and stop it again.
    """
    while True:
        compute.send_signal(signal.SIGSTOP)
        try:
            return int(read_surface(out).computed.sum())
        except ValueError:  # StoreError: stopped mid-flush
            compute.send_signal(signal.SIGCONT)
            time.sleep(POLL)


@pytest.mark.child
def test_browser_live_page_grows_with_compute_and_ends_as_the_static_page(
    chrome, tmp_path, tiny_ckpt
):
    out = tmp_path / "live.h5"
    grid = ("--x", "-1:1:15", "--y", "-1:1:15")
    compute = Proc([PYTHON, "-m", "landscape.compute", *compute_args(tiny_ckpt, out, *grid)])
    with compute:
        compute.wait_until(lambda: surface_points(out) >= 1, what="a first point on disk")
        first = pause_between_writes(compute, out)
        assert first < 225, "the compute finished before it could be watched"
        cmd = [PYTHON, "-m", "landscape.view", str(out), "--live", "--interval", "0.2"]
        with Proc(cmd) as server:
            url = server.wait_for(SERVING, stream="stdout").group(1)
            page = Page(chrome, 1600, 1000)
            page.open(url)
            points = "Number(document.body.dataset.points)"
            page.wait_until(f"{points} === {first}", f"the page showing {first} points")
            # a camera and a chosen point of the user's own, to survive the redraws
            eye = {"x": 0.4, "y": -1.9, "z": 1.2}
            page.eval(
                f"Plotly.relayout('s0-3d', {{'scene.camera.eye': {json.dumps(eye)}}}).then(() => 1)"
            )
            x, y = data_xy(page, "s0-contour", 0.0, 0.0)
            page.click(x, y)
            page.wait_until("window.landscapeState().state.fixed !== null", "a fixed point")
            fixed = page.eval("window.landscapeState().state.fixed")
            page.eval("window.scrollTo(0, 0)")
            shot1, status1 = (
                page.screenshot(),
                page.eval("document.getElementById('status').textContent"),
            )
            compute.send_signal(signal.SIGCONT)
            compute.wait_until(  # two rows more: new quads of the surface on screen
                lambda: surface_points(out) >= min(first + 30, 225), what="more points on disk"
            )
            second = pause_between_writes(compute, out)
            page.wait_until(f"{points} === {second}", f"the page showing {second} points")
            assert page.eval("window.landscapeState().state.fixed") == fixed
            cam = page.eval("document.getElementById('s0-3d').layout.scene.camera.eye")
            assert cam == pytest.approx(eye)
            page.eval("window.scrollTo(0, 0)")
            shot2, status2 = (
                page.screenshot(),
                page.eval("document.getElementById('status').textContent"),
            )
            assert f": {first} / 225 points" in status1 and f": {second} / 225 points" in status2
            box = page.box("#s0-3d")
            x, y, w, h = (int(box[k]) for k in ("x", "y", "w", "h"))
            changed = np.abs(shot1[y : y + h, x : x + w] - shot2[y : y + h, x : x + w]).max(axis=2)
            assert (changed > 30).sum() > 500, "the 3-D surface did not grow on screen"
            compute.send_signal(signal.SIGCONT)
            code, _, err = compute.finish()
            assert code == 0, err
            page.wait_until(
                "document.getElementById('status').textContent.includes('complete')",
                "the page complete",
            )
            assert page.eval("document.body.dataset.points") == "225"
            live = page.eval("window.landscapeState().data")
            live_z = page.eval("document.getElementById('s0-3d').data[0].z")
            assert not page.errors(), page.errors()
    # The finished live page shows what `landscape view` writes for the finished file.
    static = tmp_path / "static.html"
    assert view.main([str(out), "--out", str(static)]) == 0
    page = Page(chrome, 1600, 1000)
    page.open(static.as_uri())
    want = page.eval("window.landscapeState().data")
    for key in ("values", "done", "total", "settings", "scores", "alpha", "beta", "name"):
        assert live["surfaces"][0][key] == want["surfaces"][0][key], key
    assert live_z == page.eval("document.getElementById('s0-3d').data[0].z")


def test_write_viewer_from_python_shows_the_metric_rows_the_command_shows(tmp_path):
    from landscape.io.surfaces import read_surface
    from landscape.viz.viewer import write_viewer

    src = make_surface_file(tmp_path, "s.h5", shape=(9, 9))
    page = write_viewer(tmp_path / "p.html", [read_surface(src)]).read_text()
    assert "nonconvex_fraction" in page and "basin_radius" in page
    bare = write_viewer(tmp_path / "q.html", [read_surface(src)], metrics={}).read_text()
    assert "basin_radius" not in bare


@pytest.mark.child
def test_browser_a_square_domain_draws_square_and_log_profiles_read_as_numbers(chrome, tmp_path):
    """A lone surface's map spans the window yet keeps one unit of alpha as long as one of
    beta; a log profile axis labels whole numbers, rising, and holds the profile's minimum."""
    src = make_surface_file(tmp_path, "spiky.h5", kind="spiky", shape=(21, 21))
    out = viewer.write_viewer(tmp_path / "v.html", [read_surface(src)])
    page = Page(chrome, 1600, 1000)
    page.open(out.as_uri())
    page.wait_until("document.getElementById('s0-contour').data", "the map")
    lengths = page.eval(
        "(() => { const L = document.getElementById('s0-contour')._fullLayout;"
        "return [L.xaxis._length, L.yaxis._length]; })()"
    )
    assert lengths[0] == pytest.approx(lengths[1], rel=0.03), lengths
    assert page.eval("window.landscapeState().scale.log"), "the case needs a log scale"
    page.wait_until("document.getElementById('profile-alpha').data", "the profiles")
    labels = page.eval(
        "Array.from(document.querySelectorAll('#profile-alpha .ytick text'))"
        ".map(t => t.textContent)"
    )
    values = [float(t.replace("\u2212", "-")) for t in labels]
    assert len(values) >= 3 and values == sorted(values) and len(set(values)) == len(values)
    low = page.eval(
        "(() => { const d = document.getElementById('profile-alpha');"
        "const ys = d.data.filter(t => t.name).flatMap(t => t.y).filter(v => v > 0);"
        "return [Math.log10(Math.min(...ys)), d._fullLayout.yaxis.range[0]]; })()"
    )
    assert low[1] <= low[0], low


@pytest.mark.child
def test_browser_hover_says_interpolated(chrome, tmp_path):
    """A surface computed with --tolerance: the hover says which points are predictions,
    and the settings say how many were evaluated."""
    from landscape.io.surface_file import SurfaceFile

    path = make_surface_file(tmp_path, "adaptive.h5", shape=(11, 9), label="adaptive")
    with SurfaceFile(path) as handle:
        handle.add_refinement()
        handle.set_tolerance(0.05)
        handle.mark((np.array([2]), np.array([6])), True)
    surface = read_surface(path)
    assert surface.interpolated.sum() == 1 and surface.tolerance == 0.05
    out = tmp_path / "view.html"
    viewer.write_viewer(out, [surface])
    settings = dict(viewer.viewer_data([surface])["surfaces"][0]["settings"])
    assert settings["adaptive"] == "98 of 99 points evaluated, the rest interpolated within 0.05"
    page = Page(chrome, 1400, 900)
    page.open(out.as_uri())
    for (i, j), said in (((2, 6), True), ((7, 3), False)):
        x, y = data_xy(page, "s0-contour", surface.alpha[i], surface.beta[j])
        page.mouse("mouseMoved", x, y)
        page.wait_until(
            "!document.getElementById('readout').hidden && document.getElementById('readout')"
            f".textContent.includes('α = {surface.alpha[i]:.4f}')",
            "hover readout",
        )
        text = page.eval("document.getElementById('readout').textContent")
        assert ("interpolated (loss within 0.05 by design)" in text) is said, text
        page.mouse("mouseMoved", 1, 1)
