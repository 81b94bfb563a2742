"""Bad input across every command: exit code 2, one line naming the problem and the fix,
no traceback, and no existing result damaged.

One table of cases for every command, run in-process against a small world of good and
broken files built once for the module.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import make_checkpoint
from PIL import Image
from surfaces import make_surface_file

from landscape import (
    compute,
    convert,
    curves,
    demo,
    eigendirs,
    export,
    hessian,
    metrics,
    models,
    plot,
    responses,
    train,
    trajectory,
    view,
)

MAINS = {
    "train": train.main,
    "compute": compute.main,
    "plot": plot.main,
    "view": view.main,
    "export": export.main,
    "metrics": metrics.main,
    "demo": demo.main,
    "convert": convert.main,
    "curves": curves.main,
    "hessian": hessian.main,
    "responses": responses.main,
    "trajectory": trajectory.main,
    "eigendirs": eigendirs.main,
}


@dataclass(frozen=True)
class World:
    root: Path

    def __truediv__(self, name: str) -> str:
        return str(self.root / name)


def _image_folder(root: Path, *, train_images: int, with_train: bool = True) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test") if with_train else ("test",):
        for cls in ("a", "b"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for j in range(train_images if split == "train" else 2):
                arr = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{j}.png")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    good = make_checkpoint(root / "good.pt")
    data = good.read_bytes()
    (root / "empty.pt").write_bytes(b"")
    (root / "truncated.pt").write_bytes(data[: len(data) // 2])
    (root / "notes.pt").write_text("these are my notes, not a checkpoint\n")
    make_checkpoint(root / "two_classes.pt", num_classes=2)
    make_checkpoint(root / "resnet32.pt", name="resnet32")
    make_checkpoint(root / "plain20.pt", name="plain20")
    torch.save(models.create_model("resnet20").state_dict(), root / "bare.pt")
    sparse = models.create_model("resnet20").state_dict()
    sparse["fc.weight"] = sparse["fc.weight"].to_sparse()
    torch.save(sparse, root / "sparse.pt")
    state = models.create_model("resnet20").state_dict()
    torch.save(
        {"format": "landscape-checkpoint", "format_version": 1, "model": "resnet20",
         "model_kwargs": {"num_classes": -1}, "state_dict": state},
        root / "neg_classes.pt",
    )  # fmt: skip
    for name, value in (("nan.pt", float("nan")), ("inf.pt", float("inf"))):
        model = models.create_model("resnet20")
        with torch.no_grad():
            model.layer2[0].conv1.weight[0, 0, 0, 0] = value
        models.save_checkpoint(root / name, model)

    # resnet20's directions: their names are a subset of resnet32's (issue #35, item 5)
    from landscape.io.surface_file import write_directions_file

    r20 = dict(models.create_model("resnet20").named_parameters())
    write_directions_file(
        root / "r20_dirs.h5",
        {a: {n: torch.ones_like(p.detach()) for n, p in r20.items()} for a in ("x", "y")},
        config={"kind": "hessian_eigenvectors"},
    )
    p20 = dict(models.create_model("plain20").named_parameters())  # no shortcut layers
    write_directions_file(
        root / "p20_dirs.h5",
        {a: {n: torch.ones_like(p.detach()) for n, p in p20.items()} for a in ("x", "y")},
        config={"kind": "trajectory_pca"},
    )
    write_directions_file(
        root / "pca_dirs.h5",
        {a: {n: torch.ones_like(p.detach()) for n, p in r20.items()} for a in ("x", "y")},
        config={"kind": "trajectory_pca"},
    )
    make_surface_file(root, "result.h5", shape=(5, 4), label="mine")
    make_surface_file(root, "line.h5", shape=(7,))
    surface = (root / "result.h5").read_bytes()
    (root / "truncated.h5").write_bytes(surface[: len(surface) // 3])
    with h5py.File(root / "foreign.h5", "w") as f:
        f["weights"] = np.arange(10.0)
    (root / "text.h5").write_text("not HDF5\n")
    (root / "a_file").write_text("a file, not a folder\n")

    _image_folder(root / "images", train_images=3)
    _image_folder(root / "no_train", train_images=3, with_train=False)
    (root / "no_images" / "train" / "a").mkdir(parents=True)
    (root / "no_images" / "test" / "a").mkdir(parents=True)

    # Outputs that must never be written into (issue #23).
    (root / "folder.h5").mkdir()
    os.mkfifo(root / "pipe.h5")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))  # not a landscape figure
    (root / "notes.json").write_text('{"mine": 1}\n')
    # Other programs' files that mention the word (issue #35, item 4): never ours.
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Description", "Alpine landscape at dusk")
    info.add_text("Software", "landscape-maker 2")
    Image.new("RGB", (4, 4)).save(root / "alpine.png", pnginfo=info)
    (root / "alpine.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj << /Title (Alpine landscape at dusk) /Creator (landscape) >> endobj\n"
    )
    (root / "alpine.svg").write_text(
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><title>Alpine '
        "landscape at dusk</title><desc>landscape 1.0</desc></svg>\n"
    )
    (root / "mine.csv").write_text("alpha,beta,loss\n0.0,0.0,1.0\n")
    (root / "maker.html").write_text(
        '<!DOCTYPE html>\n<meta name="generator" content="landscape-maker 2">\n<p>mine</p>\n'
    )
    (root / "page.html").write_text("<!DOCTYPE html><p>my notes</p>\n")
    (root / "ckpt.h5").write_bytes(good.read_bytes())  # a checkpoint that ends in .h5
    state = models.create_model("resnet20").state_dict()
    torch.save(
        {"format": "landscape-checkpoint", "format_version": 1, "model": "subprocess:getoutput",
         "model_kwargs": {"cmd": f"touch {root / 'ran'}"}, "state_dict": state},
        root / "evil.pt",
    )  # fmt: skip
    (root / "emptydata.py").write_text(
        "import torch\n"
        "def empty(split):\n"
        "    return torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long)\n"
    )
    for epoch in range(2):
        make_checkpoint(root / "traj" / f"epoch_{epoch:03d}.pt", seed=epoch)

    # A training run whose newest checkpoint was cut short (e.g. copied off a full disk).
    assert train.main(_train_args(World(root), out=str(root / "run_ok"), epochs="1")) == 0
    run = root / "run"
    assert train.main(_train_args(World(root), out=str(run), epochs="1")) == 0
    latest = run / "epoch_001.pt"
    latest.write_bytes(latest.read_bytes()[:1000])
    (run / "final.pt").unlink()
    return World(root)


def _train_args(w: World, *, out: str, epochs: str = "1", extra=()) -> list[str]:
    return [
        "--dataset", "tinydata:tiny", "--epochs", epochs, "--batch-size", "16",
        "--out", out, "--no-progress", "--device", "cpu", *extra,
    ]  # fmt: skip


def _compute(w: World, *extra: str, ckpt: str = "good.pt", out: str = "new.h5") -> list[str]:
    args = {"--ckpt": w / ckpt, "--dataset": "tinydata:tiny", "--out": w / out, "--x": "-1:1:3"}
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        args[flag] = value
    return [*(token for item in args.items() for token in item), "--quiet"]


# (command, argv builder, text the one line must contain)
CASES = {
    # -- compute: checkpoints --
    "compute-missing-ckpt": ("compute", lambda w: _compute(w, ckpt="nope.pt"), "does not exist"),
    "compute-empty-ckpt": ("compute", lambda w: _compute(w, ckpt="empty.pt"), "empty"),
    "compute-truncated-ckpt": (
        "compute",
        lambda w: _compute(w, ckpt="truncated.pt"),
        "not a readable PyTorch checkpoint",
    ),
    "compute-not-a-ckpt": (
        "compute",
        lambda w: _compute(w, ckpt="notes.pt"),
        "not a readable PyTorch checkpoint",
    ),
    "compute-class-count": (
        "compute",
        lambda w: _compute(w, ckpt="two_classes.pt"),
        "the model has 2 outputs",
    ),
    "compute-bare-wrong-arch": (
        "compute",
        lambda w: _compute(w, "--model", "resnet32", ckpt="bare.pt"),
        "resnet32",
    ),
    "compute-bare-unknown-model": (
        "compute",
        lambda w: _compute(w, "--model", "resnet21", ckpt="bare.pt"),
        "unknown model",
    ),
    "compute-bare-no-model": ("compute", lambda w: _compute(w, ckpt="bare.pt"), "--model"),
    "compute-nan-weights": ("compute", lambda w: _compute(w, ckpt="nan.pt"), "NaN"),
    "compute-inf-weights": ("compute", lambda w: _compute(w, ckpt="inf.pt"), "inf"),
    "compute-ckpt2-other-arch": (
        "compute",
        lambda w: _compute(w, "--ckpt2", w / "resnet32.pt"),
        "different networks",
    ),
    # -- compute: grids and names --
    "compute-grid-zero-points": ("compute", lambda w: _compute(w, "--x", "-1:1:0"), "NUM"),
    "compute-grid-reversed": ("compute", lambda w: _compute(w, "--x", "1:-1:5"), "MAX must be"),
    "compute-grid-letters": ("compute", lambda w: _compute(w, "--x", "a:b:c"), "MIN:MAX:NUM"),
    "compute-grid-y-zero": ("compute", lambda w: _compute(w, "--y", "-1:1:0"), "NUM"),
    "compute-unknown-norm": ("compute", lambda w: _compute(w, "--norm", "l2"), "--norm"),
    "compute-unknown-dataset": (
        "compute",
        lambda w: _compute(w, "--dataset", "imagenet99"),
        "unknown dataset",
    ),
    "compute-folder-without-train": (
        "compute",
        lambda w: _compute(w, "--dataset", f"imagefolder:{w / 'no_train'}"),
        "train",
    ),
    "compute-empty-dataset": (
        "compute",
        lambda w: _compute(w, "--dataset", f"imagefolder:{w / 'no_images'}"),
        "no images",
    ),
    "compute-too-many-samples": (
        "compute",
        lambda w: _compute(w, "--samples", "1000"),
        "--samples 1000",
    ),
    # -- compute: outputs --
    "compute-unwritable-out": ("compute", lambda w: _compute(w, out="a_file/s.h5"), "cannot write"),
    "compute-out-other-settings": (
        "compute",
        lambda w: _compute(w, "--x", "-1:1:5", out="result.h5"),
        "--overwrite",
    ),
    "compute-out-truncated-h5": (
        "compute",
        lambda w: _compute(w, out="truncated.h5"),
        "--overwrite",
    ),
    "compute-out-foreign-h5": ("compute", lambda w: _compute(w, out="foreign.h5"), "--overwrite"),
    "compute-directions-of-a-smaller-network": (
        "compute",
        lambda w: _compute(w, "--directions", w / "r20_dirs.h5", ckpt="resnet32.pt"),
        "has no tensor for the model's parameter layer1.3.conv1.weight",
    ),
    "compute-directions-of-plain20-on-resnet20": (
        "compute",
        lambda w: _compute(w, "--directions", w / "p20_dirs.h5"),
        "has no tensor for the model's parameter layer2.0.downsample.0.weight",
    ),
    "compute-directions-foreign": (
        "compute",
        lambda w: _compute(w, "--directions", w / "foreign.h5"),
        "directions",
    ),
    "compute-cuda-without-gpu": (
        "compute",
        lambda w: _compute(w, "--device", "cuda"),
        "--device cpu",
    ),
    # -- train --
    # -- train: settings that cannot train (#35) --
    "train-lr-inf": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--lr", "inf"]),
        "--lr must be a positive finite number",
    ),
    "train-unsorted-milestones": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--milestones", "0.75,0.5"]),
        "increasing fractions",
    ),
    "train-huge-crop-padding": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--crop-padding", str(10**9)]),
        "in 0..1024",
    ),
    "compute-too-many-seeds": (
        "compute",
        lambda w: [*_compute(w), "--seeds", ",".join(map(str, range(20000)))],
        "at most 100",
    ),
    "compute-sparse-ckpt": ("compute", lambda w: _compute(w, ckpt="sparse.pt"), "sparse"),
    "compute-negative-classes": (
        "compute",
        lambda w: _compute(w, ckpt="neg_classes.pt"),
        "cannot rebuild model",
    ),
    "train-unknown-model": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--model", "resnet21"]),
        "unknown model",
    ),
    "train-unknown-dataset": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--dataset", "imagenet99"]),
        "unknown dataset",
    ),
    "train-folder-without-train": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--dataset", f"imagefolder:{w / 'no_train'}"]),
        "train",
    ),
    "train-empty-dataset": (
        "train",
        lambda w: _train_args(
            w, out=w / "t", extra=["--dataset", f"imagefolder:{w / 'no_images'}"]
        ),
        "no images",
    ),
    "train-too-many-samples": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--samples", "1000"]),
        "--samples 1000",
    ),
    "train-class-count": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--model-kwargs", '{"num_classes": 2}']),
        "2 classes but the dataset has 10",
    ),
    "train-bad-model-kwargs": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--model-kwargs", "{oops"]),
        "JSON",
    ),
    "train-unwritable-out": ("train", lambda w: _train_args(w, out=w / "a_file/run"), "cannot"),
    "train-other-settings": (
        "train",
        lambda w: _train_args(w, out=w / "run_ok", extra=["--lr", "0.5"]),
        "lr: ",
    ),
    "train-truncated-latest-ckpt": (
        "train",
        lambda w: _train_args(w, out=w / "run"),
        "delete epoch_001.pt",
    ),
    "train-cuda-without-gpu": (
        "train",
        lambda w: [*_train_args(w, out=w / "t")[:-2], "--device", "cuda"],
        "--device cpu",
    ),
    "train-zero-epochs": ("train", lambda w: _train_args(w, out=w / "t", epochs="0"), "epochs"),
    # -- plot --
    "plot-missing-file": ("plot", lambda w: [w / "nope.h5"], "does not exist"),
    "plot-truncated-h5": ("plot", lambda w: [w / "truncated.h5"], "truncated.h5"),
    "plot-foreign-h5": ("plot", lambda w: [w / "foreign.h5"], "not a surface file"),
    "plot-text-file": ("plot", lambda w: [w / "text.h5"], "text.h5"),
    "plot-unwritable-out": (
        "plot",
        lambda w: [w / "result.h5", "--out", w / "a_file/f.png"],
        "cannot write",
    ),
    "plot-unknown-format": ("plot", lambda w: [w / "result.h5", "--out", w / "fig.docx"], ".png"),
    "plot-unknown-split": ("plot", lambda w: [w / "result.h5", "--split", "val"], "val"),
    "plot-bad-levels": ("plot", lambda w: [w / "result.h5", "--levels", "many"], "--levels"),
    "plot-mixed-dimensions": ("plot", lambda w: [w / "result.h5", w / "line.h5"], "1-D"),
    # -- view --
    "view-missing-file": ("view", lambda w: [w / "nope.h5"], "does not exist"),
    "view-truncated-h5": ("view", lambda w: [w / "truncated.h5"], "truncated.h5"),
    "view-foreign-h5": ("view", lambda w: [w / "foreign.h5"], "not a surface file"),
    "view-unwritable-out": (
        "view",
        lambda w: [w / "result.h5", "--out", w / "a_file/v.html"],
        "cannot write",
    ),
    "view-foreign-path": (
        "view",
        lambda w: [w / "result.h5", "--path", w / "foreign.h5"],
        "foreign.h5",
    ),
    # -- export --
    "export-missing-file": ("export", lambda w: [w / "nope.h5", "--csv"], "does not exist"),
    "export-truncated-h5": ("export", lambda w: [w / "truncated.h5", "--csv"], "truncated.h5"),
    "export-foreign-h5": ("export", lambda w: [w / "foreign.h5", "--vtk"], "not a surface file"),
    "export-no-format": ("export", lambda w: [w / "result.h5"], "--vtk"),
    "export-unwritable-out": (
        "export",
        lambda w: [w / "result.h5", "--csv", "--out", w / "a_file/e.csv"],
        "cannot write",
    ),
    "export-unknown-split": (
        "export",
        lambda w: [w / "result.h5", "--vtk", "--split", "val"],
        "val",
    ),
    # -- issue #23: messages that did not name the problem, and bad input once accepted --
    "compute-grid-too-large": (
        "compute",
        lambda w: _compute(w, "--x", "-1:1:100000", "--y", "-1:1:100000"),
        "at most 10,000,000",
    ),
    "compute-seed-too-large": ("compute", lambda w: _compute(w, "--seed", str(10**23)), "--seed"),
    "compute-seed-negative": ("compute", lambda w: _compute(w, "--seed", "-1"), "--seed"),
    "compute-data-seed-too-large": (
        "compute",
        lambda w: _compute(w, "--samples", "8", "--subset", "stratified", "--data-seed", "1e30"),
        "--data-seed",
    ),
    "compute-bn-samples-too-many": (
        "compute",
        lambda w: _compute(w, "--bn", "recompute", "--bn-samples", "999999"),
        "--bn-samples 999999",
    ),
    "compute-out-is-a-folder": ("compute", lambda w: _compute(w, out="folder.h5"), "is a folder"),
    "compute-out-is-a-pipe": ("compute", lambda w: _compute(w, out="pipe.h5"), "not a regular"),
    "compute-out-is-the-checkpoint": (
        "compute",
        lambda w: [*_compute(w, ckpt="ckpt.h5", out="ckpt.h5"), "--overwrite"],
        "also an input",
    ),
    "compute-ckpt-is-a-folder": ("compute", lambda w: _compute(w, ckpt="traj"), "is a folder"),
    "compute-ckpt-names-code": ("compute", lambda w: _compute(w, ckpt="evil.pt"), "never names"),
    "compute-empty-plugin-dataset": (
        "compute",
        lambda w: _compute(w, "--dataset", "emptydata:empty"),
        "empty train split",
    ),
    "compute-grid-minus-inf": ("compute", lambda w: _compute(w, "--x", "-inf:1:3"), "finite"),
    "compute-unknown-model-kwarg": (
        "compute",
        lambda w: _compute(w, "--model-kwargs", '{"depthx": 3}'),
        "--model-kwargs",
    ),
    "compute-dist-timeout-nan": (
        "compute",
        lambda w: _compute(w, "--dist-timeout", "nan"),
        "--dist-timeout",
    ),
    "demo-grid-zero": ("demo", lambda w: ["--grid", "0", "--out", w / "demo"], "--grid"),
    "demo-samples-zero": ("demo", lambda w: ["--samples", "0", "--out", w / "demo"], "--samples"),
    "metrics-radius-nan": ("metrics", lambda w: [w / "result.h5", "--radius", "nan"], "--radius"),
    "metrics-radius-outside-grid": (
        "metrics",
        lambda w: [w / "result.h5", "--radius", "1e308"],
        "inside the grid",
    ),
    "metrics-no-rays": ("metrics", lambda w: [w / "result.h5", "--rays", "0"], "--rays"),
    "plot-levels-nan": ("plot", lambda w: [w / "result.h5", "--levels", "nan,1"], "finite"),
    "plot-levels-too-many": (
        "plot",
        lambda w: [w / "result.h5", "--levels", "100000000"],
        "between 2 and 500",
    ),
    "plot-dpi-too-large": ("plot", lambda w: [w / "result.h5", "--dpi", "100000"], "--dpi"),
    "plot-vmin-nan": ("plot", lambda w: [w / "result.h5", "--vmin", "nan"], "--vmin"),
    "plot-path-on-1d": (
        "plot",
        lambda w: [w / "line.h5", "--path", w / "result.h5", "--out", w / "p.png"],
        "--path",
    ),
    "plot-out-foreign-picture": (
        "plot",
        lambda w: [w / "result.h5", "--out", w / "photo.png"],
        "--overwrite",
    ),
    **{
        f"plot-out-foreign-{ext}-mentioning-landscape": (
            "plot",
            lambda w, ext=ext: [w / "result.h5", "--out", w / f"alpine.{ext}"],
            "--overwrite",
        )
        for ext in ("png", "pdf", "svg")
    },
    "view-out-page-of-another-generator": (
        "view",
        lambda w: [w / "result.h5", "--out", w / "maker.html"],
        "--overwrite",
    ),
    "export-out-foreign-csv-starting-alpha": (
        "export",
        lambda w: [w / "result.h5", "--csv", "--out", w / "mine.csv"],
        "--overwrite",
    ),
    "trajectory-out-onto-eigendirs": (
        "trajectory",
        lambda w: [w / "traj", "--out", w / "r20_dirs.h5"],
        "--overwrite",
    ),
    "eigendirs-out-onto-a-trajectory": (
        "eigendirs",
        lambda w: [
            "--ckpt",
            w / "good.pt",
            "--dataset",
            "tinydata:tiny",
            "--out",
            w / "pca_dirs.h5",
        ],
        "--overwrite",
    ),
    "view-out-foreign-page": (
        "view",
        lambda w: [w / "result.h5", "--out", w / "page.html"],
        "--overwrite",
    ),
    "export-clip-nan": ("export", lambda w: [w / "result.h5", "--vtk", "--clip", "nan"], "--clip"),
    "export-out-is-the-input": (
        "export",
        lambda w: [w / "result.h5", "--csv", "--out", w / "result.h5"],
        "also an input",
    ),
    "export-vtk-onto-a-surface": (
        "export",
        lambda w: [w / "line.h5", "--vtk", "--out", w / "result.h5"],
        "landscape-surface",
    ),
    "train-seed-too-large": (
        "train",
        lambda w: _train_args(w, out=w / "t", extra=["--seed", str(10**23)]),
        "--seed",
    ),
    "train-out-is-a-file": ("train", lambda w: _train_args(w, out=w / "a_file"), "is a file"),
    "hessian-seed-too-large": (
        "hessian",
        lambda w: ["--ckpt", w / "good.pt", "--seed", str(10**23)],
        "--seed",
    ),
    # -- hessian: counts bounded before anything is allocated (#35) --
    "hessian-iters-huge": (
        "hessian",
        lambda w: ["--ckpt", w / "good.pt", "--iters", str(10**12), "--out", w / "h.json"],
        "--iters must be at most 1,000",
    ),
    "hessian-top-k-huge": (
        "hessian",
        lambda w: ["--ckpt", w / "good.pt", "--top-k", str(10**9), "--out", w / "h.json"],
        "--top-k must be at most 100",
    ),
    "hessian-trace-samples-huge": (
        "hessian",
        lambda w: ["--ckpt", w / "good.pt", "--trace-samples", str(10**12), "--out", w / "h.json"],
        "--trace-samples must be at most 10,000",
    ),
    "hessian-surface-iters-huge": (
        "hessian",
        lambda w: ["--surface", w / "result.h5", "--iters", str(10**12)],
        "--iters must be at most 1,000",
    ),
    "hessian-nan-weights": (
        "hessian",
        lambda w: ["--ckpt", w / "nan.pt", "--dataset", "tinydata:tiny", "--out", w / "h.json"],
        "NaN",
    ),
    "hessian-ckpt-names-code": (
        "hessian",
        lambda w: ["--ckpt", w / "evil.pt", "--dataset", "tinydata:tiny", "--out", w / "h.json"],
        "never names",
    ),
    "responses-ckpt-names-code": (
        "responses",
        lambda w: [w / "evil.pt", "--dataset", "tinydata:tiny", "--out", w / "r.json"],
        "never names",
    ),
    "responses-out-onto-foreign-json": (
        "responses",
        lambda w: [w / "good.pt", "--dataset", "tinydata:tiny", "--out", w / "notes.json"],
        "--overwrite",
    ),
    "trajectory-one-checkpoint": (
        "trajectory",
        lambda w: [w / "good.pt", "--out", w / "t.h5"],
        "2 or more checkpoints",
    ),
    # -- trajectory: paths that cannot be analysed (#35) --
    "trajectory-nan-checkpoint": (
        "trajectory",
        lambda w: [w / "traj/epoch_000.pt", w / "nan.pt", "--out", w / "t.h5"],
        "nan.pt' holds NaN or inf",
    ),
    "trajectory-other-network": (
        "trajectory",
        lambda w: [w / "traj/epoch_000.pt", w / "plain20.pt", "--out", w / "t.h5"],
        "plain20.pt' is another network",
    ),
    "trajectory-no-variance": (
        "trajectory",
        lambda w: [w / "good.pt", w / "good.pt", w / "good.pt", "--out", w / "t.h5"],
        "no variance",
    ),
    "trajectory-split-with-slash": (
        "trajectory",
        lambda w: [w / "traj", "--out", w / "t.h5", "--split", "train/../x"],
        "--split must name a split",
    ),
    "trajectory-out-onto-a-surface": (
        "trajectory",
        lambda w: [w / "traj", "--out", w / "result.h5"],
        "landscape-surface",
    ),
    "eigendirs-out-onto-a-surface": (
        "eigendirs",
        lambda w: ["--ckpt", w / "good.pt", "--dataset", "tinydata:tiny", "--out", w / "line.h5"],
        "landscape-surface",
    ),
    "eigendirs-ckpt-names-code": (
        "eigendirs",
        lambda w: ["--ckpt", w / "evil.pt", "--dataset", "tinydata:tiny", "--out", w / "e.h5"],
        "never names",
    ),
    "convert-landscape-surface": (
        "convert",
        lambda w: [w / "result.h5", "--out", w / "converted.h5"],
        "needs no conversion",
    ),
    "convert-out-is-the-input": (
        "convert",
        lambda w: [w / "result.h5", "--out", w / "result.h5", "--overwrite"],
        "also an input",
    ),
    "curves-dpi-zero": (
        "curves",
        lambda w: [w / "run_ok", "--out", w / "c.png", "--dpi", "0"],
        "--dpi",
    ),
}


def _fingerprint(root: Path) -> dict[str, str]:
    """Every file of the world and its content hash: nothing may change."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_table_is_large_and_covers_every_command() -> None:
    assert len(CASES) >= 100
    assert {command for command, _, _ in CASES.values()} == set(MAINS)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_is_damaged(world, case, capsys) -> None:
    command, build, expected = CASES[case]
    sys.path.insert(0, str(world.root))  # emptydata.py, a plugin named on the command line
    before = _fingerprint(world.root)
    code = MAINS[command]([str(a) for a in build(world)])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"landscape {command}: error: "), lines[0]
    assert expected in lines[0], lines[0]
    after = _fingerprint(world.root)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing damaged
    assert not [k for k in after if k not in before and not k.startswith(".")], "half-written"
    assert not (world.root / "ran").exists()  # no file ever ran code
    sys.path.remove(str(world.root))


