"""Every curvature and sharpness analysis with a task (`landscape.analysis.objective`):
density, per-block curvature, sharpness, eigen-directions, curvature maps, each checked
against an independent computation (the exact Hessian from
`torch.autograd.functional.hessian`, `torch.linalg.eigh`, autograd gradients) on a
regression MLP with tuple batches and the tiny transformer LM with dict batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tinytask
import torch
from torch.func import functional_call

import landscape as ls
from landscape.analysis import hessian

torch.set_default_dtype(torch.float32)


def double(batches):
    return [
        {k: v for k, v in b.items()}
        if isinstance(b, dict)
        else tuple(t.double() if t.is_floating_point() else t for t in b)
        for b in batches
    ]


def mlp64():
    return tinytask.mlp().double().eval()


def lm64():
    return tinytask.tiny_lm().double().eval()


def regression64(n: int = 48, batch: int = 16):
    return double(tinytask.regression_batches(n=n, batch=batch))


def exact_hessian(model, loss_fn, batches, names) -> torch.Tensor:
    """The Hessian of the sample-mean loss over `names` (flat, in that order), by
    `torch.autograd.functional.hessian` of the per-sample losses' sum over all batches."""
    base = {n: p.detach() for n, p in model.named_parameters()}
    shapes = [base[n].shape for n in names]
    numels = [base[n].numel() for n in names]
    total = sum(len(loss_fn(model, b)) for b in batches)

    def f(flat):
        parts = flat.split(numels)
        params = {**base, **{n: p.view(s) for n, p, s in zip(names, parts, shapes, strict=True)}}

        class Bound(torch.nn.Module):  # loss_fn calls model(...): the params put in
            def __call__(self, *args, **kwargs):
                return functional_call(model, params, args, kwargs)

        return sum(loss_fn(Bound(), b).sum() for b in batches) / total

    flat0 = torch.cat([base[n].reshape(-1) for n in names])
    return torch.autograd.functional.hessian(f, flat0)


# ------------------------------------------------------------------ the spectrum


def test_density_of_the_lm_head_is_the_exact_spectrum_and_its_trace() -> None:
    """A depth as large as the side: each probe's Krylov space is everything, so its nodes
    are the exact eigenvalues (of those its start vector touches) and its weights their
    squared components; the measure's moments are those of the exact Hessian's spectrum."""
    model, batches = lm64(), tinytask.lm_batches()
    names = ["head.weight"]
    h = exact_hessian(model, tinytask.lm_loss, batches, names)
    eig = torch.linalg.eigvalsh(h).numpy()
    dim = len(eig)
    res = ls.spectral_density(
        model, batches, task=tinytask.lm_loss, params=names, probes=4, depth=dim,
        device="cpu", progress=False,
    )  # fmt: skip
    assert res.samples == 12 and res.parameters == names and res.slq.dimension == dim
    scale = float(np.abs(eig).max())
    for nodes in res.slq.nodes:
        nearest = np.abs(nodes[:, None] - eig[None, :]).min(1)
        assert nearest.max() < 1e-6 * scale
    # Moments: sum_i w_i nodes_i^k |v|^2 = v^T H^k v for every probe, k = 1, 2.
    nodes, weights = res.slq.measure()
    first = float(np.sum(nodes * weights))
    second = float(np.sum(nodes**2 * weights))
    probes = res.slq.probes
    assert res.slq.quad_forms == pytest.approx(
        [
            np.sum(w * n) * n2
            for n, w, n2 in zip(res.slq.nodes, res.slq.weights, res.slq.norms2, strict=True)
        ],
        rel=1e-8,
    )
    # The Rademacher estimate of tr(H)/P and tr(H^2)/P: within a few of its spreads.
    assert abs(first - eig.mean()) < 4 * res.trace_stderr / dim + 1e-9
    assert second == pytest.approx(float(np.mean(eig**2)), rel=0.5)
    assert abs(res.trace - eig.sum()) < 4 * res.trace_stderr
    assert probes == 4


