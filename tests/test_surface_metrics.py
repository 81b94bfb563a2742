"""Surface metrics on analytic surfaces, and the `landscape metrics` command line."""

import json
import math

import numpy as np
import pytest
import torch

from landscape import metrics
from landscape.analysis.metrics import (
    METRIC_NAMES,
    basin_radius,
    curvature_ratio_median,
    finite_difference_hessian,
    grid_metrics,
    hessian_curvature,
    interpolate,
    local_minima,
    nonconvex_fraction,
    saddle_fraction,
    sharpness,
    surface_metrics,
)
from landscape.io.surface_file import Surface, SurfaceWriter, create_surface_file, read_surface

A = np.linspace(-2, 2, 41)
B = np.linspace(-2, 2, 41)
AA, BB = np.meshgrid(A, B, indexing="ij")
BOWL = AA**2 + BB**2
SINES = np.sin(3 * AA) + np.sin(3 * BB)


def test_bowl_is_convex_with_one_minimum():
    m = grid_metrics(A, B, BOWL, radius=0.5, basin_delta=1.0)
    assert m["local_minima"] == 1 and m["nonconvex_fraction"] == 0
    assert m["min_loss"] == pytest.approx(0) and (m["min_alpha"], m["min_beta"]) == (0, 0)
    assert m["center_loss"] == pytest.approx(0)
    # f = r^2: the loss first exceeds 1 at r = 1 on every ray; f(0.5 u) - f(0) = 0.25.
    assert m["basin_radius"] == pytest.approx(1.0, abs=0.01) and m["basin_closed"] == 1
    assert m["sharpness"] == pytest.approx(0.25, abs=0.01)
    assert m["saddle_fraction"] == 0
    assert m["computed_fraction"] == 1 and list(m) == list(METRIC_NAMES)


def test_sum_of_sines_has_many_minima_and_nonconvex_points():
    m = grid_metrics(A, B, SINES)
    assert m["local_minima"] >= 4
    assert 0.3 < m["nonconvex_fraction"] < 1
    assert local_minima(SINES).sum() == m["local_minima"]
    # The Hessian of sin(3a) + sin(3b) is diag(-9 sin 3a, -9 sin 3b): a saddle where the
    # two sines have opposite signs (counted from the exact Hessian, interior points).
    sa, sb = np.sin(3 * AA[1:-1, 1:-1]), np.sin(3 * BB[1:-1, 1:-1])
    assert m["saddle_fraction"] == pytest.approx(np.mean(sa * sb < 0), abs=0.03)
    assert m["saddle_fraction"] <= m["nonconvex_fraction"]


def test_saddle_fraction_tells_a_bowl_from_a_saddle_where_the_old_ratio_did_not():
    """|lambda_min / lambda_max| of the 2x2 Hessian is 1 for an isotropic bowl and for a
    symmetric saddle alike (the reason it is no longer reported); the saddle fraction is
    0 and 1, the non-convex fraction too, and a valley (one zero curvature) is neither."""
    bowl, saddle, valley = AA**2 + BB**2, AA**2 - BB**2, AA**2
    assert curvature_ratio_median(A, B, bowl) == pytest.approx(1.0)
    assert curvature_ratio_median(A, B, saddle) == pytest.approx(1.0)
    assert saddle_fraction(A, B, bowl) == 0 and saddle_fraction(A, B, saddle) == 1
    assert nonconvex_fraction(A, B, saddle) == 1
    assert saddle_fraction(A, B, valley) == 0 and nonconvex_fraction(A, B, valley) == 0
    assert saddle_fraction(A, B, -bowl) == 0 and nonconvex_fraction(A, B, -bowl) == 1
    assert math.isnan(saddle_fraction(A, None, A**2))


def test_finite_difference_hessian_of_quadratic_is_exact():
    f = 3 * AA**2 + AA * BB - 2 * BB**2
    fxx, fyy, fxy = finite_difference_hessian(A, B, f)
    assert fxx.shape == (39, 39)
    np.testing.assert_allclose(fxx, 6, atol=1e-9)
    np.testing.assert_allclose(fyy, -4, atol=1e-9)
    np.testing.assert_allclose(fxy, 1, atol=1e-9)
    assert nonconvex_fraction(A, B, f) == 1.0
    assert nonconvex_fraction(A, B, AA + 2 * BB) == 0  # a plane is convex (rounding ignored)


