"""Error bars: standard errors per point, per-sample losses, intervals on metrics, verdicts."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import make_checkpoint
from surfaces import make_surface_file
from torch.func import functional_call

from landscape import metrics as metrics_cli
from landscape import models
from landscape.analysis.metrics import (
    batch_metrics,
    curvature_ratio_median,
    grid_metrics,
    surface_metrics,
)
from landscape.analysis.uncertainty import (
    INTERVAL_METHODS,
    Interval,
    _counts,
    _seed_interval,
    bootstrap_metrics,
    compare,
    compare_paired,
    group_by_seed,
    interval_from_draws,
    measure,
    paired_differences,
    samples_shared,
    seed_metrics,
    t_quantile,
)
from landscape.compute import main as compute_main
from landscape.data import load_split
from landscape.io.surface_file import read_directions, read_per_sample, read_surface


def args(ckpt, out, *extra: str) -> list[str]:
    return ["--ckpt", str(ckpt), "--dataset", "tinydata:tiny", "--out", str(out), "--quiet", *extra]


def test_standard_errors_equal_std_over_sqrt_n_of_losses_computed_by_hand(tmp_path, tiny_ckpt):
    out = tmp_path / "s.h5"
    assert compute_main(args(tiny_ckpt, out, "--x", "-1:1:3", "--y", "-0.5:0.5:2")) == 0
    surface, dirs = read_surface(out), read_directions(out)
    model = models.load_checkpoint(tiny_ckpt).model.eval()
    data = load_split("tinydata:tiny", "train")
    x, y = data.normalized(), data.y
    base = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    per_sample = read_per_sample(out, "train")
    for i, a in enumerate(surface.alpha):
        for j, b in enumerate(surface.beta):
            # theta* + a dx + b dy, set by hand, the model run plainly.
            state = {
                k: v.detach()
                + a * dirs["x"].get(k, torch.zeros_like(v)).to(v.dtype)
                + b * dirs["y"].get(k, torch.zeros_like(v)).to(v.dtype)
                if v.is_floating_point()
                else v
                for k, v in base.items()
            }
            with torch.no_grad():
                logits = functional_call(model, state, (x,)).double()
            losses = F.cross_entropy(logits, y, reduction="none").numpy()
            hits = (logits.argmax(-1) == y).double().numpy()
            n = len(losses)
            assert surface.get("train", "loss")[i, j] == pytest.approx(losses.mean(), rel=1e-5)
            assert surface.get("train", "loss_se")[i, j] == pytest.approx(
                losses.std(ddof=1) / math.sqrt(n), rel=1e-4
            )
            assert surface.get("train", "accuracy_se")[i, j] == pytest.approx(
                hits.std(ddof=1) / math.sqrt(n), rel=1e-6, abs=1e-12
            )
            # float32 evaluation (BN folded) vs float64 here: agreement to float32 rounding
            # of the logits, which are large for this random-BN network.
            scale = float(np.abs(losses).max())
            np.testing.assert_allclose(per_sample[i, j], losses, rtol=1e-4, atol=1e-5 * scale)


def test_resume_keeps_and_fills_standard_errors(tmp_path, tiny_ckpt):
    out = tmp_path / "s.h5"
    grid = ("--x", "-1:1:5")
    assert compute_main(args(tiny_ckpt, out, *grid)) == 0
    first = read_surface(out)
    with h5py.File(out, "r+") as f:
        f["train_loss"][1:3] = np.nan  # as if killed before these points
    assert compute_main(args(tiny_ckpt, out, *grid)) == 0
    again = read_surface(out)
    for name in ("train_loss", "train_loss_se", "train_accuracy_se"):
        np.testing.assert_array_equal(again.values[name], first.values[name], err_msg=name)


def test_version_1_files_are_read_and_resumed_without_error_bars(tmp_path, tiny_ckpt):
    out = tmp_path / "old.h5"
    assert compute_main(args(tiny_ckpt, out, "--x", "-1:1:3", "--per-sample", "off")) == 0
    with h5py.File(out, "r+") as f:  # what version 1 wrote: no standard errors
        del f["train_loss_se"], f["train_accuracy_se"]
        f.attrs["format_version"] = 1
        f["train_loss"][1] = np.nan
    assert compute_main(args(tiny_ckpt, out, "--x", "-1:1:3")) == 0
    s = read_surface(out)
    assert s.computed.all() and s.standard_error("train") is None
    assert read_per_sample(out) is None


def test_bootstrap_interval_covers_the_true_value_at_about_the_nominal_rate(tmp_path):
    """Per-sample losses drawn from a known distribution: the centre loss's true value is
    the distribution's mean; the 95% bootstrap interval must cover it ~95% of the time."""
    rng = np.random.default_rng(0)
    true_mean, n, reps, covered = 1.0, 200, 60, 0
    path = make_surface_file(tmp_path, "b.h5", kind="bowl", shape=(3,), splits=("train",))
    with h5py.File(path, "r+") as f:
        f.create_dataset("per_sample/train_loss", shape=(3, n), dtype=np.float32)
    for _ in range(reps):
        losses = rng.exponential(true_mean, size=(3, n)).astype(np.float32)
        with h5py.File(path, "r+") as f:
            f["per_sample/train_loss"][...] = losses
            f["train_loss"][...] = losses.astype(np.float64).mean(-1)
        interval = bootstrap_metrics(read_surface(path), resamples=100, seed=int(rng.integers(1e9)))
        center = interval["center_loss"]
        covered += center.low <= true_mean <= center.high
    assert 0.85 <= covered / reps <= 1.0, covered


