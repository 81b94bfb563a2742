"""Error bars: standard errors per point, per-sample losses, intervals on metrics, verdicts."""

from __future__ import annotations

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
from landscape.analysis.metrics import curvature_ratio_median
from landscape.analysis.uncertainty import (
    Interval,
    bootstrap_metrics,
    compare,
    group_by_seed,
    measure,
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
