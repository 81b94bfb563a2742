"""Datasets as whole tensors: one ``uint8`` (N, C, H, W) tensor per split, decoded once.

Dataset names (``--dataset``):

* ``embedded`` (the default of every command): a real subset of CIFAR-10 shipped
  inside the package, ``landscape/assets/embedded_cifar10.npz`` (1.9 MB). For
  each of the 10 classes, in sorted class order, the first 500 training and the
  first 100 test JPEG files by file name of the CIFAR-10 JPEG release: 5,000
  train + 1,000 test images of 32x32 RGB, exactly 500 / 100 per class. The
  original JPEG bytes are stored (built by ``scripts/make_embedded_subset.py``)
  and decoded at load; normalized with the CIFAR-10 constants.
* ``cifar10`` / ``cifar100``: the official python release read from
  ``--data-root`` (default ``./data``), fetched by torchvision with ``--download``.
* ``imagefolder:DIR``: a torchvision ImageFolder tree ``DIR/train/<class>/*``,
  ``DIR/test/<class>/*`` of equally sized images (decoded as RGB). The decoded
  tensor is cached in the user cache directory (``$XDG_CACHE_HOME`` or
  ``~/.cache``)/landscape, or in ``$LANDSCAPE_CACHE`` (``off``: no cache), never
  in DIR; an entry is keyed by every file's path, size and mtime, so a changed
  folder is read again, and its content is checked on every read. Normalized
  with the per-channel mean and std of its ``train/`` images.
* ``module.path:function``: a user's own data, ``function(split)`` returning a
  ``Dataset`` of ``(x, y)`` pairs or a tuple ``(x, y)`` of tensors; samples are
  used exactly as given (no normalization or augmentation added). The module is
  imported from ``sys.path``, the working directory included.

Sample order: ``cifar10``/``cifar100`` and user data keep their own order;
``embedded`` and ``imagefolder`` are class-interleaved (the first file of every
class in class order, then the second of every class, ...), so that the first N
samples are balanced.

``--samples N`` takes a fixed subset, recorded in ``DataTensors.info``:
``--subset first`` (default) the first N samples in that order;
``--subset stratified`` a random subset drawn with ``--data-seed``, with per-class
counts proportional to the split's (largest remainders), kept in dataset order.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import dataclasses
import hashlib
import io
import os
import pickle
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from landscape import models
from landscape.core.errors import InputError

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_DATA_ROOT",
    "SPLITS",
    "SUBSETS",
    "DataError",
    "check_model_fits",
    "check_sizes",
    "is_plugin",
    "DataTensors",
    "as_tensors",
    "in_channels",
    "load_split",
    "normalize",
    "num_classes",
    "subset_indices",
    "take_subset",
]

DEFAULT_DATASET = "embedded"
DEFAULT_DATA_ROOT = "data"
SPLITS = ("train", "test")
SUBSETS = ("first", "stratified")
EMBEDDED_ASSET = Path(__file__).resolve().parents[1] / "assets" / "embedded_cifar10.npz"

# Per-channel statistics of the training images (Krizhevsky 2009 release).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

_CIFAR = {
    "cifar10": {
        "title": "CIFAR-10",
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": "labels",
        "names": "label_names",
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
    },
    "cifar100": {
        "title": "CIFAR-100",
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": "fine_labels",
        "names": "fine_label_names",
        "mean": CIFAR100_MEAN,
        "std": CIFAR100_STD,
    },
}
_NAMED = ("embedded", "cifar10", "cifar100")
_JPEG_SUFFIXES = (".jpg", ".jpeg")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_CACHE_VERSION = 2  # 2: a content digest, checked on read


class DataError(InputError):
    """A bad dataset name or missing files; the one-line message names the problem and the fix."""


@dataclass(frozen=True, eq=False)
class DataTensors:
    """One split of a dataset, held whole in memory.

    Attributes:
        x: (N, C, H, W) ``uint8`` for image datasets, or the user's own tensor.
        y: (N,) ``int64`` class labels.
        mean, std: per-channel constants used by `normalized` (on ``x / 255``);
            ``None`` means ``x`` is used as given.
        info: JSON-able description (dataset, split, n, subset rule, seed, ...),
            recorded wherever results are stored.
        classes: class names when known.
    """

    x: torch.Tensor
    y: torch.Tensor
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    info: dict[str, Any]
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise DataError(
                f"{self.info.get('dataset', 'dataset')}: {self.x.shape[0]} inputs but "
                f"{self.y.shape[0]} labels; return as many labels as samples"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        name = self.info.get("dataset", "data")
        split = self.info.get("split")
        shape = "x".join(map(str, self.x.shape[1:]))
        return (
            f"DataTensors({name}{f' {split}' if split else ''}: {len(self)} samples of "
            f"{shape} {str(self.x.dtype).removeprefix('torch.')}, {self.num_classes} classes"
            f"{', normalized on use' if self.mean is not None else ''})"
        )

    @property
    def num_classes(self) -> int:
        """Number of classes: the class names when known, else ``max(y) + 1``."""
        if self.classes:
            return len(self.classes)
        return int(self.y.max()) + 1 if len(self) else 0

    @property
    def in_channels(self) -> int:
        return int(self.x.shape[1]) if self.x.dim() >= 2 else 1

    def normalized(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """All inputs as one float tensor on `device`, ready for the model: (N, C, H, W)."""
        return normalize(self.x.to(device), self.mean, self.std, dtype=dtype)

    def fingerprint(self) -> str:
        """sha256 of the samples' content (inputs, labels, normalization): two splits with
        the same fingerprint give the same losses. Hashes the stored bytes once (about
        0.1 s for 10,000 CIFAR images)."""
        h = hashlib.sha256()
        for t in (self.x, self.y):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().data if t.numel() else b"")
        h.update(repr((self.mean, self.std)).encode())
        return h.hexdigest()

    def to(self, device: torch.device | str | None) -> DataTensors:
        """The same split with `x` and `y` on `device` (e.g. the GPU, once, for many uses)."""
        return dataclasses.replace(self, x=self.x.to(device), y=self.y.to(device))


def as_tensors(
    data: Any, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model-ready ``(x, y)`` from a `DataTensors` (normalized here) or an ``(x, y)`` pair."""
    if isinstance(data, DataTensors):
        return data.normalized(device), data.y.to(device)
    if (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        check_sizes(data[0], data[1], what="data")
        return data[0].to(device), data[1].to(device)
    raise TypeError(
        "data must be a DataTensors (landscape.load_split) or a tuple (x, y) of tensors, "
        f"got {type(data).__name__}"
    )


def normalize(
    x: torch.Tensor,
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``(x / 255 - mean) / std`` per channel for uint8 images; ``x`` as given when mean is None.

    The one preprocessing step shared by training and evaluation. x: (B, C, H, W).
    """
    if mean is None or std is None:
        return x.to(dtype)
    out = x.to(torch.float32, copy=True).div_(255.0)  # never in place on the caller's x
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return out.sub_(m).div_(s).to(dtype)


# ------------------------------------------------------------------ public loading


def load_split(
    dataset: str,
    split: str,
    *,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    samples: int | None = None,
    subset: str = "first",
    seed: int = 0,
) -> DataTensors:
    """Load one split of `dataset` as whole tensors (see the module docstring for names).

    Args:
        dataset: ``embedded`` | ``cifar10`` | ``cifar100`` | ``imagefolder:DIR`` |
            ``module.path:function``.
        split: ``"train"`` or ``"test"``.
        data_root: folder holding (or receiving) the CIFAR files; default ``./data``.
        download: let torchvision fetch CIFAR files that are missing (needs internet).
        samples: keep only N samples (all when None), chosen by `subset`.
        subset: ``"first"`` (the first N) or ``"stratified"`` (seeded, class-balanced).
        seed: seed of the stratified subset.

    Returns:
        The split as whole tensors, its choice of samples recorded in ``info``.

    Raises:
        DataError: unknown name, bad split or subset, missing files, bad user data.
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")
    if subset not in SUBSETS:
        raise DataError(f"subset must be one of {SUBSETS}, got {subset!r}", arg="subset")
    kind, arg = _parse(dataset)
    if kind == "embedded":
        data = _load_embedded(split)
    elif kind in _CIFAR:
        data = _load_cifar(kind, split, data_root=data_root, download=download)
    elif kind == "imagefolder":
        data = _load_imagefolder(arg, split)
    else:
        data = _load_user(arg, split)
    return take_subset(data, samples=samples, subset=subset, seed=seed)


def num_classes(dataset: str, *, data_root: str | os.PathLike | None = None) -> int:
    """Number of classes of `dataset` (read from its training split where it must be)."""
    kind, arg = _parse(dataset)
    if kind in ("embedded", "cifar10"):
        return 10
    if kind == "cifar100":
        return 100
    if kind == "imagefolder":
        return len(_find_classes(_split_dir(arg, "train")))
    return load_split(dataset, "train", data_root=data_root).num_classes


def in_channels(dataset: str, *, data_root: str | os.PathLike | None = None) -> int:
    """Input channels of `dataset` (3 for every image dataset, decoded as RGB)."""
    kind, _ = _parse(dataset)
    if kind != "module":
        return 3
    return load_split(dataset, "train", data_root=data_root).in_channels


def subset_indices(y: torch.Tensor, n: int, rule: str, *, seed: int = 0) -> torch.Tensor:
    """Indices (sorted, int64) of `n` samples of labels `y` (N,) by `rule`.

    ``"first"``: ``0..n-1``. ``"stratified"``: per class ``c``, ``floor(n * N_c / N)``
    samples plus one for the classes with the largest remainders (ties: lower
    class first), drawn with ``torch.randperm`` from a generator seeded with `seed`,
    class by class in increasing order.
    """
    total = int(y.shape[0])
    if not 0 <= seed < 2**63:
        raise DataError(f"--data-seed must be between 0 and 2**63 - 1; got {seed}")
    if not 0 < n <= total:
        raise DataError(f"samples must be in 1..{total}, got {n}")
    if rule == "first":
        return torch.arange(n)
    if rule != "stratified":
        raise DataError(f"subset must be one of {SUBSETS}, got {rule!r}", arg="subset")
    labels, counts = torch.unique(y.cpu(), return_counts=True)
    exact = counts.double() * n / total
    quota = exact.floor().long()
    remainder = exact - quota
    # Largest remainders get the leftover samples; stable sort keeps lower classes first.
    order = torch.sort(-remainder, stable=True).indices
    quota[order[: n - int(quota.sum())]] += 1
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for label, q in zip(labels.tolist(), quota.tolist(), strict=True):
        idx = torch.nonzero(y.cpu() == label).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:q]])
    return torch.sort(torch.cat(chosen)).values


