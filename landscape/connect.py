"""``python -m landscape.connect``: a low-loss curve between two minima (Garipov et al. 2018).

    python -m landscape.connect --ckpt a.pt --ckpt2 b.pt --out curve.pt --epochs 10

Trains the curve's bend points (`landscape.training.curve`; the curve file is written
after every epoch), then evaluates the loss along the curve into ``curve.h5`` and along
the straight line A -> B into ``curve_line.h5`` (`landscape.surface.curve`; 1-D surface
files, x = t) and prints the loss barrier of both with a paired bootstrap interval. With
``--plane N`` it then computes the 2-D surface on the plane through A, B and the bend into
``curve_plane.h5`` (`curve_plane`), the curve drawn on it by ``landscape plot`` and ``view``.
Rerunning the same command resumes whatever is unfinished; under ``torchrun`` (with the
curve trained) the ranks share the evaluation.
Exit codes: 0 done; 2 bad input; 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from landscape.analysis.connectivity import barrier_intervals
from landscape.cli import options
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.errors import InputError
from landscape.surface import distributed
from landscape.surface.curve import curve_plane, evaluate_curve, line_path, plane_path
from landscape.surface.evaluate import BN_MODES
from landscape.training.curve import CurveConfig, train_curve

__all__ = ["COMMAND_ONLY", "build_parser", "config_from_args", "main"]

# The flags of `landscape connect` that are not settings of the curve (`CurveConfig`): the
# evaluation's and the run's.
COMMAND_ONLY = (
    "points", "surface", "split", "bn", "bn_samples", "no_line", "plane", "overwrite",
    "device", "progress", "help",
)  # fmt: skip


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="landscape connect",
        description="Train a low-loss curve (Bezier or polygonal chain) between two trained "
        "networks, then evaluate the loss along it and along the straight line. Rerun the "
        "same command to resume.",
    )
    for title in ("curve", "data", "optimization", "evaluation", "run"):
        parser.add_argument_group(title)  # in this order in --help
    options.add_fields(parser, CurveConfig)
    options.add_data_arguments(parser)
    evaluation = options.option_group(parser, "evaluation")
    evaluation.add_argument(
        "--points",
        type=int,
        default=21,
        metavar="N",
        help="values of t on [0, 1] evaluated (0: train only)",
    )
    evaluation.add_argument(
        "--surface",
        metavar="FILE.h5",
        help="the curve's surface file (OUT with .h5 when absent); the line's gets _line",
    )
    evaluation.add_argument("--split", default="train,test", metavar="LIST", help="train, test")
    evaluation.add_argument(
        "--bn",
        default="recompute",
        choices=BN_MODES,
        help="recompute: BatchNorm statistics re-estimated at every t (Garipov's update_bn); "
        "eval: interpolated from A to B",
    )
    evaluation.add_argument(
        "--bn-samples",
        type=options.positive_int,
        default=2048,
        metavar="N",
        help="training images of --bn recompute",
    )
    evaluation.add_argument("--no-line", action="store_true", help="skip the straight line")
    evaluation.add_argument(
        "--plane",
        type=int,
        default=0,
        metavar="N",
        help="also the 2-D surface on the plane through A, B and the bend (one bend), N "
        "points per axis on -0.25..1.25, into SURFACE_plane.h5 (0: none)",
    )
    evaluation.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the surface files instead of resuming them (after training on)",
    )
    run = options.option_group(parser, "run")
    run.add_argument("--device", default="auto", help="auto (CUDA when available) | cpu | cuda:N")
    run.add_argument(
        "--quiet", "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> CurveConfig:
    options.check_suffix(args.out, (".pt",), "--out")
    return options.record_from_args(CurveConfig, args)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 bad input (one line on stderr); 130 interrupted (rerun resumes)."""
    return guarded(
        "landscape connect",
        lambda: _run(build_parser().parse_args(argv)),
        kept="every finished epoch and evaluated point is saved - rerun the same command to resume",
    )


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.points != 0 and args.points < 3:
        raise InputError(f"--points must be 0 (train only) or at least 3; got {args.points}")
    surface = Path(args.surface) if args.surface else Path(config.out).with_suffix(".h5")
    if args.plane != 0 and args.plane < 3:
        raise InputError(f"--plane must be 0 (no plane) or at least 3; got {args.plane}")
    if args.plane and config.bends != 1:
        raise InputError(
            f"--plane needs a curve of one bend (--bends 1): a curve of {config.bends} bends "
            "does not lie in a plane"
        )
    if args.points or args.plane:
        options.check_suffix(surface, (".h5",), "--surface")
    if distributed.launched():
        if args.plane:
            raise InputError(
                "--plane is computed in one process: drop it under torchrun, then rerun "
                "the command with --plane N without torchrun"
            )
        if not Path(config.out).is_file():
            raise InputError(
                f"under torchrun only the evaluation is shared: train the curve first "
                f"(landscape connect ... --out {config.out} --points 0, without torchrun)"
            )
    else:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("landscape.training.curve")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        propagate, logger.propagate = logger.propagate, False  # one line per epoch
        try:
            train_curve(config, device=args.device, progress=args.progress)
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate
        print(f"curve: {config.out}")
    if args.points:
        _evaluate(args, config, surface)
    if args.plane:
        curve_plane(config.out, plane_path(surface), points=args.plane, **_evaluation(args, config))
        print(f"plane: {plane_path(surface)} (landscape plot / view draw the curve on it)")
    return 0


def _evaluation(args: argparse.Namespace, config: CurveConfig) -> dict[str, Any]:
    """The settings the curve's evaluation and its plane share."""
    return {
        "split": args.split,
        "data": config.data,
        "bn": args.bn,
        "bn_samples": args.bn_samples,
        "device": args.device,
        "overwrite": args.overwrite,
        "progress": args.progress,
    }


def _evaluate(args: argparse.Namespace, config: CurveConfig, surface: Path) -> None:
    curve, line = evaluate_curve(
        config.out,
        out=surface,
        points=args.points,
        line=not args.no_line,
        **_evaluation(args, config),
    )
    if curve is None:  # a torchrun rank other than 0
        return
    split = curve.splits[0] if "train" not in curve.splits else "train"
    found = barrier_intervals(curve, line, split=split)
    print(f"surface: {surface}" + (f" (line: {line_path(surface)})" if line is not None else ""))
    print(f"{split} loss barrier: curve {found['curve']}")
    if line is not None:
        print(f"{split} loss barrier: straight line {found['line']}")
        print(f"line - curve: {found['line - curve']} (paired bootstrap, 95%)")


if __name__ == "__main__":
    exit_after(main())