def test_hessian_spectrum_takes_the_task_object_and_loss_fn_alike() -> None:
    model, batches = mlp64(), regression64()
    names = ["4.weight", "4.bias"]
    eig = torch.linalg.eigvalsh(exact_hessian(model, tinytask.mse_loss, batches, names)).numpy()
    kw = {"k": 2, "iters": 17, "trace_samples": 0, "wrt": "all", "params": "4.*",
          "progress": False, "device": "cpu"}  # fmt: skip
    a = ls.hessian_spectrum(model, batches, task=ls.Task(tinytask.mse_loss), **kw)
    b = ls.hessian_spectrum(model, batches, loss_fn=tinytask.mse_loss, **kw)
    assert a.top_eigenvalues == pytest.approx(eig[::-1][:2], rel=1e-8)
    assert a.lambda_min == pytest.approx(eig[0], abs=1e-4 * eig[-1])  # Lanczos tol
    assert np.array_equal(a.top_eigenvalues, b.top_eigenvalues)
    with pytest.raises(ls.InputError, match="task= or loss_fn=, not both"):
        ls.hessian_spectrum(model, batches, task=tinytask.mse_loss, loss_fn=tinytask.mse_loss)
    with pytest.raises(ls.InputError, match="task must be a landscape.Task"):
        ls.hessian_spectrum(model, batches, task="mse", progress=False)


def test_per_block_curvature_of_a_task_matches_the_exact_sub_hessians() -> None:
    model, batches = mlp64(), regression64()
    blocks = {"first": "0.*", "last": "4.*"}
    got = ls.per_block_curvature(
        model, batches, task=tinytask.mse_loss, blocks=blocks, wrt="all", iters=40,
        trace_samples=30, jackknife=3, device="cpu", progress=False,
    )  # fmt: skip
    assert [b.name for b in got] == ["first", "last"]
    for block, names in zip(got, (["0.weight", "0.bias"], ["4.weight", "4.bias"]), strict=True):
        assert block.names == names
        h = exact_hessian(model, tinytask.mse_loss, batches, names)
        eig = torch.linalg.eigvalsh(h).numpy()
        assert block.parameters == len(eig)
        assert block.lambda_max == pytest.approx(eig[-1], rel=1e-8)
        assert abs(block.trace - eig.sum()) < 4 * block.trace_stderr + 1e-9
        # The delete-one-batch jackknife, by hand from the exact Hessians.
        tops = np.array([
            torch.linalg.eigvalsh(
                exact_hessian(model, tinytask.mse_loss, batches[:i] + batches[i + 1 :], names)
            )[-1].item()
            for i in range(3)
        ])  # fmt: skip
        want = math.sqrt(2 / 3 * np.sum((tops - tops.mean()) ** 2))
        assert block.jackknife == 3 and block.lambda_max_stderr == pytest.approx(want, rel=1e-6)
    with pytest.raises(ls.InputError, match="jackknife 4 exceeds the 3 batches"):
        ls.per_block_curvature(
            model, batches, task=tinytask.mse_loss, blocks=blocks, jackknife=4, progress=False
        )
    with pytest.raises(ls.InputError, match="no layerK stages"):
        ls.per_block_curvature(model, batches, task=tinytask.mse_loss, progress=False)


# ------------------------------------------------------------------ sharpness


def test_worst_case_sharpness_of_a_task_is_rho_times_the_gradient_norm() -> None:
    """For a small ball the largest rise is rho |g| (+ O(rho^2)): |g| of each batch's mean
    loss by autograd, independently."""
    model, batches = mlp64(), regression64()
    rho = 1e-5
    res = ls.worst_case_sharpness(
        model, batches, task=tinytask.mse_loss, radius=rho, scale="absolute", wrt="all",
        steps=5, device="cpu", progress=False,
    )  # fmt: skip
    assert res.m == 16 and len(res.per_batch) == 3
    for rise, (x, y) in zip(res.per_batch, batches, strict=True):
        model.zero_grad()
        loss = tinytask.mse_loss(model, (x, y)).mean()
        grads = torch.autograd.grad(loss, list(model.parameters()))
        g = math.sqrt(sum(float((t**2).sum()) for t in grads))
        assert rise == pytest.approx(rho * g, rel=1e-3)
    with torch.no_grad():
        base = np.mean([float(tinytask.mse_loss(model, b).mean()) for b in batches])
    assert res.base_loss == pytest.approx(base, rel=1e-10)