# ------------------------------------------------------------------ helpers


def is_plugin(dataset: Any) -> bool:
    """True for a ``module.path:function`` dataset: loading it imports and runs user code."""
    try:
        return _parse(dataset)[0] == "module"
    except DataError:
        return False


def check_sizes(x: torch.Tensor, y: torch.Tensor, *, what: str) -> None:
    """One label per input, and at least one sample."""
    if x.dim() == 0 or y.dim() == 0 or len(x) != len(y):
        raise DataError(
            f"{what} has {len(x) if x.dim() else 'scalar'} inputs but "
            f"{len(y) if y.dim() else 'scalar'} labels; give one label per input"
        )
    if not len(y):
        raise DataError(f"{what} has no samples; give at least one (x, y) sample")


def check_model_fits(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, what: str) -> int:
    """Run `model` (a private eval copy) on one input of `what`; return its class count.

    Inputs the model rejects, outputs that are not ``(batch, classes)`` and labels outside
    ``0 .. classes - 1`` are bad input, named in one line, before anything is computed.
    """
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{what} has negative labels ({int(y.min())}); labels are 0 .. C-1")
    probe = copy.deepcopy(model).eval()
    try:
        with torch.inference_mode():
            out = probe(x[:1])
    except RuntimeError as e:  # torch's shape and dtype mismatches (anything else: a bug)
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise DataError(
            f"the model cannot take the inputs of {what}: shape {tuple(x.shape[1:])}, "
            f"{x.dtype} ({reason}); give inputs the model expects, e.g. (N, 3, 32, 32) images"
        ) from e
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise DataError(
            f"the model returns {shape} for one input of {what}, not (1, classes) logits; "
            "use a classifier"
        )
    if not out.is_floating_point():
        raise DataError(
            f"the model returns {out.dtype} logits for {what}; return float logits (no "
            ".round(), .long() or .argmax() in forward): the loss needs them"
        )
    n_out = int(out.shape[-1])
    top = int(y.max()) if len(y) else -1
    if top >= n_out:
        raise DataError(
            f"labels of {what} go up to {top} but the model has {n_out} outputs; use a "
            "checkpoint trained on this dataset (or model_kwargs num_classes)"
        )
    return n_out


