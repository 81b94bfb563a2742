"""The analysis commands end to end: hessian, eigendirs, trajectory, responses.

Stored results are checked against the library on the same data, and the directions
files against `landscape compute --directions ... --norm none`.
"""

from __future__ import annotations

import copy
import json
import subprocess

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import PYTHON, REPO, make_checkpoint, randomize_bn, subprocess_env
from torch.func import functional_call

from landscape import __main__ as cli
from landscape import models
from landscape.analysis import hessian
from landscape.analysis.responses import gradient_norms, layer_response_std
from landscape.compute import main as compute_main
from landscape.data.datasets import load_split
from landscape.io.responses import read_responses
from landscape.io.surface_file import read_directions, read_surface
from landscape.io.trajectory import read_path

DATA = ["--dataset", "tinydata:tiny"]


def _xy(samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = load_split("tinydata:tiny", "train", samples=samples)
    return d.normalized(), d.y


def _model(path) -> torch.nn.Module:
    return models.load_checkpoint(path).model.eval()


def _weights(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.dim() > 1]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, params=None) -> float:
    out = functional_call(model.eval(), params, (x,)) if params else model.eval()(x)
    return float(F.cross_entropy(out, y))


def _surface(ckpt, out, *extra: str) -> None:
    assert compute_main(["--ckpt", str(ckpt), *DATA, "--out", str(out), "--quiet", *extra]) == 0


# ---------------------------------------------------------------- hessian


