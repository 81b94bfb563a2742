"""The surface engine against a naive computation: weights set by hand, model run, loss compared."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import make_checkpoint, randomize_bn
from tinydata import tiny

from landscape import models
from landscape.io.surface_file import StoreError, read_directions
from landscape.surface.config import SurfaceConfig
from landscape.surface.engine import compute_surface, run, state_of
from landscape.surface.evaluate import EvalData, make_evaluator

RTOL = 1e-5


def naive_loss(model, state, dirs, a, b, x, y, loss="ce"):
    """Copy theta* + a*dx + b*dy into a fresh copy of the model by hand and run it."""
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, t in {**dict(m.named_parameters()), **dict(m.named_buffers())}.items():
            v = state[name].clone()
            if name in dirs.get("x", {}):
                v += a * dirs["x"][name]
            if name in dirs.get("y", {}):
                v += b * dirs["y"][name]
            t.copy_(v)
        out = m(x)
        if loss == "mse":
            value = F.mse_loss(out, F.one_hot(y, out.shape[1]).float())
        else:
            value = F.cross_entropy(out, y)
        return float(value), float((out.argmax(1) == y).double().mean())


@pytest.fixture
def model():
    torch.manual_seed(0)
    return randomize_bn(models.create_model("resnet20"))


def data():
    return {"train": tiny("train"), "test": tiny("test")}


@pytest.mark.parametrize(
    "grid",
    [dict(x="-1:1:5"), dict(x="-1:1:4", y="-0.5:1:3"), dict(x="-0.2:0.6:3", y="-1:1:5")],
    ids=["1d", "2d", "non-square"],
)
def test_stored_values_equal_naive(tmp_path, model, grid) -> None:
    config = SurfaceConfig(split=("train", "test"), **grid)
    surface = compute_surface(model, data(), config, out=tmp_path / "s.h5", progress=False)
    dirs = read_directions(tmp_path / "s.h5")
    state = state_of(model)
    beta = surface.beta if surface.is_2d else [0.0]
    for split in ("train", "test"):
        x, y = data()[split]
        loss = surface.get(split, "loss").reshape(len(surface.alpha), len(beta))
        acc = surface.get(split, "accuracy").reshape(loss.shape)
        for i, a in enumerate(surface.alpha):  # loss[i, j] is at (alpha[i], beta[j])
            for j, b in enumerate(beta):
                ref_loss, ref_acc = naive_loss(model, state, dirs, a, b, x, y)
                assert loss[i, j] == pytest.approx(ref_loss, rel=RTOL)
                assert acc[i, j] == pytest.approx(ref_acc, abs=1e-12)


def test_center_is_unperturbed_model_and_model_untouched(tmp_path, model) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = SurfaceConfig(x="-1:1:3", y="-1:1:3")
    surface = compute_surface(model, data(), config, out=tmp_path / "s.h5", progress=False)
    x, y = data()["train"]
    with torch.no_grad():
        ref = float(F.cross_entropy(model.eval()(x), y))
    assert surface.get("train", "loss")[1, 1] == pytest.approx(ref, rel=RTOL)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training is False or model.training is True  # mode is the caller's
    assert not any(p.grad is not None for p in model.parameters())


def test_strategies_agree(model) -> None:
    """Batched (vmap) and folded results equal one-point-at-a-time results."""
    state = state_of(model)
    g = torch.Generator().manual_seed(0)
    from landscape.surface.directions import random_direction

    params = {k: v for k, v in state.items() if k in dict(model.named_parameters())}
    dx = random_direction(params, generator=g)
    dy = random_direction(params, generator=g, ignore="none")
    x, y = tiny("train")
    splits = {"train": EvalData(x, y)}
    coords = np.array([[0.0, 0.0], [0.3, -0.7], [-1.0, 0.5], [0.9, 0.9], [0.1, 0.2]])
    results = {
        s: make_evaluator(model, state, dx, dy, splits, strategy=s, batch_size=20, chunk_size=2)(
            coords
        )
        for s in ("pointwise", "folded", "vmap")
    }
    for s in ("folded", "vmap"):
        np.testing.assert_allclose(
            results[s]["train_loss"], results["pointwise"]["train_loss"], rtol=RTOL
        )
        np.testing.assert_array_equal(
            results[s]["train_accuracy"], results["pointwise"]["train_accuracy"]
        )


def test_vmap_backs_off_when_memory_is_tight(model) -> None:
    """Simulated OOM above a budget of points x samples: the evaluator halves K, then the batch."""
    state = state_of(model)
    dx = {"fc.weight": torch.randn_like(state["fc.weight"])}
    x, y = tiny("train")
    ev = make_evaluator(
        model,
        state,
        dx,
        None,
        {"train": EvalData(x, y)},
        strategy="vmap",
        batch_size=48,
        chunk_size=8,
    )
    calls = []
    real = ev._evaluate_points

    def limited(coords):
        calls.append((len(coords), ev.batch_size))
        if len(coords) * ev.batch_size > 30:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(coords)

    ev._evaluate_points = limited
    coords = np.stack([np.linspace(-1, 1, 6), np.zeros(6)], axis=1)
    got = ev(coords)
    ref = make_evaluator(
        model, state, dx, None, {"train": EvalData(x, y)}, strategy="pointwise", batch_size=48
    )(coords)
    np.testing.assert_allclose(got["train_loss"], ref["train_loss"], rtol=RTOL)
    assert ev.chunk_size == 1 and ev.batch_size == 24
    assert calls[0] == (6, 48)


def test_mse_loss(tmp_path, model) -> None:
    config = SurfaceConfig(x="0:1:2", loss="mse")
    surface = compute_surface(model, data(), config, out=tmp_path / "s.h5", progress=False)
    dirs = read_directions(tmp_path / "s.h5")
    x, y = tiny("train")
    ref, _ = naive_loss(model, state_of(model), dirs, 1.0, 0.0, x, y, loss="mse")
    assert surface.get("train", "loss")[1] == pytest.approx(ref, rel=RTOL)


def test_bn_recompute_uses_training_statistics(tmp_path, model) -> None:
    """At (0, 0) with recompute, the loss equals the model with BN stats from the bn data."""
    xb, _ = tiny("train")
    config = SurfaceConfig(x="0:1:2", bn="recompute")
    surface = compute_surface(
        model,
        data(),
        config,
        out=tmp_path / "s.h5",
        progress=False,
        bn_data=(xb, torch.zeros(len(xb), dtype=torch.long)),
    )
    ref = copy.deepcopy(model)
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    ref.train()
    with torch.no_grad():
        ref(xb)
        x, y = tiny("train")
        expected = float(F.cross_entropy(ref.eval()(x), y))
    assert surface.get("train", "loss")[0] == pytest.approx(expected, rel=RTOL)


def test_interpolation_endpoints_equal_each_models_loss(tmp_path) -> None:
    a = make_checkpoint(tmp_path / "a.pt", seed=1)
    b = make_checkpoint(tmp_path / "b.pt", seed=2)
    config = SurfaceConfig(
        ckpt=str(a), ckpt2=str(b), x="0:1:3", dataset="tinydata:tiny", split=("test",)
    )
    surface = run(config, tmp_path / "i.h5", progress=False)
    x, y = tiny("test")
    for path, k in ((a, 0), (b, 2)):
        m = models.load_checkpoint(path).model.eval()
        with torch.no_grad():
            ref = float(F.cross_entropy(m(x), y))
        assert surface.get("test", "loss")[k] == pytest.approx(ref, rel=RTOL)


def test_plane_through_three_models(tmp_path) -> None:
    paths = [make_checkpoint(tmp_path / f"{i}.pt", seed=i) for i in range(3)]
    config = SurfaceConfig(
        ckpt=str(paths[0]),
        ckpt2=str(paths[1]),
        ckpt3=str(paths[2]),
        x="0:1:2",
        y="0:1:2",
        dataset="tinydata:tiny",
        split=("test",),
    )
    surface = run(config, tmp_path / "p.h5", progress=False)
    x, y = tiny("test")
    m = models.load_checkpoint(paths[2]).model.eval()
    with torch.no_grad():
        ref = float(F.cross_entropy(m(x), y))
    assert surface.get("test", "loss")[0, 1] == pytest.approx(ref, rel=RTOL)


def test_directions_from_file_reproduce_surface(tmp_path, tiny_ckpt) -> None:
    common = dict(ckpt=str(tiny_ckpt), dataset="tinydata:tiny", x="-1:1:3", y="-1:1:3")
    first = run(SurfaceConfig(seed=5, **common), tmp_path / "a.h5", progress=False)
    again = run(
        SurfaceConfig(directions=str(tmp_path / "a.h5"), **common),
        tmp_path / "b.h5",
        progress=False,
    )
    np.testing.assert_array_equal(first.get("train", "loss"), again.get("train", "loss"))
    with pytest.raises(StoreError, match="no 'y' direction"):
        one_d = run(SurfaceConfig(**{**common, "y": None}), tmp_path / "c.h5", progress=False)
        run(SurfaceConfig(directions=str(one_d.path), **common), tmp_path / "d.h5", progress=False)


def test_file_layout_and_provenance(tmp_path, tiny_ckpt) -> None:
    config = SurfaceConfig(
        ckpt=str(tiny_ckpt),
        dataset="tinydata:tiny",
        x="-1:1:3",
        y="0:1:2",
        split=("train", "test"),
        orthogonalize=True,
    )
    run(config, tmp_path / "s.h5", progress=False)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert f.attrs["format"] == "landscape-surface" and f.attrs["format_version"] == 2
        assert f["train_loss"].shape == (3, 2) and f["test_accuracy"].dtype == np.float64
        assert f["train_loss_se"].shape == f["test_accuracy_se"].shape == (3, 2)
        assert f["per_sample/train_loss"].shape == (3, 2, 48)  # small: kept by default
        assert f["directions/x/conv1.weight"].dtype == np.float32
        assert set(f["directions"]) == {"x", "y"}
        assert abs(f.attrs["cosine_xy"]) < 1e-6
        import json

        prov = json.loads(f.attrs["provenance"])
        assert len(prov["ckpt_sha256"]) == 64 and prov["torch"] == torch.__version__
        assert prov["data"]["train"]["n"] == 48
    xr = pytest.importorskip("xarray")
    ds = xr.open_dataset(tmp_path / "s.h5", engine="h5netcdf")
    assert ds["train_loss"].dims == ("alpha", "beta")
    np.testing.assert_array_equal(ds["beta"].values, [0.0, 1.0])


def test_label_mismatch_is_refused(tmp_path) -> None:
    x, y = tiny("train")
    bad = {"train": (x, y + 10)}
    with pytest.raises(ValueError, match="train split go up to 19 but the model has 10 outputs"):
        compute_surface(
            models.create_model("resnet20"),
            bad,
            SurfaceConfig(x="0:1:2"),
            out=tmp_path / "s.h5",
            progress=False,
        )