def test_median_curvature_ratio_is_not_decided_by_one_near_zero_denominator():
    a = b = np.linspace(-1, 1, 9)
    aa, bb = np.meshgrid(a, b, indexing="ij")
    f = aa**2 + 0.5 * bb**2
    spiky = f.copy()
    spiky[4, 3] += 0.1  # one point where the 2x2 Hessian is nearly singular in one direction
    assert curvature_ratio_median(a, b, spiky) == pytest.approx(
        curvature_ratio_median(a, b, f), abs=0.1
    )


def test_seed_files_are_grouped_and_overlapping_models_not_called_different(
    tmp_path, tiny_ckpt, capsys
):
    base = tmp_path / "a.h5"
    grid = ("--x", "-1:1:5", "--y", "-1:1:5")
    assert compute_main(args(tiny_ckpt, base, *grid, "--seeds", "0,1,2")) == 0
    files = [tmp_path / f"a_seed{s}.h5" for s in (0, 1, 2)]
    assert all(f.exists() for f in files)
    other = make_checkpoint(tmp_path / "other.pt", seed=5)
    assert compute_main(args(other, tmp_path / "b.h5", *grid)) == 0
    surfaces = [read_surface(f) for f in [*files, tmp_path / "b.h5"]]
    assert group_by_seed(surfaces) == [[0, 1, 2], [3]]
    capsys.readouterr()
    assert metrics_cli.main([str(f) for f in [*files, tmp_path / "b.h5"]]) == 0
    out = capsys.readouterr().out
    assert "(seeds 0,1,2)" in out and "3 direction seeds" in out and "bootstrap over" in out
    assert "not distinguishable at this sample size" in out
    # The verdict is the intervals': a difference only where they do not overlap.
    m = measure(surfaces)
    for name, verdict in compare(m[0].intervals, m[1].intervals).items():
        a, b = m[0].intervals[name], m[1].intervals[name]
        if verdict.startswith("A"):
            assert a.known and b.known and not a.overlaps(b), name
        else:
            assert verdict != "A < B" and verdict != "A > B"


def test_compare_needs_intervals_to_call_a_difference():
    known = Interval(1.0, 0.9, 1.1, "x")
    other = Interval(2.0, 1.9, 2.1, "x")
    bare = Interval(2.0, math.nan, math.nan, "none")
    assert compare({"m": known}, {"m": other}, ["m"]) == {"m": "A < B"}
    assert compare({"m": known}, {"m": bare}, ["m"]) == {
        "m": "not distinguishable at this sample size"
    }
    assert compare({"m": known}, {"m": Interval(1.05, 1.0, 1.2, "x")}, ["m"])["m"].startswith("not")


