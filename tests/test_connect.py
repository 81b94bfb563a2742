"""Mode connectivity (issue #32): curve training, the loss along the curve, the barrier.

Known answers: a model whose loss is constant on circles (a ring valley) joins two minima
on opposite sides of the ring: the straight line crosses the middle (a barrier of ~0.28),
a trained quadratic Bezier curve goes round (~0). Evaluation at t is checked against the
network evaluated by hand at w(t), BatchNorm re-estimation included.
"""

from __future__ import annotations

import math
import os
import subprocess
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import PYTHON, make_checkpoint, subprocess_env

import landscape as ls
from landscape import connect, metrics, plot
from landscape.analysis.connectivity import bootstrap_barrier, loss_barrier
from landscape.io.surfaces import stored_paths, stored_points
from landscape.surface.curve import bend_path, curve_coefficients, line_path, plane_coordinates
from landscape.viz.figures import surface_figure
from landscape.viz.viewer import viewer_data

PLUGIN = '''
import torch
from torch import nn


class Ring(nn.Module):
    """A 1-D logistic model whose scale is |p|: the loss is constant on circles."""

    def __init__(self, num_classes=2):
        super().__init__()
        self.p = nn.Parameter(torch.tensor([1.0, 0.0]))

    def forward(self, x):
        z = torch.sqrt((self.p**2).sum() + 1e-12) * x[:, 0]
        return torch.stack([-z, z], 1)


def ring_net(num_classes=2):
    return Ring(num_classes)


def ring(split):
    n = 512 if split == "train" else 256
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    x = torch.randn(n, 1, generator=g)
    y = (torch.rand(n, generator=g) < torch.sigmoid(3.0 * x[:, 0])).long()
    return x, y


class BNNet(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def bn_net(num_classes=3):
    return BNNet(num_classes)


def blobs(split):
    n = 64 if split == "train" else 40
    g = torch.Generator().manual_seed(2 if split == "train" else 3)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) + torch.nn.functional.one_hot(y, 4).float() * 2
    return x, y
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The module ``connect_plugin`` (networks and datasets above) importable by name."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "connect_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(folder))
    import connect_plugin

    return connect_plugin


@pytest.fixture
def ring_ends(tmp_path, plugin):
    """A and B: two minima of the ring valley on opposite sides (B slightly off the axis,
    so that the midpoint bend is not a saddle of the symmetric problem)."""
    x, y = plugin.ring("train")
    scales = np.linspace(0.5, 3, 1001)
    losses = [
        float(F.cross_entropy(torch.stack([-s * x[:, 0], s * x[:, 0]], 1), y)) for s in scales
    ]
    r = float(scales[int(np.argmin(losses))])
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save({"p": torch.tensor([r, 0.0])}, a)
    torch.save({"p": torch.tensor([-r * math.cos(0.1), r * math.sin(0.1)])}, b)
    return a, b


@pytest.fixture
def bn_ends(tmp_path, plugin):
    paths = []
    for seed, name in ((0, "a_bn.pt"), (1, "b_bn.pt")):
        torch.manual_seed(seed)
        net = plugin.bn_net()
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        torch.save(net.state_dict(), tmp_path / name)
        paths.append(tmp_path / name)
    return paths


RING = dict(model="connect_plugin:ring_net", dataset="connect_plugin:ring", weight_decay=0.0)


def test_curve_coefficients():
    for t in (0.0, 0.3, 0.5, 1.0):
        assert curve_coefficients("bezier", 1, t) == pytest.approx(
            [(1 - t) ** 2, 2 * t * (1 - t), t**2]
        )
        cubic = [(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3]
        assert curve_coefficients("bezier", 2, t) == pytest.approx(cubic)
        for kind, k in (("bezier", 3), ("polychain", 1), ("polychain", 3)):
            assert sum(curve_coefficients(kind, k, t)) == pytest.approx(1.0)
    assert curve_coefficients("polychain", 1, 0.25) == pytest.approx([0.5, 0.5, 0.0])
    assert curve_coefficients("polychain", 1, 0.75) == pytest.approx([0.0, 0.5, 0.5])
    assert curve_coefficients("polychain", 3, 1.0) == pytest.approx([0, 0, 0, 0, 1])
    assert curve_coefficients("polychain", 3, 0.25) == pytest.approx([0, 1, 0, 0, 0])
    with pytest.raises(ls.InputError, match="curve must be one of"):
        curve_coefficients("spline", 1, 0.5)


def test_ring_curve_has_no_barrier_where_the_line_has_one(tmp_path, ring_ends):
    a, b = ring_ends
    config = ls.CurveConfig(
        ckpt=a, ckpt2=b, out=tmp_path / "curve.pt", epochs=20, batch_size=64, lr=0.5, **RING
    )
    ls.train_curve(config, device="cpu", progress=False)
    record = ls.read_curve(tmp_path / "curve.pt")
    assert record["curve"] == "bezier" and record["bends"] == 1 and record["epoch"] == 20
    assert len(record["history"]) == 20 and record["ckpt"]["sha256"] and record["ckpt2"]["path"]
    # The bend left the axis: the curve goes round the ring (|w(0.5)| = |theta| / 2 ~ r).
    bend = record["bend_states"][0]["p"]
    assert abs(float(bend[1])) > 2.0
    curve, line = ls.evaluate_curve(
        tmp_path / "curve.pt",
        out=tmp_path / "curve.h5",
        points=11,
        split="train",
        data=ls.DataSpec(dataset="connect_plugin:ring"),
        bn="eval",
        progress=False,
    )
    assert line.path == line_path(tmp_path / "curve.h5") == tmp_path / "curve_line.h5"
    np.testing.assert_allclose(curve.alpha, np.linspace(0, 1, 11))
    assert curve.provenance["curve"]["kind"] == "bezier"
    found = ls.barrier_intervals(curve, line)
    assert found["curve"].value < 0.02
    assert found["line"].value > 0.2
    assert found["line - curve"].excludes_zero() and found["line - curve"].low > 0.15
    # The endpoints are A and B on both paths.
    c, ln = curve.get("train", "loss"), line.get("train", "loss")
    np.testing.assert_allclose(c[[0, -1]], ln[[0, -1]], rtol=1e-6)
    assert loss_barrier(c) == pytest.approx(found["curve"].value)


def _hand_loss(plugin, params, stats, x, y):
    net = plugin.bn_net()
    net.load_state_dict({**params, **stats}, strict=False)
    net.eval()
    with torch.no_grad():
        logits = net(x)
    return float(F.cross_entropy(logits.double(), y)), float(
        (logits.argmax(1) == y).double().mean()
    )


@pytest.mark.parametrize("bn", ["recompute", "eval"])
def test_evaluation_at_t_is_the_network_at_w_t(tmp_path, plugin, bn_ends, bn):
    a, b = bn_ends
    config = ls.CurveConfig(
        ckpt=a,
        ckpt2=b,
        out=tmp_path / "bn.pt",
        model="connect_plugin:bn_net",
        dataset="connect_plugin:blobs",
        epochs=1,
        batch_size=16,
        lr=0.1,
    )
    ls.train_curve(config, device="cpu", progress=False)
    record = ls.read_curve(tmp_path / "bn.pt")
    theta = record["bend_states"][0]
    curve, line = ls.evaluate_curve(
        tmp_path / "bn.pt",
        out=tmp_path / f"bn_{bn}.h5",
        points=5,
        data=ls.DataSpec(dataset="connect_plugin:blobs"),
        bn=bn,
        bn_samples=24,  # one batch: the statistics are the batch's mean and variance
        progress=False,
    )
    sa, sb = torch.load(a), torch.load(b)
    names = [n for n, _ in plugin.bn_net().named_parameters()]
    bn_x = plugin.blobs("train")[0][:24]
    for i, t in enumerate(np.linspace(0, 1, 5)):
        params = {
            n: (1 - t) ** 2 * sa[n] + 2 * t * (1 - t) * theta[n] + t**2 * sb[n] for n in names
        }
        if bn == "recompute":
            with torch.no_grad():
                h = bn_x @ params["fc1.weight"].T + params["fc1.bias"]
            stats = {"bn.running_mean": h.mean(0), "bn.running_var": h.var(0, unbiased=True)}
        else:
            stats = {
                k: (1 - t) * sa[f"bn.{k}"] + t * sb[f"bn.{k}"]
                for k in ("running_mean", "running_var")
            }
            stats = {f"bn.{k}": v for k, v in stats.items()}
        for split in ("train", "test"):
            x, y = plugin.blobs(split)
            loss, acc = _hand_loss(plugin, params, stats, x, y)
            assert curve.get(split, "loss")[i] == pytest.approx(loss, rel=1e-5)
            assert curve.get(split, "accuracy")[i] == pytest.approx(acc)
    # The line is compute's interpolation: the same endpoints.
    for split in ("train", "test"):
        ends = curve.get(split, "loss")[[0, -1]]
        np.testing.assert_allclose(ends, line.get(split, "loss")[[0, -1]], rtol=1e-6)
    assert line.config["ckpt2"] == str(b) and line.config["x"] == curve.config["x"]


def test_training_resumes_bit_identically(tmp_path, ring_ends):
    a, b = ring_ends
    whole = ls.CurveConfig(
        ckpt=a, ckpt2=b, out=tmp_path / "whole.pt", epochs=3, batch_size=64, **RING
    )
    ls.train_curve(whole, device="cpu", progress=False)

    def stop(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    part = ls.CurveConfig(
        ckpt=a, ckpt2=b, out=tmp_path / "part.pt", epochs=3, batch_size=64, **RING
    )
    with pytest.raises(KeyboardInterrupt):
        ls.train_curve(part, device="cpu", progress=False, on_epoch=stop)
    assert ls.read_curve(tmp_path / "part.pt")["epoch"] == 1
    ls.train_curve(part, device="cpu", progress=False)  # resumes from epoch 1
    done, ref = ls.read_curve(tmp_path / "part.pt"), ls.read_curve(tmp_path / "whole.pt")
    assert done["epoch"] == 3 and [r["epoch"] for r in done["history"]] == [1, 2, 3]
    assert torch.equal(done["bend_states"][0]["p"], ref["bend_states"][0]["p"])
    # Other settings on the same out are refused, naming them; fewer epochs too.
    with pytest.raises(ls.InputError, match="lr: 0.05 -> 0.2"):
        ls.train_curve(ls.CurveConfig(**{**_fields(part), "lr": 0.2}), progress=False)
    with pytest.raises(ls.InputError, match="trained for 3 epochs"):
        ls.train_curve(ls.CurveConfig(**{**_fields(part), "epochs": 2}), progress=False)


def _fields(config):
    return {k: getattr(config, k) for k in config.__dataclass_fields__}


def test_command_trains_evaluates_resumes_and_metrics_prints_the_barrier(
    tmp_path, ring_ends, capsys
):
    a, b = ring_ends
    args = ["--ckpt", str(a), "--ckpt2", str(b), "--model", RING["model"]]
    args += [
        "--dataset",
        RING["dataset"],
        "--batch-size",
        "64",
        "--lr",
        "0.5",
        "--weight-decay",
        "0",
    ]
    args += ["--points", "7", "--bn", "eval", "--split", "train", "--quiet"]
    args += ["--out", str(tmp_path / "c.pt")]
    assert connect.main([*args, "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    assert "epoch 4/4" in out and "loss barrier: curve" in out and "line - curve" in out
    assert (tmp_path / "c.h5").is_file() and (tmp_path / "c_line.h5").is_file()
    assert connect.main([*args, "--epochs", "4"]) == 0  # complete: nothing recomputed
    out = capsys.readouterr().out
    assert "complete (4 epochs)" in out and "epoch 1/4" not in out
    # Training on: the surface of the older curve is refused unless replaced.
    assert connect.main([*args, "--epochs", "6"]) == 2
    err = capsys.readouterr().err
    assert "the curve differs" in err and len(err.strip().splitlines()) == 1
    assert connect.main([*args, "--epochs", "6", "--overwrite"]) == 0
    assert "epoch 5/6" not in capsys.readouterr().out  # trained by the refused run already
    assert metrics.main([str(tmp_path / "c.h5"), "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    assert "mode connectivity" in out and "straight line" in out


def test_bad_input_is_one_line_exit_2(tmp_path, capsys, tiny_dataset, ring_ends):
    resnet = make_checkpoint(tmp_path / "r.pt", "resnet20")
    plain = make_checkpoint(tmp_path / "p.pt", "plain20")
    base = ["--dataset", tiny_dataset, "--epochs", "1", "--quiet", "--points", "0"]
    cases = [
        (
            ["--ckpt", str(resnet), "--ckpt2", str(plain), "--out", str(tmp_path / "x.pt")],
            "different networks",
        ),
        (
            [
                "--ckpt",
                str(tmp_path / "missing.pt"),
                "--ckpt2",
                str(plain),
                "--out",
                str(tmp_path / "y.pt"),
            ],
            "missing.pt",
        ),
        (
            ["--ckpt", str(resnet), "--ckpt2", str(resnet), "--out", str(tmp_path / "z.h5")],
            "--out must end in .pt",
        ),
        (
            [
                "--ckpt",
                str(resnet),
                "--ckpt2",
                str(resnet),
                "--out",
                str(tmp_path / "w.pt"),
                "--points",
                "2",
            ],
            "--points",
        ),
    ]
    for argv, needle in cases:
        assert connect.main([*base, *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.glob("[xyzw].pt"))
    (tmp_path / "foreign.pt").write_bytes(b"not a curve")
    with pytest.raises(ls.InputError, match="not a readable curve file"):
        ls.read_curve(tmp_path / "foreign.pt")


# The plane through A, B and the bend (Garipov et al.'s Fig. 1): (alpha, beta) =
# (c_B(t), c_theta(t)); grids where the curve's evaluated t fall on grid points: the
# Bezier curve at t = 0, 1/2, 1 on 0:1:5 ((1/4, 1/2) at t = 1/2), the polygonal chain at
# t = 0, 1/4, ..., 1 on 0:1:3 ((0, 1/2), (0, 1), (1/2, 1/2)).
PLANE_CASES = [("bezier", "recompute", "0:1:5", [0.0, 0.5, 1.0]),
               ("polychain", "eval", "0:1:3", [0.0, 0.25, 0.5, 0.75, 1.0])]  # fmt: skip


@pytest.mark.parametrize("kind, bn, grid, ts", PLANE_CASES, ids=["bezier", "polychain"])
def test_plane_at_the_curve_is_the_curve_and_is_drawn(tmp_path, bn_ends, kind, bn, grid, ts):
    a, b = bn_ends
    config = ls.CurveConfig(
        ckpt=a, ckpt2=b, out=tmp_path / "bn.pt", model="connect_plugin:bn_net",
        dataset="connect_plugin:blobs", curve=kind, epochs=1, batch_size=16, lr=0.1,
    )  # fmt: skip
    ls.train_curve(config, device="cpu", progress=False)
    data = ls.DataSpec(dataset="connect_plugin:blobs")
    curve, _ = ls.evaluate_curve(
        tmp_path / "bn.pt", out=tmp_path / "c.h5", points=len(ts), data=data, bn=bn,
        bn_samples=24, line=False, progress=False,
    )  # fmt: skip
    plane_file = tmp_path / "c_plane.h5"
    plane = ls.curve_plane(
        tmp_path / "bn.pt", plane_file, x=grid, y=grid, data=data, bn=bn, bn_samples=24,
        progress=False,
    )  # fmt: skip
    assert plane.is_2d and plane.config["ckpt3"] == str(bend_path(tmp_path / "bn.pt"))
    alpha, beta = plane_coordinates(kind, ts)
    for i, t in enumerate(ts):
        ia = int(np.flatnonzero(np.isclose(plane.alpha, alpha[i]))[0])
        ib = int(np.flatnonzero(np.isclose(plane.beta, beta[i]))[0])
        for split in ("train", "test"):
            for metric in ("loss", "accuracy"):
                assert plane.get(split, metric)[ia, ib] == pytest.approx(
                    curve.get(split, metric)[i], rel=1e-5
                ), (t, split, metric)
    # The file records the curve and the line, read back as drawn.
    surface = ls.read_surface(plane_file)
    paths = stored_paths(surface)
    assert sorted(paths) == sorted([f"{kind} curve", "line"])
    t = np.linspace(0, 1, 101)
    np.testing.assert_allclose(paths[f"{kind} curve"], plane_coordinates(kind, t))
    if kind == "bezier":
        np.testing.assert_allclose(paths["bezier curve"], (t**2, 2 * t * (1 - t)), atol=1e-12)
    np.testing.assert_array_equal(paths["line"], ([0, 1], [0, 0]))
    assert stored_points(surface) == {"A": (0, 0), "B": (1, 0), "bend": (0, 1)}
    # Rerun: resumed (the bend's checkpoint is left as it is), nothing recomputed.
    before = bend_path(tmp_path / "bn.pt").stat().st_mtime_ns
    again = ls.curve_plane(
        tmp_path / "bn.pt", plane_file, x=grid, y=grid, data=data, bn=bn, bn_samples=24,
        progress=False,
    )  # fmt: skip
    assert bend_path(tmp_path / "bn.pt").stat().st_mtime_ns == before
    np.testing.assert_array_equal(again.get("train", "loss"), plane.get("train", "loss"))
    # Drawn: on the figure's contours (with a legend) and in the viewer's data.
    fig = surface_figure([surface], kind="contour", split="train")
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.lines]
    assert f"{kind} curve" in labels and "line" in labels
    legend = [tx.get_text() for tx in ax.get_legend().get_texts()]
    assert legend == [f"{kind} curve", "line"]
    assert {tx.get_text() for tx in ax.texts} >= {"A", "B", "bend"}
    assert ax.get_xlim() == (0.0, 1.0)  # the grid's extent, not the drawings'
    entry = viewer_data([surface], paths={"training path": ([0, 0.5], [0, 0.5])})["surfaces"][0]
    assert sorted(p["label"] for p in entry["paths"]) == sorted(
        [f"{kind} curve", "line", "training path"]
    )
    assert sorted(p["label"] for p in entry["points"]) == ["A", "B", "bend"]
    assert plot.main([str(plane_file), "--out", str(tmp_path / "p.png")]) == 0


def test_command_plane_resumes_and_refuses_curves_off_a_plane(tmp_path, ring_ends, capsys):
    a, b = ring_ends
    args = ["--ckpt", str(a), "--ckpt2", str(b), "--model", RING["model"], "--quiet"]
    args += ["--dataset", RING["dataset"], "--batch-size", "64", "--epochs", "1"]
    args += ["--split", "train", "--bn", "eval", "--out", str(tmp_path / "c.pt")]
    assert connect.main([*args, "--points", "0", "--plane", "3"]) == 0
    out = capsys.readouterr().out
    assert f"plane: {tmp_path / 'c_plane.h5'}" in out
    plane = ls.read_surface(tmp_path / "c_plane.h5")
    assert plane.shape == (3, 3) and plane.alpha.tolist() == [-0.25, 0.5, 1.25]
    assert "bezier curve" in stored_paths(plane)
    assert connect.main([*args, "--points", "0", "--plane", "3"]) == 0  # complete: resumed
    assert ls.read_surface(tmp_path / "c_plane.h5").provenance == plane.provenance
    for extra, needle in (
        (["--plane", "2"], "--plane must be 0"),
        (["--bends", "2", "--plane", "5"], "--plane needs a curve of one bend"),
    ):
        argv = [*args, "--out", str(tmp_path / "k.pt"), "--points", "0", *extra]
        assert connect.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "k.pt").exists()
    # From Python: a curve of two bends is refused in one line too.
    two = ls.CurveConfig(
        ckpt=a, ckpt2=b, out=tmp_path / "two.pt", bends=2, epochs=1, batch_size=64, **RING
    )
    ls.train_curve(two, device="cpu", progress=False)
    with pytest.raises(ls.InputError, match="has 2 bends") as caught:
        ls.curve_plane(tmp_path / "two.pt", tmp_path / "two_plane.h5", progress=False)
    assert len(str(caught.value).splitlines()) == 1
    assert not bend_path(tmp_path / "two.pt").exists()


def test_bootstrap_barrier_by_hand():
    rng = np.random.default_rng(7)
    curve = rng.uniform(0, 1, (3, 5))
    line = rng.uniform(0, 2, (4, 5))
    found = bootstrap_barrier(curve, line, resamples=40, seed=3)
    counts = np.random.default_rng(3).multinomial(5, np.full(5, 0.2), size=40)  # (B, N)
    draws = {"curve": [], "line": []}
    for w in counts:
        for name, losses in (("curve", curve), ("line", line)):
            m = [sum(w[i] * losses[k, i] for i in range(5)) / 5 for k in range(len(losses))]
            draws[name].append(max(m) - (m[0] + m[-1]) / 2)
    draws["line - curve"] = list(np.subtract(draws["line"], draws["curve"]))
    for name, losses in (("curve", curve), ("line", line)):
        m = losses.mean(1)
        assert found[name].value == pytest.approx(max(m) - (m[0] + m[-1]) / 2)
    assert found["line - curve"].value == pytest.approx(found["line"].value - found["curve"].value)
    for name, d in draws.items():
        assert (found[name].low, found[name].high) == pytest.approx(
            tuple(np.percentile(d, [2.5, 97.5]))
        )


@pytest.mark.child
def test_torchrun_shares_the_evaluation_and_gives_the_single_process_files(tmp_path, ring_ends):
    a, b = ring_ends
    args = ["--ckpt", str(a), "--ckpt2", str(b), "--model", RING["model"], "--epochs", "2"]
    args += ["--dataset", RING["dataset"], "--batch-size", "64", "--lr", "0.5"]
    args += ["--points", "5", "--bn-samples", "64", "--quiet", "--device", "cpu"]
    args += ["--out", str(tmp_path / "c.pt")]
    assert connect.main([*args, "--surface", str(tmp_path / "one.h5")]) == 0
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "plugin"), env["PYTHONPATH"]])
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "landscape.connect", *args, "--surface", str(tmp_path / "two.h5")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for one, two in (("one.h5", "two.h5"), ("one_line.h5", "two_line.h5")):
        s1, s2 = ls.read_surface(tmp_path / one), ls.read_surface(tmp_path / two)
        assert s1.values.keys() == s2.values.keys()
        for key in s1.values:
            np.testing.assert_array_equal(s1.values[key], s2.values[key], err_msg=key)
