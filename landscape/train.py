"""``python -m landscape.train``: train a network with a checkpoint per epoch.

    python -m landscape.train --model resnet56 --dataset cifar10 --epochs 164 --out runs/resnet56

Rerunning the same command resumes from the last checkpoint; different
settings on an existing ``--out`` are refused (exit 2, naming the setting).
Exit codes: 0 done; 2 bad input; 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import logging
import sys

from landscape.cli import options
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.training import TrainConfig, run_training

__all__ = ["COMMAND_ONLY", "add_arguments", "build_parser", "config_from_args", "main"]

_DEFAULTS = TrainConfig()
# The flags of `landscape train` that are not settings of the run (`TrainConfig`).
COMMAND_ONLY = ("device", "progress", "help")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``landscape train``: one per `TrainConfig` field, and the command's own."""
    for title in ("data", "optimization", "augmentation (image datasets only)", "run"):
        parser.add_argument_group(title)  # in this order in --help
    options.add_fields(parser, TrainConfig)
    options.add_data_arguments(parser)
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available) | cpu | cuda:N"
    )
    run = options.option_group(parser, "run")
    run.add_argument(
        "--quiet", "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="landscape train",
        description="Train a network, saving a checkpoint after every epoch. Rerun the "
        "same command to resume.",
    )
    add_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    out = args.out or f"runs/{args.model.replace(':', '_').replace('/', '_')}"
    return options.record_from_args(TrainConfig, args, out=out)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 bad input (one line on stderr); 130 interrupted (rerun resumes)."""
    return guarded(
        "landscape train",
        lambda: _run(build_parser().parse_args(argv)),
        kept="every finished epoch is saved - rerun the same command to resume from the last",
    )


def _run(args: argparse.Namespace) -> int:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("landscape.training.trainer")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    propagate, logger.propagate = logger.propagate, False  # one line per epoch, on stdout
    try:
        final = run_training(config_from_args(args), device=args.device, progress=args.progress)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    print(f"done: {final}")
    return 0


if __name__ == "__main__":
    exit_after(main())
