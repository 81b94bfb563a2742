"""models/: registry, architectures, torchvision parity, checkpoints."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from landscape import models
from landscape.models import (
    CheckpointError,
    create_model,
    list_models,
    load_checkpoint,
    save_checkpoint,
)

CIFAR = [f"{kind}{depth}" for kind in ("resnet", "plain") for depth in (20, 32, 44, 56, 110)]
IMAGENET = [n for n in list_models() if n not in CIFAR]


def test_registry_lists_every_spec_model() -> None:
    expected = {
        f"{k}{d}" for k in ("resnet", "plain") for d in (20, 32, 44, 56, 110, 18, 34, 50, 101, 152)
    }
    assert set(list_models()) == expected
    assert list_models("plain5*") == ["plain56", "plain50"]


def test_unknown_model_lists_known() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet9'.*resnet20.*plain152"):
        create_model("resnet9")


@pytest.mark.parametrize(
    "name,count",
    [
        ("resnet20", 272_474),
        ("plain20", 269_722),
        ("resnet56", 855_770),
        ("plain56", 853_018),
        ("resnet110", 1_730_714),
    ],
)
def test_exact_parameter_counts(name: str, count: int) -> None:
    with torch.device("meta"):
        assert models.count_parameters(create_model(name)) == count


def test_shortcut_a_is_parameter_free() -> None:
    with torch.device("meta"):
        a = models.count_parameters(create_model("resnet20", shortcut_type="A"))
    assert a == 269_722  # the same as plain20: padding adds no parameters


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_output_shapes(name: str) -> None:
    model = create_model(name, num_classes=7, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_output_shapes(name: str) -> None:
    # small_input keeps the forward pass cheap; the stem differs, the blocks do not.
    model = create_model(name, num_classes=5, small_input=True, in_channels=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 16, 16)).shape == (1, 5)


def test_wide_and_shortcut_a_forward() -> None:
    model = create_model("resnet20", width=2, shortcut_type="A").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model.fc.in_features == 128


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_parity(name: str) -> None:
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)(weights=None).eval()
    ours = create_model(name).eval()
    assert models.count_parameters(ours) == models.count_parameters(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)  # identical names: no mapping needed
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


@pytest.mark.parametrize("depth", [20, 56, 18, 50])
def test_plain_nets_have_no_skip(depth: int) -> None:
    res = create_model(f"resnet{depth}")
    plain = create_model(f"plain{depth}")
    assert models.has_skip_connections(res) and not models.has_skip_connections(plain)
    # Structural check that cannot pass for a ResNet: no projection modules at all,
    # and zeroing the last BN of a plain block zeroes its output (no identity path).
    assert not any(n.endswith("downsample") for n, _ in plain.named_modules())
    block = plain.layer1[0]
    last_bn = block.bn3 if isinstance(block, models.Bottleneck) else block.bn2
    nn.init.zeros_(last_bn.weight), nn.init.zeros_(last_bn.bias)
    block.eval()
    x = torch.randn(1, block.conv1.in_channels, 8, 8)
    with torch.no_grad():
        assert torch.count_nonzero(block(x)) == 0
        res_block = res.layer1[0].eval()
        res_last = res_block.bn3 if isinstance(res_block, models.Bottleneck) else res_block.bn2
        nn.init.zeros_(res_last.weight), nn.init.zeros_(res_last.bias)
        if res_block.downsample is None:
            torch.testing.assert_close(res_block(x), torch.relu(x))


def test_zero_init_residual() -> None:
    model = create_model("resnet20", zero_init_residual=True)
    assert all(float(b.bn2.weight.detach().abs().sum()) == 0 for b in model.layer1)
    plain = create_model("plain20", zero_init_residual=True)
    assert all(float(b.bn2.weight.detach().abs().sum()) > 0 for b in plain.layer1)


def test_kaiming_init_std() -> None:
    conv = create_model("resnet56").layer3[0].conv2  # 64 out, 3x3: fan_out = 576
    assert abs(float(conv.weight.detach().std()) - (2 / 576) ** 0.5) < 0.005


def test_summary_table() -> None:
    table = models.models_table("resnet5*")
    assert "resnet56" in table and "855,770" in table and "Bottleneck" in table
    s = models.model_stats("resnet50")
    assert s.macs == pytest.approx(4.09e9, rel=0.01) and s.depth == 50 and s.skips


# ------------------------------------------------------------------ checkpoints


def _perturbed(name: str = "resnet20", **kwargs) -> nn.Module:
    torch.manual_seed(1)
    model = create_model(name, **kwargs)
    with torch.no_grad():
        for b in model.buffers():
            if b.dtype.is_floating_point:
                b.add_(torch.rand_like(b))
    return model.eval()


def test_checkpoint_round_trip(tmp_path) -> None:
    model = _perturbed("plain20", width=2, num_classes=4)
    path = tmp_path / "c.pt"
    save_checkpoint(path, model, epoch=3, metrics={"test_acc": 0.5}, dataset={"name": "x"})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "landscape-checkpoint" and raw["format_version"] == 1
    loaded = load_checkpoint(path)
    assert loaded.model_name == "plain20" and loaded.model_kwargs == {"width": 2, "num_classes": 4}
    assert loaded.epoch == 3 and loaded.metrics == {"test_acc": 0.5}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.eval()(x), model(x), rtol=0, atol=0)


def test_bare_state_dict_with_wrapper_prefixes(tmp_path) -> None:
    model = _perturbed()
    path = tmp_path / "bare.pt"
    torch.save({f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}, path)
    with pytest.raises(CheckpointError, match="bare state_dict.*--model"):
        load_checkpoint(path)
    loaded = load_checkpoint(path, model_name="resnet20")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)


def test_mismatch_lists_missing_unexpected_misshaped(tmp_path) -> None:
    sd = create_model("resnet20").state_dict()
    sd.pop("fc.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["conv1.weight"] = torch.zeros(16, 3, 5, 5)  # (a head's class count is read, not checked)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, model_name="resnet20")
    msg = str(err.value)
    assert "missing 1: fc.bias" in msg and "unexpected 1: extra.weight" in msg
    assert "mis-shaped 1: conv1.weight (16, 3, 5, 5) vs model (16, 3, 3, 3)" in msg


@pytest.mark.parametrize(
    "content,match",
    [
        (None, "does not exist"),
        (b"not a torch file", "not a readable PyTorch checkpoint"),
        ("pickle", "objects other than weights"),
        ([1, 2], "holds a list"),
        (
            {"format": "landscape-checkpoint", "format_version": 99, "state_dict": {}},
            "format_version 99",
        ),
        ({"weird": 1}, "neither a landscape checkpoint nor a state_dict"),
    ],
)
def test_bad_checkpoints(tmp_path, content, match: str) -> None:
    path = tmp_path / "x.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "pickle":
        torch.save({"model": nn.Linear(1, 1)}, path)  # a pickled module, not weights
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path, model_name="resnet20")


def test_user_factory(tmp_path, monkeypatch) -> None:
    (tmp_path / "mynets.py").write_text(
        "import torch.nn as nn\n"
        "def tiny(num_classes=10, hidden=4):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(12, hidden), nn.ReLU(),\n"
        "                         nn.Linear(hidden, num_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = create_model("mynets:tiny", num_classes=3, hidden=5)
    save_checkpoint(tmp_path / "t.pt", model)
    # The file names its builder, but only the caller may have it run (SECURITY: issue #23).
    with pytest.raises(ValueError, match="pass --model mynets:tiny"):
        load_checkpoint(tmp_path / "t.pt")
    loaded = load_checkpoint(tmp_path / "t.pt", model_name="mynets:tiny")
    assert loaded.model[1].out_features == 5 and loaded.model_name == "mynets:tiny"
    with pytest.raises(ValueError, match="cannot import 'nosuch'"):
        create_model("nosuch:f")