def _parse(dataset: str) -> tuple[str, str]:
    if not isinstance(dataset, str) or not dataset:
        raise DataError(f"dataset must be a non-empty name, got {dataset!r}")
    if dataset in _NAMED:
        return dataset, ""
    if dataset.startswith("imagefolder:"):
        folder = dataset[len("imagefolder:") :]
        if not folder:
            raise DataError("imagefolder needs a folder: dataset imagefolder:DIR", arg="dataset")
        return "imagefolder", folder
    if ":" in dataset:
        return "module", dataset
    raise DataError(
        f"unknown dataset {dataset!r}; use one of {', '.join(_NAMED)}, "
        "imagefolder:DIR or module.path:function"
    )


def take_subset(data: DataTensors, *, samples: int | None, subset: str, seed: int) -> DataTensors:
    """`data` cut to `samples` by the `subset` rule (all when None), recorded in its info."""
    info = dict(data.info)
    info.update(n_total=len(data), samples=samples, subset=subset if samples else None)
    info["seed"] = seed if samples and subset == "stratified" else None
    if samples is None:
        info["n"] = len(data)
        return dataclasses.replace(data, info=info)
    if samples > len(data):
        raise DataError(
            f"samples {samples} exceeds the {len(data)} samples of {info['dataset']} "
            f"{info['split']}; use at most {len(data)} or omit samples",
            arg="samples",
        )
    idx = subset_indices(data.y, samples, subset, seed=seed)
    info["n"] = samples
    return dataclasses.replace(data, x=data.x[idx], y=data.y[idx], info=info)