def test_hessian_at_optimum_matches_library(tmp_path, tiny_ckpt, capsys) -> None:
    out = tmp_path / "h.json"
    argv = ["hessian", "--ckpt", str(tiny_ckpt), *DATA, "--samples", "8", "--top-k", "2"]
    argv += ["--iters", "12", "--trace-samples", "3", "--seed", "3", "--out", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads(out.read_text())
    model = _model(tiny_ckpt)
    x, y = _xy(8)
    wrt = _weights(model)
    hvp = hessian.hvp_fn(model, x, y, batch_size=256, wrt=wrt)
    params = {n: p.detach() for n, p in model.named_parameters() if n in wrt}
    top, _ = hessian.top_eigenvalues(hvp, params, 2, iters=12, generator=_gen(3))
    lmin, _ = hessian.min_eigenvalue(hvp, params, iters=12, generator=_gen(3))
    trace, stderr = hessian.hutchinson_trace(hvp, params, samples=3, generator=_gen(3))
    np.testing.assert_allclose(doc["top_eigenvalues"], top, rtol=1e-9)
    assert doc["lambda_max"] == pytest.approx(top[0], rel=1e-9)
    assert doc["lambda_min"] == pytest.approx(lmin, rel=1e-9)
    assert doc["ratio"] == pytest.approx(abs(lmin / top[0]), rel=1e-9)
    assert (doc["trace"], doc["trace_stderr"]) == pytest.approx((trace, stderr), rel=1e-9)
    assert doc["parameters"] == sum(p.numel() for p in params.values())
    assert doc["data"]["n"] == 8 and doc["data"]["dataset"] == "tinydata:tiny"
    assert doc["config"]["wrt"] == "weights" and doc["config"]["seed"] == 3
    assert len(doc["provenance"]["ckpt_sha256"]) == 64
    assert out.with_suffix(".png").stat().st_size > 0
    table = capsys.readouterr().out
    assert "lambda_2" in table and "|lmin/lmax|" in table and "trace" in table


def test_hessian_surface_map_is_stored_and_matches_library(tmp_path, tiny_ckpt, capsys) -> None:
    surf = tmp_path / "s.h5"
    grid = ("--samples", "16", "--x", "-1:1:3", "--y", "-1:1:2")
    _surface(tiny_ckpt, surf, *grid)
    before = read_surface(surf)
    argv = ["hessian", "--surface", str(surf), "--samples", "8", "--iters", "4", "--quiet"]
    argv += ["--dataset", "tinydata:tiny"]  # a plugin is run only when named on the command line
    assert cli.main(argv) == 0
    after = read_surface(surf)
    model = _model(tiny_ckpt)
    x, y = _xy(8)
    expected = hessian.curvature_map(
        model,
        read_directions(surf),
        x,
        y,
        alpha=after.alpha,
        beta=after.beta,
        wrt=_weights(model),
        iters=4,
        tol=1e-2,
        generator=_gen(0),
    )
    ratio = after.values["train_curvature_ratio"]
    assert ratio.shape == (3, 2)
    np.testing.assert_allclose(ratio, expected, rtol=1e-9)
    lo, hi = after.values["train_lambda_min"], after.values["train_lambda_max"]
    np.testing.assert_allclose(np.abs(lo / hi), ratio)
    np.testing.assert_array_equal(after.get("train", "loss"), before.get("train", "loss"))
    with h5py.File(surf, "r") as f:
        attrs = f["train_curvature_ratio"].attrs
        assert attrs["iters"] == 4 and json.loads(attrs["data"])["n"] == 8
    assert (tmp_path / "s_curvature.png").stat().st_size > 0
    assert "train_curvature_ratio" in capsys.readouterr().out
    _surface(tiny_ckpt, surf, *grid)  # the surface still resumes: nothing to recompute


@pytest.mark.child
def test_hessian_refuses_surface_being_written_or_other_weights(tmp_path, tiny_ckpt, capsys):
    surf = tmp_path / "s.h5"
    _surface(tiny_ckpt, surf, "--samples", "4", "--x", "-1:1:2")
    holder = subprocess.Popen(
        [
            PYTHON,
            "-c",
            "import sys; from landscape.io.surface_file import SurfaceWriter; "
            "w = SurfaceWriter(sys.argv[1]); print('locked', flush=True); sys.stdin.read()",
            str(surf),
        ],
        cwd=REPO,
        env=subprocess_env(),
        stdin=subprocess.PIPE,  # holds the lock until killed: no time limit to guess
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["hessian", "--surface", str(surf), "--iters", "2", "--quiet"]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "being written by another process" in err and len(err.splitlines()) == 1, err
    finally:
        holder.kill()
        holder.wait()
    other = make_checkpoint(tmp_path / "other.pt", seed=5)
    assert cli.main(["hessian", "--surface", str(surf), "--ckpt", str(other)]) == 2
    assert "differs from the one" in capsys.readouterr().err
    assert "train_curvature_ratio" not in read_surface(surf).values


# ---------------------------------------------------------------- eigendirs


def test_eigendirs_are_top_eigenvectors_and_drive_compute(tmp_path, tiny_ckpt, capsys) -> None:
    dirs = tmp_path / "e.h5"
    argv = ["eigendirs", "--ckpt", str(tiny_ckpt), *DATA, "--samples", "8", "--iters", "12"]
    assert cli.main([*argv, "--seed", "2", "--out", str(dirs)]) == 0
    assert "--directions" in capsys.readouterr().out  # the next command is suggested
    stored = read_directions(dirs)
    model = _model(tiny_ckpt)
    x, y = _xy(8)
    wrt = _weights(model)
    hvp = hessian.hvp_fn(model, x, y, batch_size=256, wrt=wrt)
    params = {n: p.detach() for n, p in model.named_parameters() if n in wrt}
    top, vecs = hessian.top_eigenvalues(hvp, params, 2, iters=12, generator=_gen(2))
    with h5py.File(dirs, "r") as f:
        assert f.attrs["format"] == "landscape-directions"
        np.testing.assert_allclose(f.attrs["eigenvalues"], top, rtol=1e-3)
    flat = {a: torch.cat([stored[a][n].double().reshape(-1) for n in wrt]) for a in ("x", "y")}
    for axis, vec in zip(("x", "y"), vecs, strict=True):
        ref = torch.cat([vec[n].double().reshape(-1) for n in wrt])
        assert abs(float(flat[axis] @ ref)) == pytest.approx(1.0, abs=1e-4)  # same up to sign
        assert all(not stored[axis][n].any() for n in stored[axis] if n not in wrt)
    assert abs(float(flat["x"] @ flat["y"])) < 1e-4

    surf = tmp_path / "es.h5"
    _surface(
        tiny_ckpt,
        surf,
        *("--samples", "8", "--directions", str(dirs), "--norm", "none"),
        *("--x", "-0.5:0.5:3", "--y", "-0.5:0.5:3"),
    )
    result = read_surface(surf)
    assert result.computed.all()
    on_file = read_directions(surf)
    for axis in ("x", "y"):
        for n, t in stored[axis].items():
            torch.testing.assert_close(on_file[axis][n], t)
    loss = result.get("train", "loss")
    assert loss[1, 1] == pytest.approx(_loss(model, x, y), rel=1e-5)
    # theta* + 0.5 * dx, evaluated directly: the unnormalized direction is used as stored.
    moved = {n: p.detach() + 0.5 * stored["x"][n] for n, p in model.named_parameters()}
    assert loss[2, 1] == pytest.approx(_loss(model, x, y, moved), rel=1e-4)


# ---------------------------------------------------------------- trajectory


def _run_dir(tmp_path, offsets: list[dict[str, torch.Tensor]]):
    """epoch_000.pt ... at theta_final + offset, then final.pt at theta_final."""
    torch.manual_seed(0)
    final = randomize_bn(models.create_model("resnet20"), 0)
    run = tmp_path / "run"
    for epoch, offset in enumerate(offsets):
        model = copy.deepcopy(final)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in offset:
                    p.add_(offset[n])
        models.save_checkpoint(run / f"epoch_{epoch:03d}.pt", model, epoch=epoch)
    models.save_checkpoint(run / "final.pt", final, epoch=len(offsets))
    return run, final


def _unit_direction(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = _gen(seed)
    d = {n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters() if p.dim() > 1}
    norm = sum(float((t.double() ** 2).sum()) for t in d.values()) ** 0.5
    return {n: t / norm for n, t in d.items()}


def test_trajectory_straight_line_surface_holds_checkpoint_losses(tmp_path, capsys) -> None:
    model = models.create_model("resnet20")
    d = _unit_direction(model, 1)
    ts = [4.0, 2.0, -2.0]  # a straight path through theta_final, on grid points of --x
    run, _ = _run_dir(tmp_path, [{n: t * v for n, v in d.items()} for t in ts])
    dirs = tmp_path / "dirs.h5"
    assert cli.main(["trajectory", str(run), "--out", str(dirs)]) == 0
    captured = capsys.readouterr()
    assert "explained variance: x 100.0%" in captured.out
    assert "off the plane" not in captured.err
    assert "--directions" in captured.out and (tmp_path / "dirs.png").stat().st_size > 0
    alpha, beta, epochs = read_path(dirs)
    np.testing.assert_array_equal(epochs, [0, 1, 2, 3])
    np.testing.assert_allclose(alpha, [*ts, 0.0], atol=1e-4)  # the final checkpoint at (0, 0)
    np.testing.assert_allclose(beta, 0.0, atol=1e-4)

    surf = tmp_path / "path.h5"
    grid = ("--x", "-4:4:5", "--y", "-1:1:3", "--samples", "16")
    _surface(run / "final.pt", surf, "--directions", str(dirs), "--norm", "none", *grid)
    result = read_surface(surf)
    loss = result.get("train", "loss")
    x, y = _xy(16)
    names = [f"epoch_{i:03d}.pt" for i in range(len(ts))] + ["final.pt"]
    losses = [_loss(_model(run / name), x, y) for name in names]
    assert np.ptp(losses) > 100 * 1e-4 * max(losses)  # the checkpoints tell apart
    for name, a, b, expected in zip(names, alpha, beta, losses, strict=True):
        i = int(np.argmin(np.abs(result.alpha - a)))
        j = int(np.argmin(np.abs(result.beta - b)))
        assert abs(result.alpha[i] - a) < 1e-4 and abs(result.beta[j] - b) < 1e-4
        assert loss[i, j] == pytest.approx(expected, rel=1e-4), name

    # Drawn on the surface: the same directions are recomputed, the file stays the same
    # (so the surface still resumes), and a surface of other directions is refused.
    stored = dirs.read_bytes()
    fig = tmp_path / "on_surface.png"
    argv = ["trajectory", str(run), "--out", str(dirs), "--surface", str(surf)]
    assert cli.main([*argv, "--figure", str(fig)]) == 0
    assert fig.stat().st_size > 0 and dirs.read_bytes() == stored
    _surface(run / "final.pt", surf, "--directions", str(dirs), "--norm", "none", *grid)
    other = tmp_path / "random.h5"
    _surface(run / "final.pt", other, "--x", "-1:1:2", "--y", "-1:1:2", "--samples", "4")
    assert cli.main(["trajectory", str(run), "--out", str(dirs), "--surface", str(other)]) == 2
    assert "not computed with these PCA directions" in capsys.readouterr().err


def test_trajectory_warns_when_path_leaves_the_plane(tmp_path, capsys) -> None:
    model = models.create_model("resnet20")
    offsets = [{n: 2.0 * v for n, v in _unit_direction(model, s).items()} for s in (1, 2, 3)]
    run, _ = _run_dir(tmp_path, offsets)
    files = [str(run / f"epoch_{i:03d}.pt") for i in range(3)] + [str(run / "final.pt")]
    dirs = tmp_path / "d.h5"
    assert cli.main(["trajectory", *files, "--out", str(dirs), "--center"]) == 0
    captured = capsys.readouterr()
    assert "off the plane" in captured.err and "off-plane" in captured.out
    with h5py.File(dirs, "r") as f:
        assert bool(f.attrs["center"])
        off = f["path/off_plane_distance"][()]
    assert off.max() > 0.5 * 2.0


# ---------------------------------------------------------------- responses


def test_responses_of_checkpoints_match_library(tmp_path, tiny_ckpt, capsys) -> None:
    plain = make_checkpoint(tmp_path / "plain.pt", "plain20", seed=1)
    out = tmp_path / "r.json"
    argv = ["responses", str(tiny_ckpt), str(plain), *DATA, "--samples", "16", "--out", str(out)]
    assert cli.main(argv) == 0
    series = read_responses(out)
    assert [(s.label, s.kind, s.stage) for s in series] == [
        ("resnet20", "response_std", "trained"),
        ("resnet20", "gradient_norm", "trained"),
        ("plain20", "response_std", "trained"),
        ("plain20", "gradient_norm", "trained"),
    ]
    x, y = _xy(16)
    for path, resp, grad in ((tiny_ckpt, *series[:2]), (plain, *series[2:])):
        model = _model(path)
        stds = layer_response_std(model, x)
        assert resp.layers == [n for n, _ in stds]
        np.testing.assert_allclose(resp.values, [v for _, v in stds], rtol=1e-9)
        with torch.no_grad():  # the first layer's response, by hand: std after BN
            first = model.bn1(model.conv1(x))
        assert resp.values[0] == pytest.approx(float(first.double().std(unbiased=False)), rel=1e-5)
        norms = gradient_norms(model, x, y)
        assert grad.layers == [n for n, _ in norms]
        np.testing.assert_allclose(grad.values, [v for _, v in norms], rtol=1e-6)
    doc = json.loads(out.read_text())
    assert doc["meta"]["data"]["n"] == 16 and doc["meta"]["config"]["init"] is False
    assert (tmp_path / "r.png").stat().st_size > 0
    assert (tmp_path / "r_grad.png").stat().st_size > 0
    assert "plain20" in capsys.readouterr().out


def test_responses_of_fresh_networks(tmp_path) -> None:
    out = tmp_path / "init.json"
    fig, grad_fig = tmp_path / "a.svg", tmp_path / "b.pdf"
    argv = ["responses", "plain20", "resnet20", "--init", "--seed", "4", *DATA]
    argv += ["--samples", "16", "--out", str(out), "--figure", str(fig)]
    assert cli.main([*argv, "--grad-figure", str(grad_fig)]) == 0
    series = read_responses(out)
    assert [s.label for s in series[::2]] == ["plain20", "resnet20"]
    assert {s.stage for s in series} == {"init"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        model = models.create_model("plain20", num_classes=10)
    x, _ = _xy(16)
    expected = layer_response_std(model, x)
    np.testing.assert_allclose(series[0].values, [v for _, v in expected], rtol=1e-9)
    assert fig.stat().st_size > 0 and grad_fig.stat().st_size > 0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "argv,message",
    [
        (["hessian", *DATA], "give --ckpt CKPT"),
        (["hessian", "--ckpt", "{ckpt}", "--top-k", "0"], "--top-k must be a positive"),
        (["hessian", "--ckpt", "{ckpt}", "--out", "{tmp}/r.txt"], "--out must end in .json"),
        (["hessian", "--ckpt", "{tmp}/missing.pt"], "does not exist"),
        (["hessian", "--ckpt", "{ckpt}", "--dataset", "nosuchmod_xyz:f"], "nosuchmod_xyz"),
        (["hessian", "--surface", "{tmp}/none.h5"], "does not exist"),
        (["hessian", "--surface", "{ckpt}"], "not a readable HDF5 file"),
        (["hessian", "--ckpt", "{ckpt}", "--wrt", "bias"], "argument --wrt: invalid choice"),
        (["eigendirs", "--ckpt", "{ckpt}", "--out", "{tmp}/d.txt"], "--out must end in .h5"),
        (["eigendirs", "--ckpt", "{ckpt}", "--out", "{tmp}/d.h5", "--iters", "1"], "--iters"),
        (["eigendirs", "--out", "{tmp}/d.h5"], "--ckpt"),
        (["trajectory", "{tmp}/norun", "--out", "{tmp}/d.h5"], "does not exist"),
        (["trajectory", "{ckpt}", "--out", "{tmp}/d.h5"], "at least 2 checkpoints"),
        (["trajectory", "{ckpt}", "{ckpt}", "--out", "{tmp}/d.h5", "--figure", "{tmp}/f.x"], "png"),
        (["responses", "nosuchnet", "--init", *DATA], "unknown model 'nosuchnet'"),
        (["responses", "{ckpt}", "--labels", "a,b", *DATA], "--labels has 2 entries"),
        (["responses", "{tmp}/missing.pt", *DATA], "does not exist"),
        (["responses", "{ckpt}", "--bn", "bogus"], "argument --bn: invalid choice"),
    ],
)
def test_bad_input_exit_2_one_line(tmp_path, tiny_ckpt, capsys, argv, message) -> None:
    argv = [a.format(ckpt=tiny_ckpt, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "d.h5").exists()


def test_dispatch(capsys) -> None:
    assert cli.main(["--help"]) == 0
    assert "eigendirs" in capsys.readouterr().out
    assert cli.main(["bogus"]) == 2
    assert "unknown command 'bogus'" in capsys.readouterr().err
    for name in ("hessian", "eigendirs", "trajectory", "responses"):
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0
        assert f"landscape {name}" in capsys.readouterr().out


def test_hessian_surface_map_of_one_stage_matches_the_library_on_that_stage(
    tmp_path, tiny_ckpt
) -> None:
    surf = tmp_path / "s.h5"
    _surface(tiny_ckpt, surf, "--samples", "16", "--x", "-1:1:3", "--y", "-1:1:2")
    argv = ["hessian", "--surface", str(surf), "--samples", "8", "--iters", "4", "--quiet",
            "--dataset", "tinydata:tiny", "--params", "layer3.*"]  # fmt: skip
    assert cli.main(argv) == 0
    after = read_surface(surf)
    model = _model(tiny_ckpt)
    x, y = _xy(8)
    stage3 = [n for n in _weights(model) if n.startswith("layer3.")]
    expected = hessian.curvature_map(
        model, read_directions(surf), x, y, alpha=after.alpha, beta=after.beta,
        wrt=stage3, iters=4, tol=1e-2, generator=_gen(0),
    )  # fmt: skip
    np.testing.assert_allclose(after.values["train_curvature_ratio"], expected, rtol=1e-9)
    with h5py.File(surf, "r") as f:
        assert f["train_curvature_ratio"].attrs["params"] == "layer3.*"


def test_eigendirs_of_one_stage_are_its_sub_hessians_top_eigenvectors(tmp_path, tiny_ckpt):
    dirs = tmp_path / "e3.h5"
    argv = ["eigendirs", "--ckpt", str(tiny_ckpt), *DATA, "--samples", "8", "--iters", "12",
            "--params", "layer3.*", "--out", str(dirs)]  # fmt: skip
    assert cli.main(argv) == 0
    stored = read_directions(dirs)
    model = _model(tiny_ckpt)
    x, y = _xy(8)
    stage3 = [n for n in _weights(model) if n.startswith("layer3.")]
    hvp = hessian.hvp_fn(model, x, y, batch_size=256, wrt=stage3)
    params = {n: p.detach() for n, p in model.named_parameters() if n in stage3}
    _, vecs = hessian.top_eigenvalues(hvp, params, 2, iters=12, generator=_gen(0))
    for axis, vec in zip(("x", "y"), vecs, strict=True):
        got = torch.cat([stored[axis][n].double().reshape(-1) for n in stage3])
        ref = torch.cat([vec[n].double().reshape(-1) for n in stage3])
        assert abs(float(got @ ref)) == pytest.approx(1.0, abs=1e-4)  # same up to sign
        assert all(not stored[axis][n].any() for n in stored[axis] if n not in stage3)
