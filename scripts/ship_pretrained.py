"""Copy trained runs into the package as ``pretrained:NAME`` checkpoints.

    python scripts/ship_pretrained.py runs/resnet20 runs/plain20
    python scripts/ship_pretrained.py runs/connect/resnet20_seed1 --name resnet20_seed1

Keeps the weights, the model's name and arguments, the final metrics with the
per-epoch history, and the data description; drops optimizer, scheduler and RNG
state (resuming is what the run folder is for) and local paths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from landscape.models import load_checkpoint, save_checkpoint

ASSETS = Path(__file__).resolve().parents[1] / "landscape" / "assets" / "pretrained"


def ship(run: Path, name: str | None = None) -> Path:
    """`run`'s final.pt as ``pretrained:NAME`` (default: its network's name)."""
    loaded = load_checkpoint(run / "final.pt")
    raw = torch.load(run / "final.pt", weights_only=True)
    dataset = {k: v for k, v in loaded.dataset.items() if k not in ("root", "files_key")}
    if isinstance(dataset.get("test"), dict):
        dataset["test"] = {
            k: v for k, v in dataset["test"].items() if k not in ("root", "files_key")
        }
    # A local folder is the trainer's business: the published name of the CIFAR-10 tree.
    for part in (dataset, dataset.get("test"), raw.get("train_config", {})):
        if isinstance(part, dict) and str(part.get("dataset", "")).endswith("/cifar10"):
            part["dataset"] = "imagefolder:data/cifar10"
    metrics = {**loaded.metrics, "history": raw.get("history", [])}
    out = ASSETS / f"{name or loaded.model_name}.pt"
    save_checkpoint(
        out,
        loaded.model,
        epoch=loaded.epoch or 0,
        metrics=metrics,
        dataset=dataset,
        extra={
            "train_config": {
                k: v
                for k, v in raw.get("train_config", {}).items()
                if k not in ("out", "data_root")
            }
        },
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--name", help="the pretrained name of a single run (default: its network)")
    args = p.parse_args(argv)
    if args.name and len(args.runs) != 1:
        p.error("--name names one run")
    for run in args.runs:
        out = ship(run, args.name)
        print(f"{out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