def _interleave(y: torch.Tensor) -> torch.Tensor:
    """Order of class-sorted labels (N,) that takes one sample of each class in turn."""
    rank = torch.zeros_like(y)
    for label in torch.unique(y).tolist():
        mask = y == label
        rank[mask] = torch.arange(int(mask.sum()))
    return torch.sort(rank * (int(y.max()) + 1) + y, stable=True).indices


def _decode_jpegs(blobs: list[bytes]) -> list[torch.Tensor]:
    """Decode JPEG bytes to (3, H, W) uint8 tensors; torchvision when it can, else PIL."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg

        tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
        return list(decode_jpeg(tensors, mode=ImageReadMode.RGB))
    except (ImportError, RuntimeError):
        return [_decode_pil(b) for b in blobs]


@contextlib.contextmanager
def _quiet_decoders() -> Iterator[None]:
    """Silence torchvision's notice that its decoders move to TorchCodec (torchvision 0.29).

    Entered once around all decoding threads: ``catch_warnings`` is not thread-safe.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        yield


def _decode_pil(blob: bytes) -> torch.Tensor:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        arr = np.array(im.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _decode_many(blobs: list[bytes], names: list[str], *, where: str) -> torch.Tensor:
    """Decode images in parallel chunks and stack them: (N, 3, H, W) uint8."""
    from PIL import Image

    jpeg = [n.lower().endswith(_JPEG_SUFFIXES) for n in names]
    chunk = 2048
    starts = range(0, len(blobs), chunk)

    def work(start: int) -> list[torch.Tensor]:
        part = blobs[start : start + chunk]
        if all(jpeg[start : start + chunk]):
            return _decode_jpegs(part)
        out = []
        for i, (b, is_jpeg) in enumerate(zip(part, jpeg[start : start + chunk], strict=True)):
            try:
                out.append(_decode_jpegs([b])[0] if is_jpeg else _decode_pil(b))
            except Image.DecompressionBombError as e:  # a huge image, not an error of ours
                raise DataError(
                    f"image {names[start + i]} in {where} is too large to decode ({e}); "
                    "resize it to the size of the others"
                ) from None
        return out

    workers = max(1, min(8, os.cpu_count() or 1, len(starts)))
    with _quiet_decoders(), concurrent.futures.ThreadPoolExecutor(workers) as pool:
        images = [im for part in pool.map(work, starts) for im in part]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        a, b = sorted(shapes)[:2]
        raise DataError(
            f"images in {where} have different sizes ({a[2]}x{a[1]} and {b[2]}x{b[1]}); "
            "resize them to one size"
        )
    if not images:
        raise DataError(f"no images found in {where}; check the folder")
    return torch.stack(images)  # (N, 3, H, W)


# ------------------------------------------------------------------ embedded


def _load_embedded(split: str) -> DataTensors:
    if not EMBEDDED_ASSET.is_file():
        raise DataError(
            f"the embedded dataset {EMBEDDED_ASSET} is missing; reinstall the package "
            "or rebuild it with scripts/make_embedded_subset.py"
        )
    with np.load(EMBEDDED_ASSET, allow_pickle=False) as z:
        raw = z[f"{split}_bytes"].tobytes()
        offsets = z[f"{split}_offsets"].tolist()
        labels = torch.from_numpy(z[f"{split}_labels"].astype(np.int64))
        classes = tuple(str(c) for c in z["classes"])
    blobs = [raw[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    with _quiet_decoders():
        x = torch.stack(_decode_jpegs(blobs))  # (N, 3, 32, 32)
    order = _interleave(labels)
    info = {
        "dataset": "embedded",
        "split": split,
        "source": "CIFAR-10 subset shipped in landscape/assets/embedded_cifar10.npz",
        "classes": list(classes),
        "mean": list(CIFAR10_MEAN),
        "std": list(CIFAR10_STD),
    }
    return DataTensors(x[order], labels[order], CIFAR10_MEAN, CIFAR10_STD, info, classes)


# ------------------------------------------------------------------ CIFAR


def _load_cifar(
    name: str, split: str, *, data_root: str | os.PathLike | None, download: bool
) -> DataTensors:
    spec = _CIFAR[name]
    root = Path(data_root if data_root is not None else DEFAULT_DATA_ROOT)
    folder = root / spec["folder"]
    files = [folder / f for f in spec[split] + [spec["meta"]]]
    if not all(f.is_file() for f in files):
        if not download:
            raise DataError(
                f"{spec['title']} not found in {folder}; set download to fetch it (needs "
                f"internet), or data_root to the folder that holds {spec['folder']}",
                arg=("download", "data_root"),
            )
        _download_cifar(name, root)
    xs, ys = [], []
    for f in files[:-1]:
        entry = _unpickle(f)
        xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(entry[spec["labels"]], dtype=np.int64))
    classes = tuple(str(c) for c in _unpickle(files[-1])[spec["names"]])
    info = {
        "dataset": name,
        "split": split,
        "root": str(root.resolve()),
        "classes": list(classes),
        "mean": list(spec["mean"]),
        "std": list(spec["std"]),
    }
    x = torch.from_numpy(np.concatenate(xs))  # (N, 3, 32, 32)
    y = torch.from_numpy(np.concatenate(ys))
    return DataTensors(x, y, spec["mean"], spec["std"], info, classes)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numpy arrays only: a CIFAR file can run no code."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, not only to arrays")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            # The official release is a pickle of numpy arrays and lists (torchvision reads
            # it the same way); latin1 maps its Python 2 byte strings to str.
            return _ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, OSError) as e:
        raise DataError(
            f"cannot read {path} ({type(e).__name__}: {e}); delete it and set download",
            arg="download",
        ) from e


