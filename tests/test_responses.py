"""Layer-response std and gradient norms against hand computations."""

import pytest
import torch
import torch.nn.functional as F

from landscape.analysis import responses
from landscape.models import CifarResNet


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _net(shortcut: bool) -> CifarResNet:
    torch.manual_seed(0)
    model = CifarResNet(1, num_classes=3, shortcut=shortcut)  # 8 layers: stem + 3 blocks x 2
    # Trained-looking BN: non-trivial affine and running statistics.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=g) + 0.5
            m.bias.data = torch.randn(m.num_features, generator=g) * 0.1
            m.running_mean = torch.randn(m.num_features, generator=g) * 0.1
            m.running_var = torch.rand(m.num_features, generator=g) + 0.5
    return model


def _by_hand(model: CifarResNet, x: torch.Tensor) -> list[tuple[str, float]]:
    """Capture each block's input with a hook; recompute bn(conv(.)) responses by hand."""
    inputs = {}
    handles = [
        block.register_forward_pre_hook(
            lambda m, a, name=name: inputs.__setitem__(name, a[0].clone())
        )
        for name, block in model.named_modules()
        if isinstance(block, torch.nn.Module) and name.count(".") == 1 and name.startswith("layer")
    ]
    with torch.no_grad():
        model.eval()
        model(x)
        out = [("conv1", model.bn1(model.conv1(x)).std(unbiased=False).item())]
        for name, inp in inputs.items():
            block = model.get_submodule(name)
            r1 = block.bn1(block.conv1(inp))
            r2 = block.bn2(block.conv2(F.relu(r1)))
            out += [
                (f"{name}.conv1", r1.std(unbiased=False).item()),
                (f"{name}.conv2", r2.std(unbiased=False).item()),
            ]
    for h in handles:
        h.remove()
    return out


@pytest.mark.parametrize("shortcut", [True, False])
def test_layer_response_std_matches_hand_computation(shortcut):
    model = _net(shortcut)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    got = responses.layer_response_std(model, x, batch_size=4)  # two uneven batches
    assert model.training  # mode restored
    assert not model._forward_hooks and not model.bn1._forward_hooks  # hooks removed
    expected = _by_hand(model, x)
    assert [n for n, _ in got] == [n for n, _ in expected]
    assert len(got) == 7
    for (_, a), (_, b) in zip(got, expected, strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_layer_response_std_with_batch_stats_leaves_buffers():
    model = _net(True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    got = dict(responses.layer_response_std(model, x, batch_size=4, batch_stats=True))
    # With batch statistics the stem's BN output has per-channel std gamma exactly.
    with torch.no_grad():
        r = F.batch_norm(
            model.conv1(x), None, None, model.bn1.weight, model.bn1.bias, training=True
        )
    assert got["conv1"] == pytest.approx(r.std(unbiased=False).item(), rel=1e-5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_gradient_norms_match_backward():
    model = _net(False)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, 8, 8, generator=g)
    y = torch.randint(0, 3, (6,), generator=g)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = responses.gradient_norms(model, x, y, batch_size=6, batch_stats=False)
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    model.eval()
    F.cross_entropy(model(x), y).backward()
    expected = [
        (n, p.grad.norm().item())
        for n, p in model.named_parameters()
        if n.endswith("weight") and p.dim() > 1
    ]
    assert [n for n, _ in got] == [n for n, _ in expected]
    assert got[0][0] == "conv1.weight" and got[-1][0] == "fc.weight"
    for (_, a), (_, b) in zip(got, expected, strict=True):
        assert a == pytest.approx(b, rel=1e-4)
    # Batches are weighted by size: two batches give the full-batch mean's gradient.
    split = responses.gradient_norms(model, x, y, batch_size=3, batch_stats=False)
    for (_, a), (_, b) in zip(split, got, strict=True):
        assert a == pytest.approx(b, rel=1e-4)


def test_write_and_read_responses(tmp_path):
    from landscape.io.responses import ResponseSeries, read_responses, write_responses

    series = [
        ResponseSeries.from_pairs("plain20", "response_std", [("a", 1.0), ("b", 2.0)]),
        ResponseSeries.from_pairs(
            "resnet20", "gradient_norm", [("a.weight", 0.1)], stage="init", attrs={"samples": 8}
        ),
    ]
    path = tmp_path / "r.json"
    write_responses(path, series, meta={"dataset": "toy"})
    assert read_responses(path) == series
    with pytest.raises(ValueError, match="kind"):
        ResponseSeries.from_pairs("x", "bad", [])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a landscape-responses"):
        read_responses(tmp_path / "bad.json")


def test_plots_draw_on_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landscape.viz.analysis_figures import plot_gradient_norms, plot_layer_response_std

    fig, (top, bottom, right) = plt.subplots(1, 3)
    line = plot_layer_response_std(top, [1.0, 3.0, 2.0], label="plain")
    assert list(line.get_ydata()) == [1.0, 3.0, 2.0]
    line = plot_layer_response_std(bottom, [1.0, 3.0, 2.0], sort=True)
    assert list(line.get_ydata()) == [3.0, 2.0, 1.0]
    line = plot_gradient_norms(right, [0.1, 0.01])
    assert right.get_yscale() == "log" and len(line.get_xdata()) == 2
    plt.close(fig)