def test_average_case_sharpness_of_a_task_is_half_sigma_squared_the_trace() -> None:
    """Antithetic Gaussian noise of size sigma (absolute: N(0, I)): the rise is
    sigma^2/2 d^T H_b d + O(sigma^4), whose mean over d is sigma^2/2 tr(H_b)."""
    model, batches = mlp64(), regression64()
    names = ["4.weight", "4.bias"]
    sigma = 1e-3
    res = ls.average_case_sharpness(
        model, batches, task=tinytask.mse_loss, radius=sigma, scale="absolute", params="4.*",
        wrt="all", perturbations=200, device="cpu", progress=False,
    )  # fmt: skip
    traces = [
        float(torch.trace(exact_hessian(model, tinytask.mse_loss, [b], names))) for b in batches
    ]
    want = sigma**2 / 2 * np.mean(traces)
    assert abs(res.value - want) < 4 * res.stderr_perturbations
    assert res.value == pytest.approx(want, rel=0.3)
    # m with a task: tensors are cut into batches of m; a list's sizes must agree.
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    cut = ls.average_case_sharpness(
        model, (x, y), task=tinytask.mse_loss, m=16, radius=sigma, perturbations=3,
        device="cpu", progress=False,
    )  # fmt: skip
    assert cut.m == 16 and len(cut.per_batch) == 3
    with pytest.raises(ls.InputError, match="each batch of the data is one batch"):
        ls.average_case_sharpness(
            model, batches, task=tinytask.mse_loss, m=10, device="cpu", progress=False
        )


# ------------------------------------------------------------------ eigen-directions


def test_eigendirections_of_the_lm_are_the_exact_top_eigenvectors() -> None:
    model, batches = lm64(), tinytask.lm_batches()
    names = ["head.weight", "blocks.0.attn.q.weight"]
    h = exact_hessian(model, tinytask.lm_loss, batches, names)
    eig, vec = torch.linalg.eigh(h)
    assert float(eig[-1] - eig[-2]) > 1e-3 * float(eig[-1])  # a gap: unique directions
    dirs = ls.eigenvector_directions(
        model, batches, task=tinytask.lm_loss, wrt=names, iters=len(eig), tol=1e-10
    )
    for axis, k in (("x", -1), ("y", -2)):
        flat = torch.cat([dirs[axis][n].double().reshape(-1) for n in names])
        assert abs(float(flat @ vec[:, k])) == pytest.approx(1.0, abs=1e-5)
        others = [n for n in dirs[axis] if n not in names]
        assert others and all(not torch.count_nonzero(dirs[axis][n]) for n in others)
    with pytest.raises(ls.InputError, match="pass the batches as x and no y"):
        ls.eigenvector_directions(model, batches, torch.zeros(3), task=tinytask.lm_loss)


# ------------------------------------------------------------------ curvature maps


def test_extreme_eigenvalue_map_of_a_task_matches_the_exact_hessian_at_each_point() -> None:
    model, batches = mlp64(), regression64()
    names = ["4.weight", "4.bias"]
    g = torch.Generator().manual_seed(1)
    base = {n: p.detach() for n, p in model.named_parameters()}
    dx = {n: torch.randn(t.shape, generator=g, dtype=t.dtype) * 0.3 for n, t in base.items()}
    alpha = np.array([-1.0, 0.0, 1.0])
    lo, hi = hessian.extreme_eigenvalue_map(
        model, {"x": dx}, batches, alpha=alpha, wrt=names, iters=17, tol=1e-10,
        task=tinytask.mse_loss,
    )  # fmt: skip
    for i, a in enumerate(alpha):
        moved = mlp64()
        with torch.no_grad():
            for n, p in moved.named_parameters():
                p.add_(a * dx[n])
        eig = torch.linalg.eigvalsh(exact_hessian(moved, tinytask.mse_loss, batches, names))
        assert lo[i] == pytest.approx(float(eig[0]), abs=1e-7 * float(eig.abs().max()))
        assert hi[i] == pytest.approx(float(eig[-1]), rel=1e-7)


def test_surface_curvature_map_of_a_python_task_surface(tmp_path) -> None:
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    out = tmp_path / "t.h5"
    config = ls.SurfaceConfig(x=(-1, 1, 3), y=(-1, 1, 3))
    ls.compute_surface(model, batches, config, out=out, loss_fn=tinytask.mse_loss, progress=False)
    with pytest.raises(ls.InputError, match="computed from Python; pass the same task=") as e:
        ls.surface_curvature_map(out, progress=None)
    assert "\n" not in str(e.value)
    with pytest.raises(ls.InputError, match="pass model="):
        ls.surface_curvature_map(out, task=tinytask.mse_loss, data=batches)
    other = tinytask.mlp(seed=1)
    with pytest.raises(ls.InputError, match="other weights"):
        ls.surface_curvature_map(out, task=tinytask.mse_loss, data=batches, model=other)
    result = ls.surface_curvature_map(
        out, task=tinytask.mse_loss, data=batches, model=model, iters=30, tol=1e-6,
        device="cpu",
    )  # fmt: skip
    assert result.ratio.shape == (3, 3) and np.isfinite(result.lambda_max).all()
    # theta* is the middle point: lambda_max there is the task's top eigenvalue.
    names = [n for n, p in model.named_parameters() if p.dim() > 1]
    top = torch.linalg.eigvalsh(exact_hessian(model, tinytask.mse_loss, batches, names))[-1]
    assert result.lambda_max[1, 1] == pytest.approx(float(top), rel=1e-3)
    assert ls.read_surface(out).values["train_curvature_ratio"].shape == (3, 3)


