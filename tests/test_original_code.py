"""Checkpoints of the original loss-landscape code load as our networks, outputs identical.

The original code's CIFAR ResNet is written here again from its published structure (module
names `conv1 bn1 layer1..3 linear`, blocks `conv1 bn1 conv2 bn2 shortcut`, average pooling of
the 8x8 map), to build its checkpoint files without downloading anything.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape import load_model


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.use_shortcut = shortcut
        if shortcut:
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return F.relu(out)


class OriginalCifarResNet(nn.Module):
    def __init__(self, depth: int, shortcut: bool, k: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16 * k, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16 * k)
        cin, layers = 16 * k, []
        for planes, stride in ((16 * k, 1), (32 * k, 2), (64 * k, 2)):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(Block(cin, planes, s, shortcut))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64 * k, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.avg_pool2d(out, 8).flatten(1))


def _randomize(net: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return net.eval()


@pytest.mark.parametrize(
    "depth,shortcut,k,expected",
    [(20, True, 1, "resnet20"), (20, False, 1, "plain20"), (32, True, 2, "resnet32")],
)
def test_original_checkpoint_loads_with_identical_outputs(tmp_path, depth, shortcut, k, expected):
    torch.manual_seed(depth + k)
    original = _randomize(OriginalCifarResNet(depth, shortcut, k), seed=depth)
    path = tmp_path / "model_300.t7"
    torch.save({"acc": 91.25, "epoch": 300, "state_dict": original.state_dict()}, path)
    loaded = load_model(path)  # the network is read from the file's names and shapes
    assert loaded.model_name == expected
    assert loaded.model_kwargs == ({"width": k} if k > 1 else {})
    assert loaded.epoch == 300 and loaded.metrics == {"test_accuracy": pytest.approx(0.9125)}
    assert sum(p.numel() for p in loaded.model.parameters()) == sum(
        p.numel() for p in original.parameters()
    )
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), original(x), rtol=1e-5, atol=1e-6)


def test_original_checkpoint_with_explicit_model_and_unknown_layouts(tmp_path):
    original = _randomize(OriginalCifarResNet(20, True), seed=0)
    path = tmp_path / "m.t7"
    torch.save({"acc": 90.0, "epoch": 10, "state_dict": original.state_dict()}, path)
    assert load_model(path, model="resnet20").model_name == "resnet20"
    with pytest.raises(ValueError, match="resnet32"):  # the names fit, the depth does not
        load_model(path, model="resnet32")
    odd = tmp_path / "odd.pt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2, 2)}}, odd)
    with pytest.raises(ValueError, match=r"encoder.weight.*--model NAME"):
        load_model(odd)


def test_original_direction_file_gives_the_brute_force_surface(tmp_path, tiny_ckpt, capsys):
    """A direction file as the original code writes it (``xdirection/0``, ``/1``, ... in
    ``net.parameters()`` order, biases and BN zeroed) drives ``--directions``; the values
    equal the loss of theta* + a dx + b dy set by hand."""
    import h5py
    import numpy as np

    from landscape import models
    from landscape.compute import main as compute_main
    from landscape.data import load_split
    from landscape.io.surface_file import read_surface

    model = models.load_checkpoint(tiny_ckpt).model.eval()
    g = torch.Generator().manual_seed(3)
    dirs = {}
    path = tmp_path / "direction.h5"
    with h5py.File(path, "w") as f:
        for axis, group in (("x", "xdirection"), ("y", "ydirection")):
            grp = f.create_group(group)
            dirs[axis] = {}
            for i, (name, p) in enumerate(model.named_parameters()):
                d = torch.randn(p.shape, generator=g) * 0.05 if p.dim() > 1 else torch.zeros_like(p)
                dirs[axis][name] = d
                grp.create_dataset(str(i), data=d.numpy())
    out = tmp_path / "s.h5"
    argv = ["--ckpt", str(tiny_ckpt), "--dataset", "tinydata:tiny", "--directions", str(path)]
    argv += ["--x", "-1:1:3", "--y", "-1:1:3", "--strategy", "pointwise", "--out", str(out)]
    assert compute_main([*argv, "--quiet"]) == 0
    surface = read_surface(out)
    data = load_split("tinydata:tiny", "train")
    x, y = data.normalized(), data.y
    for i, a in enumerate(surface.alpha):
        for j, b in enumerate(surface.beta):
            net = models.load_checkpoint(tiny_ckpt).model.eval()
            with torch.no_grad():
                for name, p in net.named_parameters():
                    p.add_(a * dirs["x"][name] + b * dirs["y"][name])
                loss = F.cross_entropy(net(x).double(), y).item()
            assert surface.get("train", "loss")[i, j] == pytest.approx(loss, rel=1e-5), (a, b)
    assert np.isfinite(surface.get("train", "loss")).all()
    # Another network's file is refused in one line.
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_group("xdirection").create_dataset("0", data=np.zeros(3, np.float32))
    assert (
        compute_main([*argv[:4], str(other), "--x", "-1:1:3", "--out", str(tmp_path / "o.h5")]) == 2
    )


@pytest.mark.parametrize("shape", [(7, 7), (9, 5), (11,)])
def test_export_to_the_original_layout_round_trips(tmp_path, shape):
    """`landscape export --legacy` writes what the original code writes (flat index
    j * nx + i, accuracy in percent, -1 not computed); our reader gets the surface back,
    also for a non-square grid, whose axes the original plot_2D.py mixes up."""
    import h5py
    import numpy as np
    from surfaces import make_surface_file

    from landscape import export
    from landscape.io.legacy import read_legacy_surface
    from landscape.io.surface_file import read_surface

    src = make_surface_file(tmp_path, "s.h5", kind="sines", shape=shape, partial=0.2)
    out = tmp_path / "old.h5"
    assert export.main([str(src), "--legacy", "--out", str(out)]) == 0
    ours, back = read_surface(src), read_legacy_surface(out)
    np.testing.assert_array_equal(back.alpha, ours.alpha)
    for split in ours.splits:
        for metric in ("loss", "accuracy"):
            np.testing.assert_allclose(back.get(split, metric), ours.get(split, metric))
    with h5py.File(out) as f:
        nx = shape[0]
        if len(shape) == 2:
            i, j = 2, 1  # the point (x[2], y[1]) sits at flat index j * nx + i
            flat = f["train_loss"][()].reshape(-1)
            assert flat[j * nx + i] == pytest.approx(ours.get("train", "loss")[i, j])
            assert f["train_loss"].shape == shape
        acc = f["train_acc"][()]
        assert np.nanmax(acc) > 1  # percent
    assert export.main([str(src), "--legacy", "--out", str(out)]) == 0  # replaces its own


def test_loss_names_say_which_mse(tmp_path, tiny_ckpt):
    """``mse`` is of the logits, ``mse-softmax`` of the probabilities (the original code's
    MSE); the surface, the Hessian and the gradients take every loss the engine takes."""
    import landscape as ls
    from landscape import models
    from landscape.analysis.responses import gradient_norms
    from landscape.data import load_split

    data = load_split("tinydata:tiny", "train")
    model = models.load_checkpoint(tiny_ckpt).model.eval()
    with torch.no_grad():
        logits = model(data.normalized()).double()
    onehot = F.one_hot(data.y, logits.shape[-1]).double()
    expected = {
        "ce": F.cross_entropy(logits, data.y).item(),
        "mse": nn.MSELoss()(logits, onehot).item(),
        "mse-softmax": nn.MSELoss()(logits.softmax(-1), onehot).item(),
    }
    assert expected["mse"] != pytest.approx(expected["mse-softmax"])
    for loss, value in expected.items():
        config = ls.SurfaceConfig(x=(0, 0, 1), loss=loss)
        s = ls.compute_surface(model, data, config, out=tmp_path / f"{loss}.h5", progress=False)
        assert s.get("train", "loss")[0] == pytest.approx(value, rel=1e-5), loss
        spectrum = ls.hessian_spectrum(
            model, data, k=1, iters=4, trace_samples=0, loss=loss, progress=False
        )
        assert np.isfinite(spectrum.lambda_max), loss
        assert all(np.isfinite(v) for _, v in gradient_norms(model, data, loss=loss)), loss
    with pytest.raises(ValueError, match="mse-softmax"):
        ls.SurfaceConfig(loss="l2")


def test_hessian_command_takes_the_loss(tmp_path, tiny_ckpt, capsys):
    from landscape import hessian as hessian_cli

    out = tmp_path / "h.json"
    argv = ["--ckpt", str(tiny_ckpt), "--dataset", "tinydata:tiny", "--loss", "mse-softmax"]
    argv += ["--top-k", "1", "--iters", "3", "--trace-samples", "0", "--out", str(out), "--quiet"]
    assert hessian_cli.main(argv) == 0
    import json

    assert json.loads(out.read_text())["config"]["loss"] == "mse-softmax"


def test_torchvision_models_lightning_and_safetensors_checkpoints(tmp_path):
    """Models and weights users already have: a torchvision classifier by name, weights from
    a Lightning checkpoint (``model.`` prefix) or a .safetensors file; nothing downloaded."""
    import torchvision
    from safetensors.torch import save_file

    net = torchvision.models.get_model("resnet18", weights=None, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x)
    lightning = tmp_path / "epoch=3-step=100.ckpt"
    torch.save(
        {
            "epoch": 3,
            "pytorch-lightning_version": "2.4.0",
            "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
        },
        lightning,
    )
    st = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(st))
    for path in (lightning, st):
        loaded = load_model(path, model="torchvision:resnet18", model_kwargs={"num_classes": 10})
        with torch.no_grad():
            torch.testing.assert_close(loaded.model(x), expected)
    assert (
        load_model(lightning, model="torchvision:resnet18", model_kwargs={"num_classes": 10}).epoch
        == 3
    )
    with pytest.raises(ValueError, match="torchvision has no classification model 'resnet7'"):
        load_model(st, model="torchvision:resnet7")


def test_foreign_layouts_and_missing_optional_packages_are_one_line(
    tmp_path, tiny_ckpt, capsys, monkeypatch
):
    import builtins
    import sys

    from landscape.compute import main as compute_main

    real_import = builtins.__import__

    def no_timm(name, *args, **kwargs):
        if name == "timm" or name.startswith("safetensors"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "timm", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_timm)
    base = ["--dataset", "tinydata:tiny", "--x", "-1:1:3", "--quiet"]
    st = tmp_path / "w.safetensors"
    st.write_bytes(b"\0" * 16)
    foreign = tmp_path / "foreign.pt"  # a layout we do not know: what it holds, what to pass
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2, 2)}}, foreign)
    for argv, message in (
        (["--ckpt", str(foreign)], "holds encoder.weight, ...); pass --model NAME"),
        (["--ckpt", str(tiny_ckpt), "--model", "timm:resnet18"], "pip install timm"),
        (["--ckpt", str(st), "--model", "resnet20"], "pip install safetensors"),
    ):
        assert compute_main([*argv, *base, "--out", str(tmp_path / "s.h5")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