def test_non_uniform_grid_and_interpolation():
    a = np.array([-1.0, -0.3, 0.0, 0.5, 1.0])
    f = a**2
    assert nonconvex_fraction(a, None, f) == 0
    assert interpolate(a, None, f, np.array([0.25]), None)[0] == pytest.approx(0.125)
    assert np.isnan(interpolate(a, None, f, np.array([1.5]), None)[0])
    g = AA + 10 * BB
    assert interpolate(A, B, g, np.array(0.33), np.array(-0.71)) == pytest.approx(0.33 - 7.1)


def test_nan_points_are_skipped():
    f = BOWL.copy()
    f[30:, :] = np.nan  # a partially computed file
    m = grid_metrics(A, B, f, radius=0.5)
    assert m["computed_fraction"] == pytest.approx(30 / 41)
    assert m["local_minima"] == 1 and m["nonconvex_fraction"] == 0
    assert m["sharpness"] == pytest.approx(0.25, abs=0.01)
    # Rays towards the unknown half stop at the NaN edge (alpha ~ 0.9) before crossing 1.
    assert m["basin_closed"] < 1
    empty = grid_metrics(A, B, np.full_like(BOWL, np.nan))
    assert empty["computed_fraction"] == 0
    assert all(math.isnan(v) for k, v in empty.items() if k != "computed_fraction")


def test_one_dimensional_surface():
    a = np.linspace(-1, 1, 21)
    m = grid_metrics(a, None, 4 * a**2, radius=0.5, basin_delta=1.0)
    assert m["local_minima"] == 1 and m["nonconvex_fraction"] == 0
    assert m["basin_radius"] == pytest.approx(0.5, abs=1e-9) and m["basin_closed"] == 1
    assert m["sharpness"] == pytest.approx(1.0)
    assert math.isnan(m["saddle_fraction"]) and math.isnan(m["min_beta"])
    assert nonconvex_fraction(a, None, np.cos(3 * a)) > 0.5
    r, closed = basin_radius(a, None, 0.1 * a**2, threshold=1.0)  # never crosses
    assert r == pytest.approx(1.0) and closed == 0
    assert sharpness(a, None, np.zeros_like(a), radius=5.0) != sharpness(a, None, a, radius=0.5)


def _write(path, alpha, beta, loss):
    create_surface_file(
        path,
        alpha=alpha,
        beta=beta,
        value_names=["train_loss", "train_accuracy"],
        directions={"x": {"w": torch.zeros(2)}},
        config={"label": path.stem},
        provenance={},
    )
    with SurfaceWriter(path) as w:
        idx = np.nonzero(np.ones(loss.shape, dtype=bool))
        w.write(idx, {"train_loss": loss[idx], "train_accuracy": np.zeros(len(idx[0]))})


def test_surface_metrics_wrapper_reads_split():
    s = Surface(alpha=A, beta=B, values={"test_loss": BOWL})
    assert surface_metrics(s, split="test")["local_minima"] == 1
    with pytest.raises(ValueError, match="train_loss"):
        surface_metrics(s, split="train")