def _download_cifar(name: str, root: Path) -> None:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        cls(str(root), train=True, download=True)  # one archive holds both splits
    except (OSError, RuntimeError) as e:
        raise DataError(
            f"downloading {_CIFAR[name]['title']} into {root} failed ({e}); check the internet "
            "connection or copy the files there by hand"
        ) from e


# ------------------------------------------------------------------ ImageFolder


def _split_dir(folder: str, split: str) -> Path:
    path = Path(folder).expanduser() / split
    if not path.is_dir():
        raise DataError(
            f"imagefolder: {path} is not a folder; the tree must be DIR/train/<class>/*.jpg "
            "and DIR/test/<class>/*.jpg"
        )
    return path


def _find_classes(path: Path) -> list[str]:
    classes = sorted(e.name for e in os.scandir(path) if e.is_dir() and e.name[0] != ".")
    if not classes:
        raise DataError(f"imagefolder: {path} has no class folders; expected {path}/<class>/*.jpg")
    return classes


def _scan(path: Path) -> tuple[list[str], list[tuple[str, int]], str]:
    """Class names, (relative file, label) in class-sorted order, and a key of the file set."""
    classes = _find_classes(path)
    files, h = [], hashlib.sha256()
    for label, cls in enumerate(classes):
        names = []
        for e in os.scandir(path / cls):
            if e.is_file() and e.name.lower().endswith(_IMAGE_SUFFIXES):
                st = e.stat()
                names.append((e.name, st.st_size, st.st_mtime_ns))
        for name, size, mtime in sorted(names):
            files.append((f"{cls}/{name}", label))
            h.update(f"{cls}/{name}\t{size}\t{mtime}\n".encode())
    return classes, files, h.hexdigest()[:20]