# ------------------------------------------------ seed groups, paired comparisons, coverage


def per_sample_file(tmp_path, name, losses, *, seed=0, fingerprint="data-a", label=None):
    """A 2-D surface file on [-1, 1]^2 holding `losses` (nx, ny, N) as its per-sample
    losses, their mean as the loss, `seed` as the direction seed and `fingerprint` as the
    data's (what `landscape compute --per-sample on` records)."""
    losses = np.asarray(losses, dtype=np.float32)
    path = make_surface_file(
        tmp_path,
        name,
        shape=losses.shape[:-1],
        splits=("train",),
        label=label,
        config={"seed": seed},
    )
    with h5py.File(path, "r+") as f:
        f.create_dataset("per_sample/train_loss", data=losses)
        f["train_loss"][...] = losses.astype(np.float64).mean(-1)
        prov = json.loads(f.attrs["provenance"])
        prov["data_sha256"] = {"train": fingerprint}
        f.attrs["provenance"] = json.dumps(prov)
    return read_surface(path)


def noisy_losses(rng, f, n, scale=0.3, rough=0.0):
    """Per-sample losses around a surface f: each sample adds its own smooth random field
    (constant, slopes, curvatures and a ripple) and, with `rough`, independent noise at
    every point (what makes finite-difference curvatures noisy); both have mean zero over
    samples, so the mean over infinitely many samples is f exactly."""
    nx, ny = f.shape
    a, b = np.meshgrid(np.linspace(-1, 1, nx), np.linspace(-1, 1, ny), indexing="ij")
    basis = np.stack([np.ones_like(a), a, b, a * a, b * b, a * b, np.sin(3 * a) * np.cos(2 * b)])
    w = rng.normal(0.0, scale, size=(n, len(basis)))
    smooth = np.einsum("kij,nk->ijn", basis, w)
    return (
        f[..., None] + smooth + rng.normal(0.0, rough, size=(nx, ny, n))
        if rough
        else (f[..., None] + smooth)
    )


def test_t_interval_counts_only_finite_values():
    """[1.0, 1.2, NaN]: two finite values, t with 1 degree of freedom (12.706), divided by
    sqrt(2): half-width 1.271 (the old code took t from the 3 files: 0.430)."""
    got = _seed_interval([1.0, 1.2, math.nan], "x")
    naive = 12.706 * np.std([1.0, 1.2], ddof=1) / math.sqrt(2)
    assert got.value == pytest.approx(1.1)
    assert (got.high - got.low) / 2 == pytest.approx(naive) == pytest.approx(1.271, abs=1e-3)
    assert not _seed_interval([1.0, math.nan, math.nan], "x").known
    assert t_quantile(1) == 12.706 and t_quantile(30) == 2.042
    assert t_quantile(40) == pytest.approx(2.0211, abs=1e-3)  # exact: 2.02108
    assert t_quantile(120) == pytest.approx(1.9799, abs=1e-3)  # exact: 1.97993


def test_equal_seed_values_without_sample_noise_claim_nothing(tmp_path):
    """Three seeds with equal values and no per-sample losses: no zero-width interval, and
    so no difference called against another group, however far apart the values."""
    bowls = [
        read_surface(make_surface_file(tmp_path, f"b{s}.h5", kind="bowl", config={"seed": s}))
        for s in range(3)
    ]
    high = [
        read_surface(
            make_surface_file(tmp_path, f"h{s}.h5", kind="sines", config={"seed": s, "k": 1})
        )
        for s in range(3)
    ]
    a, b = seed_metrics(bowls), seed_metrics(high)
    assert a["center_loss"].value != b["center_loss"].value
    assert not a["center_loss"].known and not b["center_loss"].known
    assert compare(a, b, ["center_loss"]) == {
        "center_loss": "not distinguishable at this sample size"
    }