def test_cli_table_and_json(tmp_path, capsys):
    a = np.linspace(-1, 1, 11)
    aa, bb = np.meshgrid(a, a, indexing="ij")
    bowl, sines = tmp_path / "bowl.h5", tmp_path / "sines.h5"
    _write(bowl, a, a, aa**2 + bb**2)
    _write(sines, a, a, np.sin(6 * aa) + np.sin(6 * bb))
    assert metrics.main([str(bowl), str(sines)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "nonconvex" in out[0] and out[3] == ""  # the table: a header and one row per file
    assert out[1].startswith(str(bowl)) and out[2].startswith(str(sines))
    # Neither file has per-sample losses or seed siblings: no intervals, and so no verdict
    # other than "not distinguishable".
    text = "\n".join(out)
    assert text.count("no interval:") == 2
    assert "not distinguishable at this sample size" in text and ": A <" not in text
    assert metrics.main([str(bowl), str(sines), "--no-intervals"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert metrics.main([str(bowl), "--json", "--radius", "0.5"]) == 0
    doc = json.loads(capsys.readouterr().out)["surfaces"]
    assert doc[0]["local_minima"] == 1 and doc[0]["sharpness"] == pytest.approx(0.25, abs=0.02)
    assert doc[0]["min_beta"] == 0.0


def test_cli_bad_input(tmp_path, capsys):
    assert metrics.main([str(tmp_path / "missing.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    a = np.linspace(-1, 1, 5)
    _write(tmp_path / "s.h5", a, None, a**2)
    assert metrics.main([str(tmp_path / "s.h5"), "--split", "test"]) == 2
    assert "test_loss" in capsys.readouterr().err


def test_li_et_al_curvature_is_reported_where_hessian_surface_stored_it(tmp_path, capsys):
    """A file holding ``/train_curvature_ratio`` (what ``landscape hessian --surface``
    writes: |lambda_min/lambda_max| of the full Hessian) gets that map's median and maximum,
    named as Li et al.'s; a file without one gets none."""
    a = np.linspace(-1, 1, 5)
    aa, bb = np.meshgrid(a, a, indexing="ij")
    ratio = np.abs(aa * bb)  # median 0.25, max 1 over the 25 points
    ratio[0, 0] = np.nan  # a point the map did not reach
    path = tmp_path / "h.h5"
    create_surface_file(
        path,
        alpha=a,
        beta=a,
        value_names=["train_loss", "train_accuracy", "train_curvature_ratio"],
        directions={"x": {"w": torch.zeros(2)}},
        config={"label": "h"},
        provenance={},
    )
    with SurfaceWriter(path) as w:
        idx = np.nonzero(np.ones(aa.shape, dtype=bool))
        w.write(
            idx,
            {
                "train_loss": (aa**2 + bb**2)[idx],
                "train_accuracy": np.zeros(25),
                "train_curvature_ratio": ratio[idx],
            },
        )
    got = hessian_curvature(read_surface(path))
    finite = ratio[np.isfinite(ratio)]
    assert got == {"points": 24.0, "median": float(np.median(finite)), "max": 1.0}
    assert hessian_curvature(Surface(alpha=A, beta=B, values={"train_loss": BOWL})) is None
    assert metrics.main([str(path), "--no-intervals"]) == 0
    out = capsys.readouterr().out
    assert "Li et al.'s curvature: |lambda_min/lambda_max| of the full Hessian" in out
    assert f"{path}: median {np.median(finite):.4g}, max 1 over 24 points" in out


def test_every_metric_column_is_defined_in_the_help_and_the_readme(capsys):
    from helpers import REPO

    from landscape import metrics as metrics_cli
    from landscape.analysis.metrics import METRIC_DEFINITIONS, METRIC_NAMES

    assert set(METRIC_DEFINITIONS) == set(METRIC_NAMES)
    with pytest.raises(SystemExit):
        metrics_cli.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    readme = (REPO / "README.md").read_text()
    for name, text in METRIC_DEFINITIONS.items():
        assert f"{name}: {text}" in help_text, name
        assert f"| `{name}` | {text} |" in readme, name


def test_metrics_says_what_it_grouped_and_does_not_compare_a_slice_with_a_plane(capsys):
    from helpers import REPO

    from landscape import metrics as metrics_cli

    files = [str(REPO / "docs" / "results" / f"resnet56_{d}.h5") for d in ("1d", "2d")]
    assert metrics_cli.main([*files, "--resamples", "10"]) == 0
    out = capsys.readouterr().out
    assert "grouped" not in out  # no seed files here
    assert "resnet56 (resnet56_1d.h5) vs resnet56 (resnet56_2d.h5): not compared" in out
    assert "resnet56 > resnet56" not in out and "resnet56 < resnet56" not in out
