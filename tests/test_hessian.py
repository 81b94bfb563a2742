"""Hessian eigenvalues, trace and curvature maps against exact Hessians of tiny networks."""

import copy

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from landscape.analysis import hessian
from landscape.io.curvature import write_curvature_map
from landscape.io.surface_file import StoreError, create_surface_file, read_surface


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny ops: thread hand-offs cost more than the work on a small shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _mlp(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (10,), generator=g)
    return model, x, y


def _exact_hessian(model, x, y, names, loss="ce") -> torch.Tensor:
    """The full Hessian of the all-at-once mean loss over `names`, (P, P)."""
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    loss_fn = torch.nn.functional.cross_entropy if loss == "ce" else torch.nn.functional.mse_loss

    def f(flat):
        pieces = [p.reshape(s) for p, s in zip(flat.split(sizes), shapes, strict=True)]
        parts = dict(zip(names, pieces, strict=True))
        fixed = {n: p.detach() for n, p in params.items() if n not in parts}
        return loss_fn(functional_call(model, {**fixed, **parts}, (x,)), y)

    flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    return torch.autograd.functional.hessian(f, flat)


def _template(model, names=None):
    return {n: p.detach() for n, p in model.named_parameters() if names is None or n in names}


@pytest.mark.parametrize("method", ["double_backward", "forward_over_reverse"])
def test_hvp_matches_exact_hessian_and_ignores_batch_size(method):
    model, x, y = _mlp()
    names = [n for n, _ in model.named_parameters()]
    h = _exact_hessian(model, x, y, names)
    g = torch.Generator().manual_seed(1)
    v = {
        n: torch.randn(p.shape, generator=g, dtype=torch.float64)
        for n, p in model.named_parameters()
    }
    flat_v = torch.cat([v[n].reshape(-1) for n in names])
    for batch_size in (3, 10):
        hv = hessian.hvp_fn(model, x, y, batch_size=batch_size, method=method)(v)
        got = torch.cat([hv[n].reshape(-1) for n in names])
        torch.testing.assert_close(got, h @ flat_v, rtol=1e-9, atol=1e-12)


def test_eigenvalues_and_trace_of_tiny_network():
    model, x, y = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = [n for n, _ in model.named_parameters()]
    h = _exact_hessian(model, x, y, names)
    exact = torch.linalg.eigvalsh(h).numpy()  # ascending
    hvp = hessian.hvp_fn(model, x, y, batch_size=4)
    params = _template(model)
    vals, vecs = hessian.top_eigenvalues(hvp, params, 3, iters=40, tol=1e-10)
    np.testing.assert_allclose(vals, exact[::-1][:3], rtol=1e-6, atol=1e-9)
    for val, vec in zip(vals, vecs, strict=True):  # eigenvectors: H v = lambda v, unit norm
        flat = torch.cat([vec[n].reshape(-1) for n in names])
        torch.testing.assert_close(h @ flat, val * flat, rtol=1e-5, atol=1e-7)
        assert abs(float(flat.norm()) - 1) < 1e-9
    lmin, _ = hessian.min_eigenvalue(hvp, params, iters=40, tol=1e-10)
    assert exact[0] < 0 and lmin == pytest.approx(exact[0], rel=1e-6, abs=1e-9)
    lo, hi = hessian.extreme_eigenvalues(hvp, params, iters=40, tol=1e-10)
    assert (lo, hi) == pytest.approx((exact[0], exact[-1]), rel=1e-6)
    ratio = hessian.curvature_ratio(hvp, params, iters=40, tol=1e-10)
    assert ratio == pytest.approx(abs(exact[0] / exact[-1]), rel=1e-6)
    trace, stderr = hessian.hutchinson_trace(
        hvp, params, samples=200, generator=torch.Generator().manual_seed(0)
    )
    assert abs(trace - float(torch.trace(h))) < 4 * stderr + 1e-9
    for k, v in model.state_dict().items():  # the user's model is left unchanged
        assert torch.equal(v, before[k])