def _cache_dir(root: Path) -> Path | None:
    """Where the decoded tensors of the image folder `root` are cached, or None for no cache.

    ``$LANDSCAPE_CACHE`` names the folder (``off``: no cache); else the user cache
    directory (``$XDG_CACHE_HOME`` or ``~/.cache``)/landscape. Never inside the data
    folder: a user's dataset is read, not written.
    """
    setting = os.environ.get("LANDSCAPE_CACHE")
    if setting is not None and setting.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    base = (
        Path(setting).expanduser()
        if setting
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "landscape"
    )
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return base / "imagefolder" / f"{root.name}-{tag}"


def _content_digest(x: torch.Tensor, y: torch.Tensor) -> str:
    """A cache entry's content, checked on every read: a damaged or edited cache (zeroed
    bytes keep their shape) is decoded again instead of being used."""
    h = hashlib.sha256(x.contiguous().numpy().tobytes())
    h.update(y.contiguous().numpy().tobytes())
    return h.hexdigest()


def _read_cache(root: Path, split: str, key: str) -> dict | None:
    folder = _cache_dir(root)
    path = folder / f"{split}-{key}.pt" if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError):
        return None  # a damaged cache is decoded again
    ok = (
        isinstance(obj, dict)
        and obj.get("version") == _CACHE_VERSION
        and isinstance(obj.get("x"), torch.Tensor)
        and isinstance(obj.get("y"), torch.Tensor)
        and obj.get("sha256") == _content_digest(obj["x"], obj["y"])
    )
    return obj if ok else None


def _write_cache(root: Path, split: str, key: str, obj: dict) -> None:
    from landscape.models.checkpoint import atomic_torch_save

    folder = _cache_dir(root)
    if folder is None:
        return
    path = folder / f"{split}-{key}.pt"
    try:
        atomic_torch_save({**obj, "sha256": _content_digest(obj["x"], obj["y"])}, path)
    except OSError:
        return  # no cache where it cannot be written: decoded again next time
    for old in folder.glob(f"{split}-*.pt"):  # entries of an older file set
        if old.name != path.name:
            old.unlink(missing_ok=True)


def _imagefolder_split(folder: str, split: str) -> dict:
    """``{"x", "y", "classes", "key", "mean", "std"}`` of one split, from the cache when current."""
    path = _split_dir(folder, split)
    classes, files, key = _scan(path)
    root = path.parent.resolve()
    cached = _read_cache(root, split, key)
    if cached is not None:
        return cached
    if not files:
        raise DataError(f"imagefolder: no images in {path}/<class>/; expected .jpg or .png files")

    def read(rel: str) -> bytes:
        return (path / rel).read_bytes()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        blobs = list(pool.map(read, [rel for rel, _ in files]))
    x = _decode_many(blobs, [rel for rel, _ in files], where=str(path))
    y = torch.tensor([label for _, label in files], dtype=torch.int64)
    order = _interleave(y)
    x, y = x[order], y[order]
    xf = x.to(torch.float64) / 255.0
    obj = {
        "version": _CACHE_VERSION,
        "x": x,
        "y": y,
        "classes": classes,
        "key": key,
        "mean": xf.mean(dim=(0, 2, 3)).tolist(),
        "std": xf.std(dim=(0, 2, 3)).tolist(),
    }
    del xf
    _write_cache(root, split, key, obj)
    return obj