# ------------------------------------------------- bad input and bugs told apart (issue #15)


def test_a_bug_is_not_reported_as_bad_input(world, tmp_path, capsys, monkeypatch) -> None:
    """A ValueError from inside a model's forward is a bug: traceback, exit 1, a report line."""

    def broken_forward(self, x):
        raise ValueError("operands could not be broadcast together (an injected bug)")

    monkeypatch.setattr(models.CifarResNet, "forward", broken_forward)
    code = compute.main(_compute(world, out=str(tmp_path / "bug.h5")))
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" in err and "injected bug" in err
    assert (
        err.strip().splitlines()[-1].startswith("landscape compute: this is a bug, not a problem")
    )


def test_debug_shows_the_traceback_of_bad_input(world, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LANDSCAPE_DEBUG", "1")
    assert compute.main(_compute(world, "--x", "1:-1:5")) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "InputError" in err
    assert err.strip().splitlines()[-1].startswith("landscape compute: error: --x: MAX must be")


def test_library_errors_name_arguments_and_the_command_line_adds_flags(capsys) -> None:
    from landscape.core.errors import InputError
    from landscape.surface.config import SurfaceConfig

    with pytest.raises(InputError, match=r"^batch_size must be a positive integer") as info:
        SurfaceConfig(ckpt="m.pt", batch_size=0)
    assert info.value.as_flag().startswith("--batch-size must be a positive integer")
    with pytest.raises(InputError, match=r"^norm must be one of"):
        SurfaceConfig(ckpt="m.pt", norm="l2")
    assert compute.main(["--ckpt", "m.pt", "--x", "-1:1:3", "--out", "x.h5", "--norm", "l2"]) == 2
    assert "--norm" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": 2**64}, "seed must be in 0..2\\*\\*63 - 1"),
        ({"seed": -1}, "seed must be in 0..2\\*\\*63 - 1"),
        ({"data_seed": 2**64}, "data_seed must be in 0..2\\*\\*63 - 1"),
        ({"x": (0, 5e-324, 3)}, "not distinct numbers"),
    ],
)
def test_the_python_api_refuses_settings_deep_code_would_trip_on(kwargs, message):
    from landscape.core.errors import InputError
    from landscape.surface.config import SurfaceConfig

    with pytest.raises(InputError, match=message):
        SurfaceConfig(**kwargs)


