"""Static figures (landscape.viz.figures) and their command line (landscape.plot)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from PIL import Image
from surfaces import analytic_values, make_surface_file

from landscape import compute, plot
from landscape.io.surface_file import StoreError, read_surface
from landscape.io.surfaces import surface_values
from landscape.surface.grid import coarse_to_fine, finest_complete, grid_origin
from landscape.viz import figures
from landscape.viz.levels import resolve_scale
from landscape.viz.lines import plot_1d


def image_stats(path) -> tuple[float, float]:
    """(grey-level variance, fraction of colourful pixels) of an image file."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    return float(rgb.mean(axis=2).var()), float((chroma > 60).mean())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("surfaces")
    return {
        "bowl": make_surface_file(d, "bowl.h5", kind="bowl", shape=(21, 13), label="resnet56"),
        "sines": make_surface_file(d, "sines.h5", kind="sines", shape=(15, 19), label="plain56"),
        "spiky": make_surface_file(d, "spiky.h5", kind="spiky", shape=(25, 25)),
        "partial": make_surface_file(d, "partial.h5", shape=(21, 13), partial=0.4),
        "line": make_surface_file(d, "line.h5", kind="sines", shape=(41,), label="a"),
        "line2": make_surface_file(d, "line2.h5", shape=(31,), partial=0.3, label="b"),
    }


def axes():
    return Figure().add_subplot()


def test_levels_as_requested(files):
    s = read_surface(files["bowl"])
    cs = figures.plot_contour(axes(), s, vmin=0.5, vmax=4.0, levels=8)
    np.testing.assert_allclose(cs.levels, np.linspace(0.5, 4.0, 8))
    cs = figures.plot_contourf(axes(), s, levels=[0.2, 1.0, 3.0], log=False)
    np.testing.assert_allclose(cs.levels, [0.2, 1.0, 3.0])
    cs = figures.plot_contour(axes(), s, vmin=0.1, vmax=10.0, levels=5, log=True)
    np.testing.assert_allclose(cs.levels, np.geomspace(0.1, 10.0, 5))
    assert isinstance(cs.norm, LogNorm)


def test_default_levels_are_round_and_cover_the_data(files):
    s = read_surface(files["bowl"])
    z = s.get("train", "loss")
    scale = resolve_scale([z])
    assert not scale.log  # a smooth bowl: linear
    assert scale.vmin == pytest.approx(np.nanmin(z)) and scale.vmax == pytest.approx(z.max())
    assert 5 <= len(scale.levels) <= 16
    steps = np.diff(scale.levels)
    np.testing.assert_allclose(steps, steps[0])
    assert steps[0] in (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0)
    assert scale.levels[0] >= scale.vmin and scale.levels[-1] <= scale.vmax


def test_default_scale_is_log_for_huge_peaks(files):
    s = read_surface(files["spiky"])
    scale = resolve_scale([s.get("train", "loss")])
    assert scale.log and scale.vmax > 1e3
    decades = np.log10(scale.levels)
    assert np.all(np.diff(decades) > 0) and len(scale.levels) >= 5


def test_comparison_shares_levels_and_colour_scale(files):
    a, b = read_surface(files["bowl"]), read_surface(files["sines"])
    for kind in ("contour", "contourf", "heatmap"):
        fig = Figure()
        axs = [fig.add_subplot(1, 2, k + 1) for k in range(2)]
        arts = figures.plot_comparison(axs, [a, b], kind=kind, levels=None)
        lo = min(np.nanmin(a.get("train", "loss")), np.nanmin(b.get("train", "loss")))
        hi = max(np.nanmax(a.get("train", "loss")), np.nanmax(b.get("train", "loss")))
        for art in arts:
            assert art.norm.vmin == pytest.approx(lo) and art.norm.vmax == pytest.approx(hi)
        if kind != "heatmap":
            np.testing.assert_array_equal(arts[0].levels, arts[1].levels)
        assert [ax.get_title() for ax in axs] == ["resnet56", "plain56"]