def test_known_quadratic_with_repeated_eigenvalues():
    # f(w) = mean_i 0.5 * (w . x_i)^2 * 2 / 2: for a bias-free linear model with MSE loss
    # on one output, H = 2 X^T X / N. Choosing X^T X / N = diag(d) makes H = diag(2 d).
    d = torch.tensor([3.0, 3.0, 1.0, -0.0, 0.5], dtype=torch.float64)
    x = torch.diag(d.sqrt()) * 5**0.5  # (5, 5): X^T X / 5 = diag(d)
    y = torch.zeros(5, 1, dtype=torch.float64)
    model = nn.Linear(5, 1, bias=False).double()
    # A regression target: the loss is a callable (the named losses take class labels).
    hvp = hessian.hvp_fn(model, x, y, batch_size=2, loss=torch.nn.functional.mse_loss)
    params = _template(model)
    vals, _ = hessian.top_eigenvalues(hvp, params, 3, iters=20, tol=1e-12)
    np.testing.assert_allclose(vals, [6.0, 6.0, 2.0], rtol=1e-9)
    trace, stderr = hessian.hutchinson_trace(hvp, params, samples=5)
    assert trace == pytest.approx(15.0) and stderr == pytest.approx(0.0, abs=1e-12)
    lmin, _ = hessian.min_eigenvalue(hvp, params, iters=20, tol=1e-12)
    assert lmin == pytest.approx(0.0, abs=1e-9)


def test_wrt_subset_and_eigenvector_directions():
    model, x, y = _mlp()
    names = ["0.weight", "2.weight"]
    h = _exact_hessian(model, x, y, names)
    evals, evecs = torch.linalg.eigh(h)
    dirs = hessian.eigenvector_directions(model, x, y, batch_size=5, iters=40, tol=1e-10)
    assert set(dirs) == {"x", "y"}
    for axis, k in (("x", -1), ("y", -2)):
        d = dirs[axis]
        assert set(d) == {n for n, _ in model.named_parameters()}
        assert not d["0.bias"].any() and not d["2.bias"].any()  # 1-D params: zero direction
        flat = torch.cat([d[n].double().reshape(-1) for n in names])
        assert abs(abs(float(flat @ evecs[:, k])) - 1) < 1e-5


def test_hvp_with_batchnorm_network_is_symmetric_and_leaves_model_alone():
    from landscape.models import CifarResNet

    torch.manual_seed(0)
    model = CifarResNet(1, num_classes=3, width=1).double()
    model.train()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    params = _template(model)
    u = {n: torch.randn(p.shape, generator=g, dtype=torch.float64) for n, p in params.items()}
    v = {n: torch.randn(p.shape, generator=g, dtype=torch.float64) for n, p in params.items()}
    results = {}
    for method in hessian.METHODS:
        hvp = hessian.hvp_fn(model, x, y, batch_size=3, method=method)
        hu, hv = hvp(u), hvp(v)
        uhv = sum(float((u[n] * hv[n]).sum()) for n in params)
        vhu = sum(float((v[n] * hu[n]).sum()) for n in params)
        assert uhv == pytest.approx(vhu, rel=1e-8)
        results[method] = uhv
    assert results["double_backward"] == pytest.approx(results["forward_over_reverse"], rel=1e-8)
    assert model.training
    for k, t in model.state_dict().items():
        assert torch.equal(t, before[k]), k


def test_curvature_map_against_exact_and_written_to_surface(tmp_path):
    model, x, y = _mlp()
    g = torch.Generator().manual_seed(3)
    params = _template(model)
    directions = {
        axis: {
            n: torch.randn(p.shape, generator=g, dtype=torch.float64)
            if p.dim() > 1
            else torch.zeros_like(p)
            for n, p in params.items()
        }
        for axis in ("x", "y")
    }
    alpha, beta = np.array([-0.5, 0.0, 0.5]), np.array([0.0, 1.0])
    ratio = hessian.curvature_map(
        model, directions, x, y, alpha=alpha, beta=beta, batch_size=4, iters=30, tol=1e-10
    )
    assert ratio.shape == (3, 2)
    names = ["0.weight", "2.weight"]  # the parameters with nonzero directions
    for i, a in enumerate(alpha):
        for j, b in enumerate(beta):
            shifted = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
            shifted.load_state_dict(
                {n: params[n] + a * directions["x"][n] + b * directions["y"][n] for n in params}
            )
            ev = torch.linalg.eigvalsh(_exact_hessian(shifted, x, y, names))
            assert ratio[i, j] == pytest.approx(abs(float(ev[0] / ev[-1])), rel=1e-5)

    path = tmp_path / "s.h5"
    create_surface_file(
        path,
        alpha=alpha,
        beta=beta,
        value_names=["train_loss", "train_accuracy"],
        directions={k: {n: t.float() for n, t in d.items()} for k, d in directions.items()},
        config={"model": "mlp"},
        provenance={},
    )
    write_curvature_map(
        path, ratio, split="train", attrs={"iters": 30, "wrt": names}, extra={"lambda_min": -ratio}
    )
    surface = read_surface(path)
    np.testing.assert_array_equal(surface.get("train", "curvature_ratio"), ratio)
    np.testing.assert_array_equal(surface.get("train", "lambda_min"), -ratio)
    assert np.isnan(surface.get("train", "loss")).all()  # the rest is untouched
    with h5py.File(path, "r") as f:
        assert f["train_curvature_ratio"].attrs["iters"] == 30
        assert f["train_curvature_ratio"].dims[0][0].name == "/alpha"
        assert "directions" in f
    with pytest.raises(StoreError, match="shape"):
        write_curvature_map(path, ratio[:2], split="train")
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]  # no temp file left behind


