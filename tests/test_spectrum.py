"""Spectral density (SLQ) and per-block curvature against exact Hessians of tiny networks."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from landscape.analysis import hessian, spectrum
from landscape.core.errors import InputError
from landscape.models import create_model


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class _Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x):
        return x + self.conv2(torch.tanh(self.conv1(x)))


class _TinyResNet(nn.Module):
    """The built-in networks' structure (conv1, layerK of blocks, fc), 532 parameters."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.layer1 = nn.Sequential(_Block(3), _Block(3))
        self.layer2 = nn.Sequential(_Block(3))
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        x = self.layer2(self.layer1(torch.tanh(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def _data(seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = _TinyResNet().double()
    x = torch.randn(24, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (24,), generator=g)
    return model, x, y


def _exact_hessian(model, x, y, names):
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def f(flat):
        pieces = [p.reshape(s) for p, s in zip(flat.split(sizes), shapes, strict=True)]
        parts = dict(zip(names, pieces, strict=True))
        fixed = {n: p.detach() for n, p in params.items() if n not in parts}
        return nn.functional.cross_entropy(functional_call(model, {**fixed, **parts}, (x,)), y)

    flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    return torch.autograd.functional.hessian(f, flat)


def _w1_naive(nodes, weights, exact):
    """W1 = integral |F_slq - F_exact| on a fine grid (an independent computation)."""
    t = np.linspace(min(nodes.min(), exact.min()), max(nodes.max(), exact.max()), 200_001)
    f_slq = np.array([weights[nodes <= s].sum() for s in t[::100]])
    f_ex = np.searchsorted(np.sort(exact), t[::100], side="right") / len(exact)
    return float(np.sum(np.abs(f_slq - f_ex)[:-1]) * (t[100] - t[0]))


def test_slq_measure_extremes_and_trace_match_the_exact_spectrum():
    model, x, y = _data()
    names = [n for n, _ in model.named_parameters()]
    h = _exact_hessian(model, x, y, names)
    exact = torch.linalg.eigvalsh(h).numpy()
    assert 300 <= len(exact) <= 600
    res = spectrum.spectral_density(
        model, (x, y), probes=20, depth=60, wrt="all", progress=False, device="cpu", seed=1
    )
    r = res.slq
    assert r.dimension == len(exact) and r.probes == 20
    nodes, weights = r.measure()
    assert weights.sum() == pytest.approx(1.0)
    span = exact[-1] - exact[0]
    w1 = spectrum.wasserstein1(nodes, weights, exact)
    assert w1 == pytest.approx(_w1_naive(nodes, weights, exact), rel=1e-2, abs=1e-4 * span)
    assert w1 <= 0.01 * span, w1 / span
    assert abs(r.lambda_min - exact[0]) <= 0.02 * abs(exact[0])
    assert abs(r.lambda_max - exact[-1]) <= 0.02 * abs(exact[-1])
    lo, hi = r.trace_interval()
    assert lo <= float(h.trace()) <= hi
    # Each probe's v^T H v, independently.
    for k, q in enumerate(r.quad_forms[:2]):
        assert q == pytest.approx(r.norms2[k] * float(np.sum(r.weights[k] * r.nodes[k])))
    report = r.convergence()
    assert len(report) == 20 and all(c["lambda_max_residual"] < 1e-6 for c in report)


def test_slq_at_full_depth_is_exact_quadrature():
    """With depth = dimension the nodes are eigenvalues and v^T H v is exact."""
    model, x, y = _data()
    names = ["fc.weight"]
    h = _exact_hessian(model, x, y, names)
    hvp = hessian.hvp_fn(model, x, y, wrt=names)
    tmpl = {n: p.detach() for n, p in model.named_parameters() if n in names}
    r = spectrum.slq(hvp, tmpl, probes=3, depth=12, probe="gaussian")
    exact = torch.linalg.eigvalsh(h).numpy()
    for nodes in r.nodes:
        assert np.min(np.abs(nodes[:, None] - exact[None, :]), axis=1).max() < 1e-9
    g = torch.Generator().manual_seed(0)
    for k in range(3):
        v = torch.randn(12, generator=g, dtype=torch.float64)
        assert r.quad_forms[k] == pytest.approx(float(v @ h @ v), rel=1e-9)


def test_density_curve_integrates_to_one_and_follows_sigma():
    nodes = [np.array([0.0, 1.0]), np.array([0.5, 2.0])]
    weights = [np.array([0.5, 0.5]), np.array([0.25, 0.75])]
    grid, dens, sigma = spectrum.density_curve(nodes, weights, sigma=0.1, points=4001)
    assert sigma == 0.1 and dens.shape == (2, 4001)
    dx = grid[1] - grid[0]
    np.testing.assert_allclose(dens.sum(axis=1) * dx, 1.0, rtol=1e-3)
    peak = 1 / (0.1 * math.sqrt(2 * math.pi))
    assert dens[0].max() == pytest.approx(0.5 * peak, rel=1e-3)
    _, _, default = spectrum.density_curve(nodes, weights)
    assert default == pytest.approx(math.sqrt(1e-5 * 2.0))  # PyHessian's rule, range 2


def test_wasserstein1_of_shifted_measures_is_the_shift():
    a = np.array([0.0, 1.0, 3.0])
    assert spectrum.wasserstein1(a, np.ones(3), a + 0.25) == pytest.approx(0.25)
    assert spectrum.wasserstein1(np.array([0.0]), np.ones(1), np.array([-1.0, 1.0])) == 1.0


def test_groups_of_the_built_in_networks():
    for name, stages in (("resnet20", 3), ("plain20", 3), ("resnet18", 4)):
        model = create_model(name)
        groups = spectrum.parameter_groups(model)
        assert [g for g in groups if g.startswith("stage") and "." not in g] == [
            f"stage{i}" for i in range(1, stages + 1)
        ]
        assert groups["stem"][0] == "conv1.weight" and groups["head"][-1] == "fc.bias"
        every = [n for n, _ in model.named_parameters()]
        stage_sets = [groups["stem"], *(groups[f"stage{i}"] for i in range(1, stages + 1))]
        assert sum(stage_sets + [groups["head"]], []) == every  # a partition, in order
    resnet20 = create_model("resnet20")
    sel = spectrum.select_parameters(resnet20, "stage2.block0")
    assert sel == [
        n for n, p in resnet20.named_parameters() if n.startswith("layer2.0.") and p.dim() > 1
    ]
    sel = spectrum.select_parameters(resnet20, "layer3.*,head", exclude="*.conv1.*")
    assert "fc.weight" in sel and not any(".conv1." in n for n in sel)
    with pytest.raises(InputError):
        spectrum.select_parameters(resnet20, "nothing.*")
    with pytest.raises(InputError):
        spectrum.select_parameters(resnet20, "stem", exclude="conv1.*")


def test_top_eigenvalue_of_a_selected_block_is_the_exact_sub_hessians():
    model, x, y = _data()
    blocks = spectrum.per_block_curvature(
        model, (x, y), level="block", iters=60, tol=1e-10, trace_samples=30, progress=False,
        device="cpu",
    )  # fmt: skip
    labels = [b.name for b in blocks]
    assert labels == ["stem", "stage1.block0", "stage1.block1", "stage2.block0", "head"]
    for b in blocks:
        h = _exact_hessian(model, x, y, b.names)
        exact = torch.linalg.eigvalsh(h).numpy()
        assert b.lambda_max == pytest.approx(exact[-1], rel=1e-4)
        assert b.lambda_max <= exact[-1] + 1e-12 <= b.lambda_max + b.lambda_max_bound + 1e-9
        half = 4 * b.trace_stderr  # a loose interval: 30 probes, five blocks, fixed seeds
        assert abs(b.trace - float(h.trace())) <= half
    stages = spectrum.per_block_curvature(
        model, (x, y), iters=60, trace_samples=2, progress=False, device="cpu"
    )
    assert [b.name for b in stages] == ["stem", "stage1", "stage2", "head"]
    assert stages[1].names == blocks[1].names + blocks[2].names


# ---------------------------------------------------------------- the command

DATA = ["--dataset", "tinydata:tiny", "--samples", "8", "--quiet"]


def test_hessian_density_command_stores_nodes_and_matches_library(tmp_path, tiny_ckpt, capsys):
    from landscape import __main__ as cli
    from landscape.data.datasets import load_split
    from landscape.io.spectrum import read_curvature_result
    from landscape.models import load_checkpoint

    out = tmp_path / "d.json"
    argv = ["hessian", "--ckpt", str(tiny_ckpt), *DATA, "--density", "--probes", "3"]
    argv += ["--depth", "6", "--seed", "2", "--params", "stage3", "--out", str(out)]
    assert cli.main(argv) == 0
    doc = read_curvature_result(out, "density")
    assert doc["format"] == "landscape-spectral-density" and len(doc["probes"]) == 3
    assert all(len(p["nodes"]) == 6 == len(p["weights"]) for p in doc["probes"])
    d = load_split("tinydata:tiny", "train", samples=8)
    model = load_checkpoint(tiny_ckpt).model
    again = spectrum.spectral_density(
        model, d, probes=3, depth=6, seed=2, params="stage3", progress=False, device="cpu"
    )
    np.testing.assert_allclose(doc["probes"][1]["nodes"], again.slq.nodes[1], rtol=1e-5)
    assert doc["trace"] == pytest.approx(again.trace, rel=1e-5)
    assert all(n.startswith("layer3.") for n in doc["parameters"])
    assert out.with_suffix(".png").stat().st_size > 0
    assert "trace" in capsys.readouterr().out
    # An overlay of two results, and per-block with --compare.
    blocks = tmp_path / "b.json"
    argv = ["hessian", "--ckpt", str(tiny_ckpt), *DATA, "--per-block", "--iters", "3"]
    assert cli.main([*argv, "--trace-samples", "2", "--out", str(blocks)]) == 0
    other = tmp_path / "b2.json"
    argv += ["--trace-samples", "2", "--out", str(other), "--compare", str(blocks)]
    assert cli.main(argv) == 0
    names = [b["name"] for b in read_curvature_result(other)["blocks"]]
    assert names == ["stem", "stage1", "stage2", "stage3", "head"]
    sharp = tmp_path / "s.json"
    argv = ["hessian", "--ckpt", str(tiny_ckpt), *DATA, "--sharpness", "average", "--m", "4"]
    assert cli.main([*argv, "--perturbations", "3", "--out", str(sharp)]) == 0
    doc = read_curvature_result(sharp, "sharpness")
    assert doc["kind"] == "average" and len(doc["per_batch"]) == 2 and doc["m"] == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--density", "--per-block"], "separate runs"),
        (["--density", "--probes", "0"], "--probes must be a positive"),
        (["--sharpness", "worst", "--rho", "-1"], "--rho must be a positive"),
        (["--density", "--params", "nope.*"], "matches no parameter"),
        (["--compare", "x.json"], "--compare goes with"),
    ],
)
def test_hessian_new_flags_refuse_bad_input_in_one_line(
    tmp_path, tiny_ckpt, capsys, extra, message
):
    from landscape import __main__ as cli

    argv = ["hessian", "--ckpt", str(tiny_ckpt), *DATA, "--out", str(tmp_path / "r.json")]
    assert cli.main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_density_and_block_figures_draw_what_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    from landscape.viz.spectrum import block_curvature_figure, density_figure

    a = {"probes": [{"nodes": [0.0, 1.0], "weights": [0.9, 0.1]}] * 2}
    b = {"probes": [{"nodes": [0.0, 3.0], "weights": [0.5, 0.5]}, {"nodes": [1.0], "weights": [1]}]}
    fig = density_figure([("a", a), ("b", b)], sigma=0.05)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "0.05" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (2 probes)", "b (2 probes)"]
    assert len(ax.collections) == 2  # one band each
    blocks = [
        spectrum.BlockCurvature("stage1", 10, 2.0, 0.1, 5.0, 0.5, 4, 3, True),
        spectrum.BlockCurvature("head", 3, 1.0, 0.0, 2.0, 0.2, 4, 3, True),
    ]
    fig = block_curvature_figure(
        [("resnet", blocks), ("plain", {"blocks": [b.as_dict() for b in blocks]})]
    )
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["stage1", "head"]


def test_jackknife_standard_error_of_a_blocks_top_eigenvalue():
    """Leave-one-batch-out top eigenvalues of the exact sub-Hessians, combined by hand."""
    model, x, y = _data()
    (b,) = spectrum.per_block_curvature(
        model, (x, y), blocks={"s2": ["stage2"]}, iters=40, tol=1e-10, trace_samples=0,
        jackknife=3, progress=False, device="cpu",
    )  # fmt: skip
    tops = []
    for part in np.array_split(np.arange(len(x)), 3):
        keep = np.setdiff1d(np.arange(len(x)), part)
        h = _exact_hessian(model, x[keep], y[keep], b.names)
        tops.append(float(torch.linalg.eigvalsh(h)[-1]))
    tops = np.array(tops)
    expected = math.sqrt(2 / 3 * np.sum((tops - tops.mean()) ** 2))
    assert b.jackknife == 3 and b.lambda_max_stderr == pytest.approx(expected, rel=1e-5)
    assert math.isnan(b.trace)
    with pytest.raises(InputError):
        spectrum.per_block_curvature(model, (x, y), jackknife=1, progress=False, device="cpu")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--probes", "3"], "--probes goes with --density"),
        (["--per-block", "--rho", "0.1"], "--rho goes with --sharpness"),
        (["--density", "--jackknife", "2"], "--jackknife goes with --per-block"),
        (["--density", "--top-k", "2"], "--top-k does not apply to --density"),
        (["--sharpness", "worst", "--trace-samples", "3"], "--trace-samples does not apply"),
        (["--per-block", "--params", "stage1"], "--per-block picks its own groups"),
    ],
)
def test_flags_of_another_mode_are_refused_not_ignored(tmp_path, tiny_ckpt, capsys, extra, message):
    from landscape import __main__ as cli

    argv = ["hessian", "--ckpt", str(tiny_ckpt), *DATA, "--out", str(tmp_path / "r.json")]
    assert cli.main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("depth", [56, 20])