def test_heatmap_uses_real_coordinates_and_leaves_missing_points_blank(files):
    s = read_surface(files["partial"])
    ax = axes()
    mesh = figures.plot_heatmap(ax, s)
    z = s.get("train", "loss")
    shown = mesh.get_array()
    assert shown.shape == z.T.shape
    assert np.ma.count_masked(shown) == np.isnan(z).sum() > 0
    dx = s.alpha[1] - s.alpha[0]
    assert ax.get_xlim() == pytest.approx((s.alpha[0] - dx / 2, s.alpha[-1] + dx / 2))


def test_error_metric_and_missing_split(files):
    s = read_surface(files["bowl"])
    exact = analytic_values("bowl", s.alpha, s.beta, split="test")
    np.testing.assert_allclose(surface_values(s, "test", "error"), 1.0 - exact["accuracy"])
    with pytest.raises(StoreError, match="no 'val' split"):
        figures.plot_contour(axes(), s, split="val")


def test_3d_surface_needs_3d_axes_and_marks_theta(files):
    s = read_surface(files["bowl"])
    with pytest.raises(ValueError, match="projection='3d'"):
        figures.plot_surface3d(axes(), s)
    ax = Figure().add_subplot(projection="3d")
    figures.plot_surface3d(ax, s, vmax=2.0)
    assert ax.get_zlim() == pytest.approx((np.nanmin(s.get()), 2.0))
    star = figures.mark_optimum(ax, z=figures.origin_value(s))
    assert star.get_marker() == "*"


def test_1d_twin_axes_and_overlay(files):
    a, b = read_surface(files["line"]), read_surface(files["line2"])
    ax = axes()
    lines = plot_1d(ax, [a, b], splits=("train", "test"), twin="accuracy")
    assert len(lines) == 8  # 2 surfaces x 2 splits x (loss, accuracy)
    left = [ln for ln in lines if ln.axes is ax]
    right = [ln for ln in lines if ln.axes is not ax]
    assert len(left) == len(right) == 4
    exact = analytic_values("sines", a.alpha, split="test")
    np.testing.assert_allclose(left[1].get_ydata(), exact["loss"])
    np.testing.assert_allclose(right[1].get_ydata(), exact["accuracy"])
    assert np.isnan(left[2].get_ydata()).sum() == np.isnan(b.get("train", "loss")).sum() > 0


def test_path_on_contour(files):
    ax = axes()
    figures.plot_contour(ax, read_surface(files["bowl"]))
    t = np.linspace(0, 1, 10)
    line = figures.plot_path(ax, 0.5 * t, -0.3 * t, label="SGD")
    np.testing.assert_allclose(line.get_xdata(), 0.5 * t)
    assert line.get_label() == "SGD"
    with pytest.raises(ValueError, match="one length"):
        figures.plot_path(ax, t, t[:3])


@pytest.mark.parametrize("kind", ["contour", "contourf", "heatmap", "surface"])
def test_cli_2d_images_are_drawn(files, tmp_path, kind):
    out = tmp_path / f"{kind}.png"
    assert plot.main([str(files["bowl"]), "--kind", kind, "--out", str(out)]) == 0
    variance, colourful = image_stats(out)
    assert variance > 100
    assert colourful > (0.01 if kind == "contour" else 0.1)  # the 3-D surface too


def test_cli_comparison_partial_and_log(files, tmp_path):
    out = tmp_path / "cmp.png"
    argv = [str(files["spiky"]), str(files["partial"]), "--kind", "contourf", "--log"]
    assert plot.main([*argv, "--out", str(out)]) == 0
    assert image_stats(out)[1] > 0.1
    w, h = Image.open(out).size
    assert w > 1.8 * h  # side by side


def test_cli_1d_and_formats(files, tmp_path):
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")):
        out = tmp_path / f"line{suffix}"
        argv = [str(files["line"]), str(files["line2"]), "--split", "train,test", "--out", str(out)]
        assert plot.main(argv) == 0
        assert out.read_bytes().startswith(magic)
    assert image_stats(tmp_path / "line.png")[0] > 100