def test_plot_curvature_map():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landscape.viz.analysis_figures import plot_curvature_map

    fig, ax = plt.subplots()
    mesh = plot_curvature_map(
        ax, np.arange(3.0), np.arange(2.0), np.array([[0, 1], [np.nan, 2], [0, 0.5]])
    )
    assert mesh.get_array().shape == (2, 3)
    line = plot_curvature_map(ax, np.arange(3.0), None, np.arange(3.0))
    assert len(line.get_xdata()) == 3
    plt.close(fig)


def test_the_progress_bar_ends_full_when_lanczos_converges_early(monkeypatch):
    from landscape.analysis import hessian as module
    from landscape.core.progress import NoBar

    bars = []

    def recording_bar(show, **kwargs):
        bars.append(NoBar(**kwargs))
        return bars[-1]

    monkeypatch.setattr(module, "progress_bar", recording_bar)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))  # 15 parameters
    x, y = torch.randn(32, 1, 2, 2), torch.randint(0, 3, (32,))
    spectrum = module.hessian_spectrum(model, (x, y), k=1, iters=40, trace_samples=5)
    assert spectrum.largest.iterations < 40  # converged early: the case at hand
    assert (
        bars[0].n
        == bars[0].total
        == (spectrum.largest.iterations + spectrum.smallest.iterations + 5)
    )


def test_hessian_spectrum_of_a_task_equals_the_exact_hessian_of_its_sample_mean():
    """Any model, loss and batch (#30): a regression MLP on tuple batches of unequal size,
    the Hessian of the sample-mean MSE formed exactly and compared."""
    from torch.func import functional_call, hessian

    from landscape.analysis.hessian import hessian_spectrum

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))
    x = torch.linspace(-2, 2, 40)[:, None]
    y = torch.sin(2 * x)
    batches = [(x[:16], y[:16]), (x[16:28], y[16:28]), (x[28:], y[28:])]  # B = 16, 12, 12

    def mse(model, batch):  # per-sample losses, shape (B,)
        inputs, targets = batch
        return ((model(inputs) - targets) ** 2).mean(-1)

    net64 = copy.deepcopy(net).double()  # the exact Hessian, in float64
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).double()

    def mean_loss(flat):
        parts, start = {}, 0
        for n, s in zip(names, shapes, strict=True):
            parts[n] = flat[start : start + s.numel()].reshape(s)
            start += s.numel()
        return ((functional_call(net64, parts, (x.double(),)) - y.double()) ** 2).mean()

    eig = torch.linalg.eigvalsh(hessian(mean_loss)(flat0))
    spectrum = hessian_spectrum(
        net, batches, loss_fn=mse, k=2, iters=40, tol=1e-6, wrt="all", trace_samples=400,
        progress=False,
    )  # fmt: skip
    top = torch.sort(eig, descending=True).values[:2].numpy()
    np.testing.assert_allclose(spectrum.top_eigenvalues, top, rtol=1e-4)
    assert spectrum.lambda_min == pytest.approx(float(eig.min()), rel=1e-3, abs=1e-5)
    assert abs(spectrum.trace - float(eig.sum())) < 4 * spectrum.trace_stderr
    assert spectrum.samples == 40