def test_results_quote_the_stored_curvature_files(depth):
    """docs/results.md quotes docs/results/spectrum_{depth}.txt as written, and its numbers are
    those of the stored JSON results (scripts/spectrum.sh)."""
    from helpers import REPO

    from landscape.io.spectrum import read_curvature_result

    res = REPO / "docs" / "results"
    txt = res / f"spectrum_{depth}.txt"
    if not txt.is_file():
        pytest.skip(f"docs/results lacks {txt.name}: run scripts/spectrum.sh")
    text = txt.read_text()
    assert text.strip() in (REPO / "docs" / "results.md").read_text()
    for net in ("resnet", "plain"):
        doc = read_curvature_result(res / f"{net}{depth}_density.json", "density")
        assert f"trace {doc['trace']:.0f} +- {doc['trace_stderr']:.0f}" in text
        assert f"{doc['lambda_max_node']:.3f}]" in text
        nodes = np.concatenate([p["nodes"] for p in doc["probes"]])
        assert doc["lambda_max_node"] == nodes.max()
        for b in read_curvature_result(res / f"{net}{depth}_stages.json", "blocks")["blocks"]:
            assert f"{b['lambda_max']:.2f} [+{b['lambda_max_bound']:.2g}]" in text
            assert f"{b['trace']:.1f} +- {b['trace_stderr']:.1f}" in text


def test_hessian_spectrum_takes_the_same_selection():
    model, x, y = _data()
    names = spectrum.select_parameters(model, "stage1.block1", wrt="all")
    exact = torch.linalg.eigvalsh(_exact_hessian(model, x, y, names)).numpy()
    res = hessian.hessian_spectrum(
        model, (x, y), k=2, iters=40, tol=1e-10, trace_samples=0, wrt="all",
        params="stage1.block1", progress=False, device="cpu",
    )  # fmt: skip
    assert res.parameters == len(exact)
    np.testing.assert_allclose(res.top_eigenvalues, exact[::-1][:2], rtol=1e-6)
    assert res.lambda_min == pytest.approx(exact[0], rel=1e-6)