def test_layer_responses_refuse_a_task_in_one_line() -> None:
    model = tinytask.mlp()
    for fn in (ls.layer_response_std, ls.gradient_norms):
        with pytest.raises(ls.InputError, match="shipped CNNs .* takes no task") as e:
            fn(model, torch.zeros(2, 1), task=tinytask.mse_loss)
        assert "\n" not in str(e.value)


# ------------------------------------------------------------------ the command line


def lm_checkpoint(tmp_path):
    path = tmp_path / "lm.pt"
    torch.save(tinytask.tiny_lm().state_dict(), path)
    return path


LM = ("--model", "tinytask:tiny_lm", "--task", "tinytask:lm_task", "--device", "cpu", "--quiet")


def test_command_line_hessian_modes_with_a_task(tmp_path, capsys) -> None:
    import json

    from landscape.hessian import main

    ckpt = lm_checkpoint(tmp_path)
    common = ["--ckpt", str(ckpt), *LM]
    out = tmp_path / "d.json"
    args = [*common, "--density", "--params", "head.weight", "--probes", "3", "--depth", "20"]
    assert main([*args, "--out", str(out)]) == 0
    lib = ls.spectral_density(
        tinytask.tiny_lm(), tinytask.lm_batches(), task=tinytask.lm_loss, params="head.weight",
        probes=3, depth=20, device="cpu", progress=False,
    )  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["config"]["task"] == "tinytask:lm_task"
    assert doc["samples"] == 12 or doc.get("data", {}).get("task") == "tinytask:lm_task"
    assert f"{lib.trace:.6g}" in capsys.readouterr().out
    out = tmp_path / "h.json"
    assert main([*common, "--top-k", "1", "--iters", "20", "--trace-samples", "0",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "lambda_1" in capsys.readouterr().out
    out = tmp_path / "s.json"
    assert main([*common, "--sharpness", "average", "--perturbations", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "over 3 batches of 4" in capsys.readouterr().out
    out = tmp_path / "b.json"
    assert main([*common, "--per-block", "--out", str(out)]) == 2
    assert "no layerK stages" in capsys.readouterr().err
    assert main([*common, "--density", "--loss", "mse", "--out", str(out)]) == 2
    assert "--loss" in capsys.readouterr().err


def test_command_line_eigendirs_with_a_task(tmp_path, capsys) -> None:
    from landscape.eigendirs import main

    ckpt = lm_checkpoint(tmp_path)
    out = tmp_path / "dirs.h5"
    args = ["--ckpt", str(ckpt), *LM[:-1], "--params", "head.weight", "--iters", "88"]
    assert main([*args, "--out", str(out)]) == 0
    dirs = ls.read_directions(out)
    lib = ls.eigenvector_directions(
        tinytask.tiny_lm(), tinytask.lm_batches(), task=tinytask.lm_loss, wrt=["head.weight"],
        iters=88,
    )  # fmt: skip
    for axis in ("x", "y"):
        assert torch.allclose(dirs[axis]["head.weight"], lib[axis]["head.weight"], atol=1e-4)
    assert "--task tinytask:lm_task" in capsys.readouterr().out


def test_command_line_curvature_map_of_a_task_surface(tmp_path, capsys) -> None:
    from landscape.compute import main as compute
    from landscape.hessian import main

    ckpt = lm_checkpoint(tmp_path)
    out = tmp_path / "lm.h5"
    args = ["--ckpt", str(ckpt), *LM, "--x", "-1:1:3", "--params", "head.*", "--out", str(out)]
    assert compute(args) == 0
    fig = tmp_path / "map.png"
    assert main(["--surface", str(out), "--model", "tinytask:tiny_lm", "--params", "head.*",
                 "--iters", "10", "--quiet", "--figure", str(fig)]) == 0  # fmt: skip
    assert ls.read_surface(out).values["train_curvature_ratio"].shape == (3,)
    assert fig.is_file()