def test_seed_interval_combines_directions_and_samples(tmp_path):
    """The combined interval of a seed group is the t part (directions) and the samples'
    bootstrap of the mean over the seeds (the same images resampled in every file) added in
    quadrature, about the centre of the samples' interval; checked against a loop that
    recomputes every resample of every file with `grid_metrics`."""
    rng = np.random.default_rng(3)
    a, b = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9), indexing="ij")
    n, resamples = 40, 30
    files = []
    for s in range(3):  # another direction seed: another (similar) surface, same images
        f = 0.5 + a**2 + 0.8 * b**2 + 0.3 * np.cos(4 * a + s) * np.cos(3 * b + 0.3)
        files.append(per_sample_file(tmp_path, f"s{s}.h5", noisy_losses(rng, f, n), seed=s))
    got = seed_metrics(files, resamples=resamples)
    counts = _counts(n, resamples, 0)  # one set of counts: the files share their images
    for name, method in INTERVAL_METHODS.items():
        values = [surface_metrics(s)[name] for s in files]
        mean = float(np.mean(values))
        half_t = t_quantile(2) * float(np.std(values, ddof=1)) / math.sqrt(3)
        draws = []
        for j in range(resamples):
            w = counts[:, j] / n
            draws.append(
                np.mean(
                    [
                        grid_metrics(s.alpha, s.beta, read_per_sample(s.path).astype(float) @ w)[
                            name
                        ]
                        for s in files
                    ]
                )
            )
        low, high = interval_from_draws(mean, np.array(draws), method)
        half = math.hypot(half_t, (high - low) / 2)
        centre = (low + high) / 2
        assert got[name].value == pytest.approx(mean)
        assert half > 0, name
        assert got[name].low == pytest.approx(centre - half, rel=1e-9, abs=1e-12), name
        assert got[name].high == pytest.approx(centre + half, rel=1e-9, abs=1e-12), name
        assert got[name].high - got[name].low >= max(2 * half_t, high - low) - 1e-12
    # θ* does not depend on the directions: equal centre values, yet a real interval
    center = got["center_loss"]
    assert center.known and center.high > center.low