def test_metrics_bounds_rays_and_resamples_before_allocating(capsys):
    from landscape import metrics as metrics_cli

    for argv, text in (
        (["--rays", str(10**9)], "--rays must be in 1..3600"),
        (["--resamples", str(10**9)], "--resamples must be at most 100,000"),
    ):
        assert metrics_cli.main(["none.h5", *argv]) == 2
        assert text in capsys.readouterr().err


# --------------------------------------- the Python API: inputs deep code tripped on (#35)


class _Linear(torch.nn.Module):
    def __init__(self, name: str = "w", logits: str = "float") -> None:
        super().__init__()
        self.register_parameter(name, torch.nn.Parameter(torch.randn(3, 4)))
        self.name, self.logits = name, logits

    def forward(self, x):
        out = x @ getattr(self, self.name).T
        return out.round().long() if self.logits == "int" else out


class _NoParameters(torch.nn.Module):
    def forward(self, x):
        return x[:, :3]


_X, _Y = torch.randn(16, 4), torch.arange(16) % 3
_D2 = {"x": {"w": torch.randn(3, 4)}}


@pytest.mark.parametrize(
    ("model", "data", "grid", "extra", "error", "message"),
    [
        (_NoParameters(), (_X, _Y), {}, {}, "InputError", "model .* has no parameters"),
        (_Linear(), (_X[:0], _Y[:0]), {}, {}, "DataError", r"data\['train'\] has no samples"),
        (_Linear("a/b"), (_X, _Y), {}, {}, "InputError", "model tensor name 'a/b'"),
        (_Linear(), (_X, _Y[:5]), {}, {}, "DataError", "16 inputs but 5 labels"),
        (_Linear(), (_X, _Y), {"y": (-1, 1, 3)}, {"directions": _D2}, "InputError",
         "directions has no 'y' direction"),
        (_Linear(logits="int"), (_X, _Y), {}, {}, "DataError", "return float logits"),
    ],
    ids=["no-parameters", "empty-data", "slash-in-name", "16-inputs-5-labels",
         "2d-given-only-x", "integer-logits"],
)  # fmt: skip
def test_compute_surface_refuses_inputs_deep_code_tripped_on(
    tmp_path, model, data, grid, extra, error, message
) -> None:
    import landscape as ls
    from landscape.core.errors import InputError

    config = ls.SurfaceConfig(x=(-1, 1, 3), device="cpu", **grid)
    out = tmp_path / "s.h5"
    with pytest.raises(InputError, match=message) as info:
        ls.compute_surface(model, {"train": data}, config, out=out, progress=False, **extra)
    assert type(info.value).__name__ == error and "\n" not in str(info.value)
    assert not out.exists()


