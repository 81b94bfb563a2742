"""Build ``landscape/assets/embedded_cifar10.npz``, the embedded default dataset.

Reads the CIFAR-10 JPEG archive (ImageFolder layout ``train/<class>/NNNN.jpg``,
``test/<class>/NNNN.jpg``) and keeps, for every class in sorted order, the
first 500 training and the first 100 test files by file name: 5,000 + 1,000
images, 500 / 100 per class. The JPEG bytes are stored unchanged (no
re-encoding), so the pixels equal those of the ImageFolder tree.

Usage:

    python scripts/make_embedded_subset.py [--archive PATH] [--out PATH]

The archive defaults to ``../shared/data/cifar10-jpeg.tar.gz`` relative to the
repository (development data; it is never read at run time).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
DEFAULT_OUT = REPO / "landscape" / "assets" / "embedded_cifar10.npz"
PER_CLASS = {"train": 500, "test": 100}


def collect(archive: Path) -> dict[str, dict[str, list[tuple[str, bytes]]]]:
    """``{split: {class: [(file name, jpeg bytes), ...]}}`` for every JPEG in the archive."""
    files: dict[str, dict[str, list[tuple[str, bytes]]]] = {s: {} for s in PER_CLASS}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 3 or parts[0] not in PER_CLASS:
                continue
            split, cls, name = parts
            if not name.lower().endswith((".jpg", ".jpeg")):
                continue
            data = tar.extractfile(member).read()
            files[split].setdefault(cls, []).append((name, data))
    return files


def build(archive: Path, out: Path) -> None:
    files = collect(archive)
    classes = sorted(files["train"])
    if sorted(files["test"]) != classes or len(classes) != 10:
        raise SystemExit(f"{archive}: expected the same 10 classes in train/ and test/")
    arrays: dict[str, np.ndarray] = {"classes": np.array(classes)}
    for split, n in PER_CLASS.items():
        blobs, labels = [], []
        for label, cls in enumerate(classes):
            chosen = sorted(files[split][cls])[:n]  # the first n by file name
            if len(chosen) < n:
                raise SystemExit(f"{archive}: {split}/{cls} has {len(chosen)} files, need {n}")
            blobs += [data for _, data in chosen]
            labels += [label] * n
        offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(b) for b in blobs])
        arrays[f"{split}_bytes"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"{split}_offsets"] = offsets
        arrays[f"{split}_labels"] = np.array(labels, dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    # JPEG headers repeat in every file, so deflate shrinks the bytes about 3x.
    np.savez_compressed(out, **arrays)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    sizes = ", ".join(f"{s} {len(arrays[f'{s}_labels'])}" for s in PER_CLASS)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {sizes}, sha256 {digest}...)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.archive.is_file():
        print(f"error: archive {args.archive} not found; pass --archive PATH", file=sys.stderr)
        return 2
    build(args.archive, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
