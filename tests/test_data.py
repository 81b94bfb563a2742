"""Data loading: the real readers on fake files, the embedded subset, subsets, user data."""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from landscape.cli.options import add_data_arguments
from landscape.data import datasets as data
from landscape.data.datasets import DataError, load_split


# ------------------------------------------------------------------ fixtures
def _write_pickle(path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def fake_cifar10(tmp_path):
    """torchvision's CIFAR-10 python layout: 5 train batches of 4 images, a test batch of 6."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        n = 6 if name == "test_batch" else 4
        batch = {
            "batch_label": f"batch {i}",
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, n)],
            "filenames": [f"{name}_{j}.png" for j in range(n)],
        }
        _write_pickle(folder / name, batch)
        batches[name] = batch
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship"]
    _write_pickle(folder / "batches.meta", {"label_names": names + ["truck"]})
    return tmp_path, batches


def _write_images(root, split, counts, *, size=(8, 8), suffix=".png", seed=0):
    """ImageFolder tree root/split/<class>/NN.png of random images; {class: [HWC arrays]}."""
    rng = np.random.default_rng(seed)
    images = {}
    for cls, n in counts.items():
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        images[cls] = []
        for j in range(n):
            arr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / split / cls / f"{j:02d}{suffix}")
            images[cls].append(arr)
    return images


@pytest.fixture(scope="module")
def embedded():
    return load_split("embedded", "train"), load_split("embedded", "test")


# ------------------------------------------------------------------ CIFAR
def test_cifar10_reads_torchvision_batches(fake_cifar10):
    root, batches = fake_cifar10
    train = load_split("cifar10", "train", data_root=root)
    test = load_split("cifar10", "test", data_root=str(root))
    assert train.x.shape == (20, 3, 32, 32) and train.x.dtype == torch.uint8
    assert test.x.shape == (6, 3, 32, 32) and test.y.dtype == torch.int64
    expected = np.concatenate([batches[f"data_batch_{k}"]["data"] for k in range(1, 6)])
    # Each row holds the red plane, then green, then blue, each row-major 32x32.
    assert torch.equal(train.x, torch.from_numpy(expected.reshape(20, 3, 32, 32)))
    assert test.x[2, 1, 3, 4] == batches["test_batch"]["data"][2, 1024 + 3 * 32 + 4]
    assert test.y.tolist() == batches["test_batch"]["labels"]
    assert train.classes[-1] == "truck" and train.num_classes == 10
    assert train.mean == data.CIFAR10_MEAN and train.std == data.CIFAR10_STD
    assert train.info["dataset"] == "cifar10" and train.info["n"] == 20


def test_cifar100_reads_torchvision_files(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for split, n in (("train", 5), ("test", 3)):
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": list(range(n)),
            "coarse_labels": [0] * n,
        }
        _write_pickle(folder / split, batch)
    _write_pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    test = load_split("cifar100", "test", data_root=tmp_path)
    assert test.x.shape == (3, 3, 32, 32) and test.y.tolist() == [0, 1, 2]
    assert test.num_classes == 100 and test.mean == data.CIFAR100_MEAN


def test_cifar_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(DataError) as e:
        load_split("cifar10", "test", data_root=tmp_path)
    # The library names its arguments; the command line writes them as flags.
    message = str(e.value)
    assert "set download" in message and "data_root" in message and "\n" not in message
    assert "--download" in e.value.as_flag() and "--data-root" in e.value.as_flag()


# ------------------------------------------------------------------ ImageFolder
def test_imagefolder_reads_and_interleaves_classes(tmp_path):
    images = _write_images(tmp_path, "train", {"cat": 3, "dog": 2})
    _write_images(tmp_path, "test", {"cat": 1, "dog": 1}, seed=1)
    train = load_split(f"imagefolder:{tmp_path}", "train")
    assert train.x.shape == (5, 3, 8, 8) and train.x.dtype == torch.uint8
    assert train.classes == ("cat", "dog")
    # Class-interleaved: cat 00, dog 00, cat 01, dog 01, cat 02.
    assert train.y.tolist() == [0, 1, 0, 1, 0]
    order = [("cat", 0), ("dog", 0), ("cat", 1), ("dog", 1), ("cat", 2)]
    for i, (cls, j) in enumerate(order):
        assert torch.equal(train.x[i], torch.from_numpy(images[cls][j]).permute(2, 0, 1))
    # Normalization: per-channel statistics of train/, for both splits.
    pixels = torch.from_numpy(np.stack([a for v in images.values() for a in v])).double() / 255
    assert train.mean == pytest.approx(pixels.mean(dim=(0, 1, 2)).tolist())
    test = load_split(f"imagefolder:{tmp_path}", "test")
    assert test.mean == train.mean and test.std == train.std and len(test) == 2


def test_imagefolder_decodes_once_and_rereads_a_changed_folder(tmp_path, monkeypatch):
    folder, cache = tmp_path / "images", tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE", str(cache))
    _write_images(folder, "train", {"a": 2, "b": 2})
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    first = load_split(f"imagefolder:{folder}", "train")
    assert len(list(cache.rglob("train-*.pt"))) == 1
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before  # never written

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the folder did not change")

    monkeypatch.setattr(data, "_decode_many", no_decoding)
    again = load_split(f"imagefolder:{folder}", "train")
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
    monkeypatch.undo()
    monkeypatch.setenv("LANDSCAPE_CACHE", str(cache))

    _write_images(folder, "train", {"b": 3}, seed=5)  # rewrites b/00, b/01, adds b/02
    changed = load_split(f"imagefolder:{folder}", "train")
    assert len(changed) == 5
    assert len(list(cache.rglob("train-*.pt"))) == 1


def test_a_damaged_imagefolder_cache_is_decoded_again_and_off_means_no_cache(tmp_path, monkeypatch):
    folder, cache = tmp_path / "images", tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE", str(cache))
    _write_images(folder, "train", {"a": 2, "b": 2})
    first = load_split(f"imagefolder:{folder}", "train")
    (entry,) = cache.rglob("train-*.pt")
    obj = torch.load(entry, weights_only=True)
    obj["x"].zero_()  # same shape, same key: only the content check can tell
    torch.save(obj, entry)
    again = load_split(f"imagefolder:{folder}", "train")
    assert torch.equal(again.x, first.x) and again.x.any()
    monkeypatch.setenv("LANDSCAPE_CACHE", "off")
    other = tmp_path / "other"
    _write_images(other, "train", {"a": 1})
    load_split(f"imagefolder:{other}", "train")
    assert not list(cache.rglob(f"*{other.name}*")) and not list(other.rglob("*.pt"))


def test_imagefolder_reads_jpeg(tmp_path):
    _write_images(tmp_path, "train", {"a": 2, "b": 1}, suffix=".jpg", size=(6, 10))
    train = load_split(f"imagefolder:{tmp_path}", "train")
    assert train.x.shape == (3, 3, 6, 10)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_split(f"imagefolder:{tmp_path}", "train")
    _write_images(tmp_path, "train", {"a": 1})
    _write_images(tmp_path, "train", {"b": 1}, size=(4, 4))
    with pytest.raises(DataError, match="different sizes"):
        load_split(f"imagefolder:{tmp_path}", "train")


# ------------------------------------------------------------------ embedded
def test_embedded_subset_has_documented_size_and_balance(embedded):
    train, test = embedded
    assert train.x.shape == (5000, 3, 32, 32) and test.x.shape == (1000, 3, 32, 32)
    assert train.x.dtype == torch.uint8 and train.y.dtype == torch.int64
    assert torch.bincount(train.y).tolist() == [500] * 10
    assert torch.bincount(test.y).tolist() == [100] * 10
    assert train.classes[:3] == ("airplane", "automobile", "bird") and len(train.classes) == 10
    assert test.y[:20].tolist() == list(range(10)) * 2  # class-interleaved
    assert data.EMBEDDED_ASSET.stat().st_size < 3_000_000
    x = test.normalized()
    assert x.dtype == torch.float32 and x.shape == test.x.shape
    # CIFAR-10 constants fit the subset: about zero mean, unit deviation per channel.
    assert x.mean(dim=(0, 2, 3)).abs().max() < 0.1
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1
    assert data.DEFAULT_DATASET == "embedded"
    assert data.num_classes("embedded") == 10 and data.in_channels("embedded") == 3


def test_normalized_matches_a_naive_computation(embedded):
    test = embedded[1]
    x = test.x[:4].double() / 255
    for c in range(3):
        x[:, c] = (x[:, c] - test.mean[c]) / test.std[c]
    torch.testing.assert_close(test.normalized()[:4].double(), x, atol=1e-6, rtol=0)
    assert test.normalized(dtype=torch.bfloat16).dtype == torch.bfloat16


# ------------------------------------------------------------------ subsets
def test_first_n_and_stratified_subsets(embedded):
    full = embedded[1]
    first = load_split("embedded", "test", samples=25)
    assert torch.equal(first.x, full.x[:25]) and first.info["subset"] == "first"
    a = load_split("embedded", "test", samples=100, subset="stratified", seed=1)
    b = load_split("embedded", "test", samples=100, subset="stratified", seed=1)
    c = load_split("embedded", "test", samples=100, subset="stratified", seed=2)
    assert torch.bincount(a.y).tolist() == [10] * 10
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert json.loads(json.dumps(a.info)) == a.info  # recorded as is in result files
    assert (a.info["samples"], a.info["seed"]) == (100, 1)
    assert a.info["subset"] == "stratified" and a.info["n_total"] == 1000 and a.info["n"] == 100
    assert full.info["samples"] is None and full.info["n"] == 1000


def test_stratified_counts_are_proportional():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    idx = data.subset_indices(y, 7, "stratified", seed=0)
    counts = torch.bincount(y[idx], minlength=3).tolist()
    # 7 * (0.5, 0.3, 0.2) = 3.5, 2.1, 1.4 -> floors 3, 2, 1; the largest remainder (0.5) +1.
    assert counts == [4, 2, 1]
    assert torch.equal(idx, torch.sort(idx).values) and len(set(idx.tolist())) == 7


def test_too_many_samples_is_an_error():
    with pytest.raises(DataError, match="at most 1000"):
        load_split("embedded", "test", samples=1001)


# ------------------------------------------------------------------ user datasets
USER_MODULE = textwrap.dedent(
    """
    import torch

    def tensors(split):
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        return torch.randn(6, 2, 4, 4, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])

    class Pairs(torch.utils.data.Dataset):
        classes = ["no", "yes"]
        def __len__(self):
            return 3
        def __getitem__(self, i):
            return torch.full((1, 2, 2), float(i)), i % 2

    def pairs(split):
        return Pairs()
    """
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_data_mod.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_data_mod"
    sys.modules.pop("user_data_mod", None)


def test_user_function_returning_tensors_is_used_as_given(user_module):
    train = load_split(f"{user_module}:tensors", "train")
    x = torch.randn(6, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(train.x, x) and train.mean is None
    assert torch.equal(train.normalized(), x)  # no normalization added
    assert train.num_classes == 3 and train.in_channels == 2
    assert data.in_channels(f"{user_module}:tensors") == 2


def test_user_function_returning_a_dataset(user_module):
    test = load_split(f"{user_module}:pairs", "test")
    assert test.x.shape == (3, 1, 2, 2) and test.y.tolist() == [0, 1, 0]
    assert test.classes == ("no", "yes") and test.x[2].eq(2).all()


def test_user_module_is_imported_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "cwd_data_mod.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert len(load_split("cwd_data_mod:tensors", "train")) == 6
    finally:
        sys.modules.pop("cwd_data_mod", None)
    assert str(tmp_path) not in sys.path


@pytest.mark.parametrize(
    "spec, split, match",
    [
        ("nonsense", "train", "unknown dataset"),
        ("no_such_module_xyz:fn", "train", "cannot import"),
        ("embedded", "val", "split must be"),
        ("imagefolder:", "train", "needs a folder"),
    ],
)
def test_bad_dataset_specs(spec, split, match):
    with pytest.raises(DataError, match=match):
        load_split(spec, split)


def test_add_data_arguments_defaults_and_use():
    parser = argparse.ArgumentParser()
    add_data_arguments(parser)
    args = parser.parse_args([])
    assert (args.dataset, args.samples, args.subset, args.data_seed) == (
        "embedded",
        None,
        "first",
        0,
    )
    args = parser.parse_args(["--samples", "30", "--subset", "stratified", "--data-seed", "3"])
    loaded = data.load_split(
        args.dataset, "test", samples=args.samples, subset=args.subset, seed=args.data_seed
    )
    assert len(loaded) == 30 and loaded.info["seed"] == 3


def test_an_image_too_large_to_decode_is_one_line_naming_it(tmp_path, monkeypatch):
    from PIL import Image

    _write_images(tmp_path, "train", {"a": 1, "b": 1})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # an 8x8 image stands for 20000x20000
    with pytest.raises(data.DataError, match=r"image a/00.png in .* is too large to decode"):
        load_split(f"imagefolder:{tmp_path}", "train")