def test_our_own_outputs_keep_their_exact_marks(tmp_path) -> None:
    """What `file_kind` recognizes exactly (issue #35, item 4): every figure, page and table
    the package writes, a large PDF (its creator at the end) included, and nothing else."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import landscape as ls
    from landscape.core.files import atomic_savefig, file_kind
    from landscape.io.export import write_csv, write_vtk
    from landscape.io.surface_file import read_surface

    fig = plt.figure()
    plt.imshow(np.random.default_rng(0).random((300, 300)))  # a PDF over 128 KB
    for ext in ("png", "pdf", "svg"):
        atomic_savefig(fig, tmp_path / f"f.{ext}")
        assert file_kind(tmp_path / f"f.{ext}") == "figure", ext
    plt.close(fig)
    assert (tmp_path / "f.pdf").stat().st_size > 1 << 17
    for shape in ((5, 4), (7,)):
        surface = read_surface(make_surface_file(tmp_path, f"s{len(shape)}.h5", shape=shape))
        write_csv(surface, tmp_path / f"t{len(shape)}.csv")
        assert file_kind(tmp_path / f"t{len(shape)}.csv") == "csv"
    write_vtk(surface, tmp_path / "s.vts")
    assert file_kind(tmp_path / "s.vts") == "vtk"
    ls.write_viewer(tmp_path / "v.html", [surface])
    assert file_kind(tmp_path / "v.html") == "html"
    # ... and a table edited by hand (LF lines, another column) is no longer ours
    text = (tmp_path / "t2.csv").read_text()
    (tmp_path / "edited.csv").write_text(text.replace("\r\n", "\n"))
    assert file_kind(tmp_path / "edited.csv") is None


def test_directions_must_cover_every_parameter_that_moves(tmp_path) -> None:
    """Issue #35, item 5: directions of another network whose names are a subset of the
    model's left the rest of it still. They must cover every parameter that moves; with a
    parameter selection (`params` / `exclude`) only the selected ones."""
    import landscape as ls
    from landscape.core.errors import InputError

    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.b(self.a(x))

    model, data = Two(), {"train": (_X, _Y)}
    only_a = {"x": {n: torch.randn(p.shape) for n, p in model.named_parameters() if n[0] == "a"}}
    config = ls.SurfaceConfig(x=(-1, 1, 3), device="cpu")
    with pytest.raises(InputError, match="direction x has no tensor for the model's parameter b."):
        ls.compute_surface(
            model, data, config, out=tmp_path / "all.h5", directions=only_a, progress=False
        )
    assert not (tmp_path / "all.h5").exists()
    selected = ls.SurfaceConfig(x=(-1, 1, 3), device="cpu", params="a.*")
    s = ls.compute_surface(
        model, data, selected, out=tmp_path / "a.h5", directions=only_a, progress=False
    )
    assert s.computed.all()
