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
from landscape.cli.options import add_data_arguments
from landscape.cli.runner import ArgumentParser, guarded
from landscape.training import CHANNELS_LAST, SCHEDULES, TRAIN_PRECISIONS, TrainConfig, train

__all__ = ["add_arguments", "build_parser", "config_from_args", "main"]

_DEFAULTS = TrainConfig()


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.5,0.75, got {text!r}") from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``landscape train``; defaults are those of `TrainConfig`."""
    d = _DEFAULTS
    parser.add_argument("--model", default=d.model, help="network name or module.path:function")
    parser.add_argument(
        "--model-kwargs",
        type=options.json_object,
        default={},
        metavar="JSON",
        help="builder arguments",
    )
    parser.add_argument("--out", default=None, help="output folder (default runs/MODEL)")
    parser.add_argument(
        "--device", default="auto", help="auto (default: CUDA when available) | cpu | cuda:N"
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--test-samples",
        type=int,
        default=None,
        metavar="N",
        help="test samples evaluated per epoch (default all); --samples limits the train split",
    )
    opt = parser.add_argument_group("optimization")
    opt.add_argument(
        "--epochs", type=int, default=d.epochs, help=f"default {d.epochs}, as He et al. 2015"
    )
    opt.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="samples per step",
    )
    opt.add_argument(
        "--lr",
        type=float,
        default=d.lr,
        help="base (onecycle: peak) learning rate",
    )
    opt.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum")
    opt.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    opt.add_argument(
        "--weight-decay",
        type=float,
        default=d.weight_decay,
        help="L2 on every parameter",
    )
    opt.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=d.schedule,
        help="step (default): x gamma at the milestones; cosine; onecycle; constant",
    )
    opt.add_argument(
        "--milestones",
        type=_fractions,
        default=d.milestones,
        metavar="F,F",
        help="step schedule: fractions of the epochs where lr is multiplied by --gamma "
        "(default 0.5,0.75)",
    )
    opt.add_argument("--gamma", type=float, default=d.gamma, help="step schedule factor")
    opt.add_argument(
        "--warmup-epochs",
        type=float,
        default=d.warmup_epochs,
        help="linear warm-up epochs (not onecycle)",
    )
    opt.add_argument(
        "--onecycle-pct",
        type=float,
        default=d.onecycle_pct,
        help="onecycle: rising fraction",
    )
    opt.add_argument(
        "--onecycle-div",
        type=float,
        default=d.onecycle_div,
        help="onecycle: starting lr = lr / DIV",
    )
    opt.add_argument(
        "--label-smoothing",
        type=float,
        default=d.label_smoothing,
        help="of the training loss",
    )
    opt.add_argument(
        "--seed",
        type=options.seed,
        default=d.seed,
        help="seed of init, shuffling, augmentation",
    )
    aug = parser.add_argument_group("augmentation (image datasets only)")
    aug.add_argument(
        "--no-augment", dest="augment", action="store_false", help="no random crops or flips"
    )
    aug.add_argument(
        "--crop-padding",
        type=int,
        default=d.crop_padding,
        help="zero padding of the random crops",
    )
    aug.add_argument(
        "--no-flip", dest="flip", action="store_false", help="no random horizontal flips"
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--save-every",
        type=int,
        default=d.save_every,
        metavar="K",
        help="keep every K-th epoch checkpoint",
    )
    run.add_argument(
        "--eval-batch-size",
        type=int,
        default=d.eval_batch_size,
        help="samples per forward pass",
    )
    run.add_argument(
        "--precision",
        choices=TRAIN_PRECISIONS,
        default=d.precision,
        help="auto (default): bf16 autocast on a GPU and on a CPU with AMX, else fp32",
    )
    run.add_argument(
        "--channels-last",
        choices=CHANNELS_LAST,
        default=d.channels_last,
        help="memory format (auto, the default: on; measured faster on GPU and CPU)",
    )
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


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
    return TrainConfig(**options.fields_from_args(TrainConfig, args, out=out))


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
        final = train(config_from_args(args), device=args.device, progress=args.progress)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    print(f"done: {final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