def test_paired_difference_uses_the_same_images_on_both_sides(tmp_path, capsys):
    """B's per-sample losses are A's plus 0.01: every paired resample gives a difference of
    exactly -0.01 at θ*, so the paired interval excludes 0 and the difference is called,
    while the two marginal intervals (the images' spread) overlap. With another data
    fingerprint the same files are compared unpaired, and the output says so."""
    rng = np.random.default_rng(5)
    a, b = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9), indexing="ij")
    losses = noisy_losses(rng, 0.5 + a**2 + b**2, 60)
    sa = per_sample_file(tmp_path, "a.h5", losses, label="A")
    sb = per_sample_file(tmp_path, "b.h5", losses + 0.01, label="B")
    sc = per_sample_file(tmp_path, "c.h5", losses + 0.01, label="C", fingerprint="data-c")
    assert samples_shared(sa, sb) and not samples_shared(sa, sc)
    diffs = paired_differences(sa, sb, resamples=50)
    c = diffs["center_loss"]
    assert c.value == pytest.approx(-0.01, abs=1e-6)
    assert c.low == pytest.approx(-0.01, abs=1e-5) and c.high == pytest.approx(-0.01, abs=1e-5)
    assert compare_paired(diffs, ["center_loss"]) == {"center_loss": "A < B"}
    ia, ib = bootstrap_metrics(sa, resamples=50), bootstrap_metrics(sb, resamples=50)
    assert ia["center_loss"].overlaps(ib["center_loss"])  # unpaired: no verdict possible
    # the paired draws, by a loop with the same counts
    counts = _counts(60, 50, 0)
    la, lb = (read_per_sample(s.path).astype(float) for s in (sa, sb))
    draws = [
        grid_metrics(sa.alpha, sa.beta, la @ (counts[:, j] / 60))["sharpness"]
        - grid_metrics(sb.alpha, sb.beta, lb @ (counts[:, j] / 60))["sharpness"]
        for j in range(50)
    ]
    low, high = interval_from_draws(diffs["sharpness"].value, np.array(draws), "percentile")
    assert diffs["sharpness"].low == pytest.approx(low) and diffs[
        "sharpness"
    ].high == pytest.approx(high)
    capsys.readouterr()
    assert metrics_cli.main([str(sa.path), str(sb.path), str(sc.path), "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    assert "A - B (paired bootstrap over the same 60 samples" in out
    assert "center_loss: -0.01 [-0.01, -0.01] -> A < B" in out
    assert "A vs C (unpaired, different samples" in out
    assert "local_minima: no claim (no interval)" in out


def test_chosen_intervals_cover_the_known_truth_on_a_synthetic_surface():
    """A surface with convex and non-convex regions (no symmetry: no point sits exactly on
    a curvature sign change); each sample adds its own smooth random field and rough
    point noise, both of mean zero, so the truth is the noiseless surface's metrics. 80
    seeded replications of 400 samples, 100 resamples each: every metric with an interval
    covers the truth in 0.85-1.0 of them (95% nominal; with 80 replications a coverage of
    0.95 reads 0.90-1.0 nineteen times in twenty). Deterministic: the seeds fix every
    draw. (With twice the point noise a trial measured 0.975-1.0 for the non-convex
    fraction: conservative; docs/results.md says so.)"""
    rng = np.random.default_rng(11)
    alpha = beta = np.linspace(-1, 1, 13)
    a, b = np.meshgrid(alpha, beta, indexing="ij")
    f = 0.6 + a**2 + 0.7 * b**2 + 0.25 * np.cos(4 * a + 0.7) * np.cos(3 * b + 0.3)
    truth = grid_metrics(alpha, beta, f)
    assert 0.05 < truth["nonconvex_fraction"] < 0.95
    reps, n, resamples = 80, 400, 100
    hits = dict.fromkeys(INTERVAL_METHODS, 0)
    for _ in range(reps):
        losses = noisy_losses(rng, f, n, scale=0.05, rough=0.05).reshape(-1, n)
        counts = rng.multinomial(n, np.full(n, 1 / n), size=resamples).T
        w = np.hstack([counts, np.ones((n, 1))]) / n
        got = batch_metrics(alpha, beta, (losses @ w).T.reshape(-1, 13, 13))
        for name, method in INTERVAL_METHODS.items():
            low, high = interval_from_draws(got[name][-1], got[name][:-1], method)
            hits[name] += low <= truth[name] <= high
    coverage = {name: h / reps for name, h in hits.items()}
    assert all(0.85 <= c <= 1.0 for c in coverage.values()), coverage


def test_batch_metrics_equal_one_surface_at_a_time():
    """`batch_metrics` (the bootstrap's) against `grid_metrics` surface by surface, on a
    non-uniform, descending grid, with unknown points, a diverged point and a surface with
    nothing computed."""
    rng = np.random.default_rng(2)
    alpha = np.array([1.0, 0.6, 0.1, -0.05, -0.5, -1.0])
    beta = np.array([-1.0, -0.4, 0.0, 0.3, 0.7, 1.0, 1.2])
    aa, bb = np.meshgrid(alpha, beta, indexing="ij")
    fs = 0.3 + aa**2 + bb**2 + rng.normal(0, 0.05, size=(6, *aa.shape))
    fs[1, 2, 3] = np.nan
    fs[2, 0, :] = np.nan
    fs[3, 4, 4] = np.inf
    fs[4] = np.nan
    got = batch_metrics(alpha, beta, fs, radius=0.4, basin_delta=0.5, n_rays=12)
    for k, f in enumerate(fs):
        want = grid_metrics(alpha, beta, f, radius=0.4, basin_delta=0.5, n_rays=12)
        for name, values in got.items():
            np.testing.assert_allclose(values[k], want[name], rtol=1e-12, atol=1e-12, err_msg=name)