def _load_imagefolder(folder: str, split: str) -> DataTensors:
    obj = _imagefolder_split(folder, split)
    has_train = (Path(folder).expanduser() / "train").is_dir()
    stats = obj if split == "train" or not has_train else _imagefolder_split(folder, "train")
    mean = tuple(float(v) for v in stats["mean"])
    std = tuple(float(v) for v in stats["std"])
    classes = tuple(obj["classes"])
    info = {
        "dataset": f"imagefolder:{folder}",
        "split": split,
        "root": str(Path(folder).expanduser().resolve()),
        "files_key": obj["key"],
        "classes": list(classes),
        "mean": list(mean),
        "std": list(std),
        "normalization": f"mean/std of {'train' if has_train else split}/",
    }
    return DataTensors(obj["x"], obj["y"], mean, std, info, classes)


# ------------------------------------------------------------------ user function


def _import_function(spec: str):
    try:
        return models.import_function(spec, f"dataset {spec!r}")
    except models.ModelError as e:
        raise DataError(str(e)) from e


def _as_tensor(value: Any, what: str, spec: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray | int | float | list | tuple):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise DataError(
                f"dataset {spec!r} returned {what} of dtype {array.dtype}; return numbers "
                "(labels as integer class indices)"
            )
        return torch.as_tensor(array)
    raise DataError(
        f"dataset {spec!r} returned {what} of type {type(value).__name__}; return tensors "
        "(e.g. add torchvision.transforms.PILToTensor to the Dataset)"
    )


def _load_user(spec: str, split: str) -> DataTensors:
    fn = _import_function(spec)
    result = fn(split)
    classes: tuple[str, ...] = tuple(str(c) for c in getattr(result, "classes", ()) or ())
    if isinstance(result, tuple | list) and len(result) == 2:
        x, y = (_as_tensor(v, w, spec) for v, w in zip(result, ("x", "y"), strict=True))
    elif isinstance(result, torch.utils.data.TensorDataset) and len(result.tensors) == 2:
        x, y = (t.detach().cpu() for t in result.tensors)
    elif hasattr(result, "__getitem__") and hasattr(result, "__len__"):
        pairs = [result[i] for i in range(len(result))]
        if not pairs:
            raise DataError(f"dataset {spec!r} returned an empty {split} split")
        if not all(isinstance(p, tuple | list) and len(p) >= 2 for p in pairs):
            raise DataError(
                f"dataset {spec!r}: item 0 is a {type(pairs[0]).__name__}; each item must be "
                "an (x, y) pair"
            )
        x = torch.stack([_as_tensor(p[0], "x", spec) for p in pairs])
        y = torch.stack([_as_tensor(p[1], "y", spec).reshape(()) for p in pairs])
    else:
        raise DataError(
            f"dataset {spec!r} returned {type(result).__name__}; return a torch Dataset of "
            "(x, y) pairs or a tuple (x, y) of tensors"
        )
    if len(y) == 0:
        raise DataError(f"dataset {spec!r} returned an empty {split} split; return some samples")
    if y.dim() == 1 and not y.is_floating_point() and len(y) and int(y.min()) < 0:
        raise DataError(
            f"dataset {spec!r}: {split} labels go down to {int(y.min())}; labels are class "
            "indices 0 .. C-1"
        )
    if y.is_floating_point() or y.dim() != 1:
        raise DataError(
            f"dataset {spec!r}: labels must be a 1-D integer tensor, got {y.dtype} "
            f"of shape {tuple(y.shape)}"
        )
    info = {"dataset": spec, "split": split, "classes": list(classes) or None}
    return DataTensors(x, y.to(torch.int64), None, None, info, classes)
