"""Sharpness against exact values: the L2 trust-region maximum of a quadratic, and the
second-order expansion of the average case on a tiny network."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from landscape.analysis import sharpness
from landscape.core.errors import InputError


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _trust_region_max(h: np.ndarray, g: np.ndarray, rho: float) -> float:
    """max g.d + d.H.d/2 over |d| <= rho, exactly: eigendecomposition and a root of the
    secular equation |(lam I - H)^-1 g| = rho for lam > max(lambda_max(H), 0) (bisection
    in float64; the hard case is excluded by a generic g)."""
    lam_h, q = np.linalg.eigh(h)
    gam = q.T @ g
    if lam_h[-1] < 0:  # concave: the unconstrained maximum may lie inside the ball
        d = -np.linalg.solve(h, g)
        if np.linalg.norm(d) <= rho:
            return float(g @ d + d @ h @ d / 2)

    def norm(lam):
        return math.sqrt(float(np.sum(gam**2 / (lam - lam_h) ** 2)))

    lo = max(lam_h[-1], 0.0) + 1e-15
    hi = lo + np.linalg.norm(g) / rho + 1.0
    while norm(hi) > rho:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if norm(mid) > rho else (lo, mid)
    d = q @ (gam / ((lo + hi) / 2 - lam_h))
    assert abs(np.linalg.norm(d) - rho) < 1e-9 * rho
    return float(g @ d + d @ h @ d / 2)


def _quadratic(h: np.ndarray, g: np.ndarray):
    ht, gt = torch.from_numpy(h), torch.from_numpy(g)

    def loss_grad(delta, grad=True):
        return float(gt @ delta + delta @ ht @ delta / 2), gt + ht @ delta

    return loss_grad


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rho", [0.1, 1.0, 5.0])
def test_worst_case_l2_equals_the_exact_trust_region_maximum(seed, rho):
    rng = np.random.default_rng(seed)
    dim = 30
    a = rng.standard_normal((dim, dim))
    q, _ = np.linalg.qr(a)
    eig = np.concatenate([rng.uniform(-3, -0.1, 10), rng.uniform(0.1, 10, 20)])  # indefinite
    h = q @ np.diag(eig) @ q.T
    g = rng.standard_normal(dim)
    exact = _trust_region_max(h, g, rho)
    res = sharpness.ascent(
        _quadratic(h, g), dim, radius=rho, steps=200, restarts=3,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    assert abs(res.value - exact) <= 1e-3 * abs(exact), (res.value, exact)
    assert float(res.delta.norm()) <= rho * (1 + 1e-12)


def test_worst_case_inside_the_ball_when_the_maximum_is_interior():
    rng = np.random.default_rng(3)
    dim = 10
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    h = q @ np.diag(-rng.uniform(1, 4, dim)) @ q.T  # concave: the maximum -H^-1 g
    g = 0.1 * rng.standard_normal(dim)
    exact = _trust_region_max(h, g, 10.0)
    assert np.linalg.norm(np.linalg.solve(h, g)) < 10.0  # really interior
    res = sharpness.ascent(_quadratic(h, g), dim, radius=10.0, steps=300)
    assert abs(res.value - exact) <= 1e-3 * abs(exact)


def test_linf_ball_of_a_linear_loss_is_the_dual_norm():
    """max g.d over |d / c|_inf <= rho is rho * sum |c g| (a corner of the box)."""
    rng = np.random.default_rng(0)
    g = rng.standard_normal(12)
    c = torch.from_numpy(rng.uniform(0.1, 2, 12))
    res = sharpness.ascent(
        _quadratic(np.zeros((12, 12)), g), 12, radius=0.3, norm="linf", scale=c, steps=5, restarts=2
    )
    assert res.value == pytest.approx(0.3 * float(np.sum(np.abs(c.numpy() * g))), rel=1e-12)
    assert float((res.delta / c).abs().max()) <= 0.3 + 1e-12


def test_radius_scales():
    w = {"conv": torch.tensor([[3.0, 4.0], [0.0, -1.0]]), "bias": torch.tensor([3.0, -4.0])}
    f = sharpness.radius_scale(w, "filter")
    torch.testing.assert_close(f["conv"], torch.tensor([[5.0, 5.0], [1.0, 1.0]]))
    torch.testing.assert_close(f["bias"], torch.tensor([5.0, 5.0]))
    torch.testing.assert_close(sharpness.radius_scale(w, "adaptive")["bias"], w["bias"].abs())
    with pytest.raises(InputError):
        sharpness.radius_scale(w, "relative")


def _mlp():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    return model, x, y


def test_model_sharpness_matches_the_loss_it_claims():
    """The worst case's value is the loss at the returned point (checked independently), it
    is at least the first-order SAM step, and the model is left alone."""
    model, x, y = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = sharpness.worst_case_sharpness(
        model, (x, y), radius=0.1, norm="l2", scale="absolute", m=10, steps=10, progress=False,
        device="cpu",
    )  # fmt: skip
    assert len(res.per_batch) == 4 and res.m == 10
    assert (res.per_batch > 0).all()
    assert res.stderr == pytest.approx(np.std(res.per_batch, ddof=1) / 2)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    # A naive SAM step on the first batch: the ascent never ends below it.
    xb, yb = x[:10], y[:10]
    names = [n for n, p in model.named_parameters() if p.dim() > 1]
    params = dict(model.named_parameters())
    loss0 = nn.functional.cross_entropy(model(xb), yb)
    grads = torch.autograd.grad(loss0, [params[n] for n in names])
    gnorm = torch.sqrt(sum((g**2).sum() for g in grads))
    moved = {**{n: p.detach() for n, p in params.items()}}
    for n, g in zip(names, grads, strict=True):
        moved[n] = params[n].detach() + 0.1 * g / gnorm
    with torch.no_grad():
        sam = float(nn.functional.cross_entropy(functional_call(model, moved, (xb,)), yb) - loss0)
    assert res.per_batch[0] >= sam - 1e-12


def test_average_case_is_half_sigma_squared_trace_for_small_noise():
    """E L(theta + s d) - L(theta) = s^2/2 tr(H) + O(s^4) for d ~ N(0, I) over the weights:
    compared with the exact Hessian's trace, within the reported interval."""
    model, x, y = _mlp()
    names = [n for n, p in model.named_parameters() if p.dim() > 1]
    params = dict(model.named_parameters())
    sizes = [params[n].numel() for n in names]
    shapes = [params[n].shape for n in names]

    def f(flat):
        pieces = [p.reshape(s) for p, s in zip(flat.split(sizes), shapes, strict=True)]
        parts = dict(zip(names, pieces, strict=True))
        fixed = {n: p.detach() for n, p in params.items() if n not in parts}
        return nn.functional.cross_entropy(functional_call(model, {**fixed, **parts}, (x,)), y)

    flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    trace = float(torch.autograd.functional.hessian(f, flat).trace())
    sigma = 1e-3
    res = sharpness.average_case_sharpness(
        model, (x, y), radius=sigma, scale="absolute", perturbations=100, progress=False,
        device="cpu",
    )  # fmt: skip
    lo, hi = res.interval()
    expected = sigma**2 / 2 * trace
    assert lo <= expected <= hi, (res, expected)
    assert res.stderr < 0.2 * abs(expected)  # the test has teeth
