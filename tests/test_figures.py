"""Static figures (landscape.viz.figures) and their command line (landscape.plot)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from PIL import Image
from surfaces import analytic_values, make_surface_file

from landscape import plot
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