def test_cli_default_output_name(files, tmp_path):
    src = make_surface_file(tmp_path, "s.h5", shape=(9, 7))
    assert plot.main([str(src), "--metric", "error", "--levels", "0.2,0.5,0.9"]) == 0
    assert (tmp_path / "s_train_error_contour.png").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.h5"], "does not exist"),
        (["{notsurface}"], "not a readable HDF5"),
        (["{bowl}", "--split", "val"], "no 'val' split"),
        (["{bowl}", "--levels", "many"], "--levels"),
        (["{bowl}", "--levels", "3,2,1"], "levels must increase"),
        (["{bowl}", "--vmin", "5", "--vmax", "1"], "swap"),
        (["{bowl}", "--split", "train,test"], "one of train or test"),
        (["{bowl}", "--out", "x.jpg"], ".png"),
        (["{line}", "--kind", "contour"], "1-D"),
        (["{line}", "{bowl}"], "mix 1-D and 2-D"),
        (["{bowl}", "--metric", "bogus"], "invalid choice"),
        (["{bowl}", "--log", "--vmin", "-1"], "vmin > 0"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(files, tmp_path, capsys, argv, message):
    bad = tmp_path / "notsurface.h5"
    bad.write_text("hello")
    names = {k: str(v) for k, v in files.items()} | {"notsurface": str(bad)}
    argv = [a.format(**names) for a in argv]
    assert plot.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_default_levels_put_several_lines_inside_the_basin():
    """A surface spanning three decades: linear levels would leave the basin around the
    minimum empty; the default puts at least four levels below the median value."""
    a = np.linspace(-1, 1, 31)
    aa, bb = np.meshgrid(a, a, indexing="ij")
    for f in (0.01 + 5 * (aa**2 + bb**2), 0.01 * 10 ** (3 * np.sqrt((aa**2 + bb**2) / 2))):
        assert f.max() / f.min() >= 999
        scale = resolve_scale([f])
        assert (scale.levels < np.median(f)).sum() >= 4, scale.levels


def test_li2018_levels_preset():
    f = np.linspace(0.05, 12, 50).reshape(5, 10)
    scale = resolve_scale([f], levels="li2018")
    np.testing.assert_allclose(scale.levels, np.arange(0.1, 10, 0.5))
    assert not scale.log
    with pytest.raises(ValueError, match="li2018"):
        resolve_scale([f], levels="li2019")


def test_cli_levels_preset(files, tmp_path):
    out = tmp_path / "li.png"
    assert plot.main([str(files["bowl"]), "--levels", "li2018", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_a_grid_filled_coarse_to_fine_is_drawn_from_its_finest_complete_sub_grid(files):
    """While `compute` fills every 2^k-th point first, the figures draw the complete
    sub-grid of every 2^k-th row and column (the viewer does the same): lines, not a blank
    panel, and only values the file holds."""
    full = read_surface(files["bowl"])  # 21 x 13
    order = coarse_to_fine(full.shape, grid_origin(full.alpha, full.beta))
    done = np.zeros(full.shape, dtype=bool)
    done.flat[order[: len(order) // 3]] = True  # a complete sub-grid and a few more
    part = dataclasses.replace(
        full, values={k: np.where(done, v, np.nan) for k, v in full.values.items()}
    )
    ia, ib = finest_complete(done, full.alpha, full.beta)
    assert 2 < len(ia) < len(full.alpha) and {0, 10, 20} <= set(ia.tolist())  # ends and θ*
    x, y, z = figures._drawn(part, part.get())
    np.testing.assert_array_equal(x[:, 0], full.alpha[ia])
    np.testing.assert_array_equal(y[0], full.beta[ib])
    np.testing.assert_array_equal(z, full.get()[np.ix_(ia, ib)])
    cs = figures.plot_contour(axes(), part)
    assert sum(len(seg) for seg in cs.allsegs) > 0, "no contour line drawn"
    # filled in another order (row by row): drawn as it is, gaps and all
    rows = dataclasses.replace(
        full,
        values={k: np.where(np.arange(21)[:, None] < 5, v, np.nan) for k, v in full.values.items()},
    )
    assert figures._drawn(rows, rows.get())[2].shape == full.shape


# ------------------------------------------- figures a reviewer accepts as they come out
# Each is rendered (Agg) and measured: label boxes, levels, what the colour bar says.

PLAIN = re.compile(r"^[−-]?\d+(\.\d+)?$")  # 0.2, 15, 1000: positional notation
SCIENTIFIC = re.compile(r"^[−-]?\d(\.\d+)?e[−-]?\d+$")  # 2e-4, 1.5e5


def render(fig: Figure):
    """Draw `fig` on an Agg canvas (a bare Figure's canvas draws nothing); its renderer."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def drawn_ticklabels(axis) -> list:
    """The labelled ticks inside the axis's view (those outside are not drawn)."""
    lo, hi = sorted(axis.get_view_interval())
    eps = 1e-9 * (hi - lo)
    pairs = zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True)
    return [t for t, loc in pairs if t.get_text() and lo - eps <= loc <= hi + eps]


def colorbar_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def panels(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def number(text: str) -> float:
    return float(text.replace("−", "-"))


def surface_of(files, f, name: str = "bowl", label: str | None = None):
    """The file's surface with train loss f(alpha, beta) instead (in memory)."""
    s = read_surface(files[name])
    aa, bb = np.meshgrid(s.alpha, s.beta, indexing="ij")
    values = dict(s.values) | {"train_loss": np.asarray(f(aa, bb), dtype=np.float64)}
    config = dict(s.config) | ({"label": label} if label else {})
    return dataclasses.replace(s, values=values, config=config)


def log_bowl(lo: float, hi: float):
    """lo at theta*, hi at the corners, geometric in between: a log scale's case."""
    return lambda a, b: lo * (hi / lo) ** ((a**2 + b**2) / 2)


@pytest.mark.parametrize("kind", figures.KINDS)
def test_log_colour_bars_label_at_least_three_round_values(files, kind):
    """The values of resnet20 vs plain20 (0.27 to 18.6): matplotlib's log colour bar
    labelled one value (1.5x10^1) on contours and only the decades on a heat map."""
    a = surface_of(files, log_bowl(0.27, 18.6), label="a")
    b = surface_of(files, log_bowl(0.37, 17.0), label="b")
    assert resolve_scale([a.get(), b.get()]).log
    fig = figures.surface_figure([a, b], kind=kind)
    render(fig)
    (cbar,) = colorbar_axes(fig)
    texts = [t.get_text() for t in drawn_ticklabels(cbar.yaxis)]
    assert len(texts) >= 3, texts
    assert all(PLAIN.match(t) for t in texts), texts  # no 10^x mathtext, one format
    values = [number(t) for t in texts]
    assert all(float(f"{v:.2g}") == v for v in values), texts  # round
    assert values == sorted(values) and len(set(values)) == len(values)


def test_contour_labels_and_colour_bar_share_one_number_format(files):
    """Levels from 50 to 5000: f"{v:.3g}" wrote 500 beside 1e+03."""
    s = surface_of(files, log_bowl(40.0, 6000.0))
    for make in (lambda: figures.surface_figure([s], kind="contour"), None):
        if make is None:  # a single panel with its own colour bar, as plot_contour draws it
            fig = Figure(layout="constrained")
            figures.plot_contour(fig.add_subplot(), s)
        else:
            fig = make()
        render(fig)
        labels = [t.get_text() for t in panels(fig)[0].texts]
        assert {"500", "1000"} <= set(labels), labels
        bar = [t.get_text() for t in drawn_ticklabels(colorbar_axes(fig)[0].yaxis)]
        every = labels + bar
        assert all(PLAIN.match(t) for t in every) or all(SCIENTIFIC.match(t) for t in every), every
    s = surface_of(files, log_bowl(2e-5, 0.5))  # a level below 0.001: scientific, all of them
    fig = figures.surface_figure([s], kind="contour", levels=[1e-4, 1e-3, 1e-2, 0.1], log=True)
    render(fig)
    labels = [t.get_text() for t in panels(fig)[0].texts]
    assert labels and all(SCIENTIFIC.match(t) for t in labels), labels


def test_heatmap_x_tick_labels_do_not_overlap(files):
    """Narrow panels (a zoomed grid, -0.1..0.1, three heat maps side by side or one on a
    plain Figure): matplotlib's locator assumes three-character labels and printed
    -0.125 -0.100 -0.075 ... into each other."""
    zoomed = dataclasses.replace(
        read_surface(files["bowl"]),
        alpha=read_surface(files["bowl"]).alpha * 0.1,
        beta=read_surface(files["bowl"]).beta * 0.1,
    )
    single = Figure()
    figures.plot_heatmap(single.add_subplot(), zoomed)
    three = Figure(layout="constrained")
    for ax in three.subplots(1, 3):
        figures.plot_heatmap(ax, zoomed)
    wide = figures.surface_figure([zoomed] * 4, kind="heatmap")
    for fig in (single, three, wide):
        render(fig)
        for ax in panels(fig):
            for axis in (ax.xaxis, ax.yaxis):
                boxes = [t.get_window_extent() for t in drawn_ticklabels(axis)]
                assert len(boxes) >= 1
                for left, right in zip(boxes, boxes[1:], strict=False):
                    assert not left.overlaps(right), [t.get_text() for t in drawn_ticklabels(axis)]


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("name", ["bowl", "spiky"])
def test_3d_z_label_is_clear_of_its_ticks_and_the_colour_bar(files, n, name):
    """One panel: the colour bar was drawn over the z label."""
    s = read_surface(files[name])
    fig = figures.surface_figure([s] * n, kind="surface")
    renderer = render(fig)
    (cbar,) = colorbar_axes(fig)
    bar = cbar.get_tightbbox(renderer)
    for ax in panels(fig):
        label = ax.zaxis.label.get_window_extent(renderer)
        assert ax.zaxis.label.get_text() and label.width > 0
        assert fig.bbox.contains(label.x0, label.y0) and fig.bbox.contains(label.x1, label.y1)
        assert not label.overlaps(bar), (label, bar)
        ticks = [t.get_window_extent(renderer) for t in drawn_ticklabels(ax.zaxis)]
        assert len(ticks) >= 3
        assert not any(label.overlaps(t) for t in ticks)


def test_every_panel_of_a_shared_scale_has_a_contour_inside_its_range(files):
    """docs/api.md's comparison: small_cnn's 2.19..2.56 fell between the shared levels 2
    and 5 of resnet20's 0.1..30, and its panel was empty."""
    rough = surface_of(files, log_bowl(0.1, 30.0), label="resnet20")
    flat = surface_of(files, lambda a, b: 2.19 + 0.37 * (a**2 + b**2) / 2, label="small_cnn")
    for kind in ("contour", "contourf"):
        fig = figures.surface_figure([rough, flat], kind=kind)
        render(fig)
        sets = [next(c for c in ax.collections if hasattr(c, "levels")) for ax in panels(fig)]
        np.testing.assert_array_equal(sets[0].levels, sets[1].levels)  # still shared
        for s, cs in zip((rough, flat), sets, strict=True):
            lo, hi = np.nanmin(s.get()), np.nanmax(s.get())
            inside = [v for v in cs.levels if lo <= v <= hi]
            assert inside, (s.label, lo, hi, list(cs.levels))
            if kind == "contour":
                drawn = [seg for v, segs in zip(cs.levels, cs.allsegs, strict=True) for seg in segs]
                assert drawn
    # levels asked for are kept as given
    fig = figures.surface_figure([rough, flat], levels=[1.0, 5.0, 10.0])
    np.testing.assert_array_equal(panels(fig)[1].collections[0].levels, [1.0, 5.0, 10.0])


def test_path_epoch_labels_keep_off_theta_star(files):
    """A path converging to theta* (the PCA plane's origin): the last epochs' labels were
    printed over the star, and over each other."""
    epochs = np.arange(20)
    radius = 0.8 * np.exp(-epochs / 4)
    alpha, beta = radius * np.cos(epochs / 3), radius * np.sin(epochs / 3)
    alpha[-1] = beta[-1] = 0.0  # theta_final = theta*
    fig = Figure(figsize=(5, 4), layout="constrained")
    ax = fig.add_subplot()
    figures.plot_contour(ax, read_surface(files["bowl"]))
    figures.plot_path(ax, alpha, beta, epochs=epochs, annotate_every=1)
    figures.mark_optimum(ax)
    renderer = render(fig)
    stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert len(stars) == 2  # the path's end and theta*
    labels = [t for t in ax.texts if t.get_text() in {str(e) for e in epochs}]
    shown = [t for t in labels if t.get_visible()]
    assert len(shown) >= 10, "most epochs keep their label"
    boxes = [t.get_window_extent(renderer) for t in shown]
    for i, box in enumerate(boxes):  # nor each other, where the path converges
        assert not any(box.overlaps(other) for other in boxes[i + 1 :]), shown[i].get_text()
    for star in stars:
        (x,), (y,) = star.get_xdata(), star.get_ydata()
        px, py = ax.transData.transform((x, y))
        r = star.get_markersize() * fig.dpi / 72 / 2
        for t in shown:
            box = t.get_window_extent(renderer)
            assert not box.overlaps(Bbox.from_extents(px - r, py - r, px + r, py + r)), t.get_text()


def test_compute_plot_draws_every_split(tmp_path, tiny_ckpt):
    """compute --plot --split train,test drew train only."""
    out = tmp_path / "s.h5"
    argv = ["--ckpt", str(tiny_ckpt), "--dataset", "tinydata:tiny", "--out", str(out)]
    grid = ["--x", "-1:1:3", "--y", "-1:1:3", "--split", "train,test", "--quiet", "--plot"]
    assert compute.main([*argv, *grid]) == 0
    for split in ("train", "test"):
        assert image_stats(tmp_path / f"s_{split}_loss_contour.png")[0] > 100, split
    line = tmp_path / "l.h5"
    argv[-1] = str(line)
    assert compute.main([*argv, "--x", "-1:1:3", "--split", "train,test", "--quiet", "--plot"]) == 0
    assert (tmp_path / "l_train+test_loss_1d.png").is_file()


def test_a_styled_figure_is_not_replaced_by_the_default_one(files, tmp_path):
    """plot a.h5 b.h5 --style li2018, then plot a.h5 b.h5: the second wrote over the
    first (one default name)."""
    a = make_surface_file(tmp_path, "a.h5", shape=(9, 7))
    b = make_surface_file(tmp_path, "b.h5", kind="sines", shape=(9, 7))
    assert plot.main([str(a), str(b), "--style", "li2018"]) == 0
    (styled,) = tmp_path.glob("*.png")
    before = styled.read_bytes()
    assert plot.main([str(a), str(b)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["a_vs_b_train_loss_contour.png", "a_vs_b_train_loss_contour_li2018.png"]
    assert styled.read_bytes() == before


def test_returned_figures_show_themselves_as_png(files):
    """Jupyter shows a returned figure through _repr_png_ where no inline backend
    registered one (tests/test_jupyter.py runs it in a kernel)."""
    fig = figures.surface_figure([read_surface(files["bowl"])])
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_a_title_with_an_unbalanced_dollar_is_drawn_as_written(tmp_path, capsys):
    from landscape import plot

    src = make_surface_file(tmp_path, "t.h5", shape=(5, 4))
    for title in ("50% $x^$", r"$\alpha$ sweep"):
        out = tmp_path / "t.png"
        assert plot.main([str(src), "--title", title, "--out", str(out), "--overwrite"]) == 0
        assert out.stat().st_size > 0
