"""``python -m landscape.compute``: a 1-D or 2-D loss surface around a trained model.

Exit codes: 0 done; 2 bad input (one line on stderr); 130 interrupted (the file
is consistent and a rerun resumes it). Started by ``torchrun``, the ranks share
the grid and rank 0 writes the file (`landscape.surface.distributed`, docs/distributed.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from landscape.cli import options
from landscape.cli.options import add_data_arguments, add_model_arguments
from landscape.cli.runner import RESUMABLE, ArgumentParser, guarded
from landscape.core.checkpoints import resolve_checkpoint
from landscape.core.errors import InputError
from landscape.core.files import check_output
from landscape.io.surface_file import SURFACE_FORMAT
from landscape.surface import distributed
from landscape.surface.config import SurfaceConfig
from landscape.surface.directions import IGNORES, NORMS
from landscape.surface.engine import run, run_seeds, seed_paths
from landscape.surface.evaluate import BN_MODES, EVAL_PRECISIONS, LOSSES, STRATEGIES

__all__ = ["build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="landscape compute",
        description="Compute f(alpha, beta) = L(theta* + alpha*dx + beta*dy) on a grid "
        "and store it in an HDF5 surface file (rerun with the same --out to resume).",
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--ckpt",
        required=True,
        metavar="PATH",
        help="trained weights: a checkpoint, a bare state_dict, or pretrained:NAME",
    )
    add_model_arguments(m)
    add_data_arguments(p)
    p.add_argument("--split", default="train", metavar="LIST", help="train, test or train,test")
    g = p.add_argument_group("grid and directions")
    g.add_argument("--x", default="-1:1:51", metavar="MIN:MAX:NUM", help="alpha grid (-1:1:51)")
    g.add_argument("--y", default=None, metavar="MIN:MAX:NUM", help="beta grid; absent: 1-D")
    g.add_argument("--norm", default="filter", choices=NORMS, help="direction normalization")
    g.add_argument(
        "--ignore",
        default="biasbn",
        choices=IGNORES,
        help="biasbn: 1-D parameters get a zero direction (default)",
    )
    g.add_argument("--seed", type=options.seed, default=0, help="direction seed")
    g.add_argument("--orthogonalize", action="store_true", help="make dy orthogonal to dx")
    g.add_argument("--ckpt2", metavar="PATH", help="interpolate: alpha=0 is --ckpt, alpha=1 this")
    g.add_argument("--ckpt3", metavar="PATH", help="with --ckpt2: the plane through three models")
    g.add_argument(
        "--directions", metavar="FILE", help="take directions from a surface or directions file"
    )
    e = p.add_argument_group("evaluation")
    e.add_argument(
        "--bn",
        default="eval",
        choices=BN_MODES,
        help="eval: the checkpoint's running statistics (default); recompute: "
        "re-estimate them at every point from --bn-samples training images",
    )
    e.add_argument("--bn-samples", type=int, default=2048, metavar="N")
    e.add_argument("--loss", default="ce", choices=LOSSES)
    e.add_argument("--precision", default="fp32", choices=EVAL_PRECISIONS)
    e.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="INT",
        help="samples per forward pass (automatic)",
    )
    e.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="K",
        help="grid points per pass on the GPU (automatic)",
    )
    e.add_argument(
        "--strategy",
        default="auto",
        choices=STRATEGIES,
        help="evaluation engine (auto: vmap on GPU, folded BN on CPU)",
    )
    e.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="PATH", help="the surface file (.h5)")
    o.add_argument(
        "--seeds",
        metavar="LIST",
        help="one surface per direction seed (e.g. 0,1,2), the data read once: OUT_seed0.h5, "
        "... (landscape metrics groups them into intervals); rerun to resume all",
    )
    o.add_argument(
        "--per-sample",
        choices=("auto", "on", "off"),
        default="auto",
        help="keep every sample's loss at every point, for bootstrap intervals in landscape "
        "metrics: auto when they take at most 64 MB",
    )
    o.add_argument("--label", default=None, help="a name for figures (default: the model name)")
    o.add_argument("--overwrite", action="store_true", help="replace --out instead of resuming")
    o.add_argument("--plot", action="store_true", help="render the default figures when done")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.add_argument(
        "--dist-timeout",
        type=options.positive_float,
        default=distributed.DEFAULT_TIMEOUT_MIN,
        metavar="MIN",
        help="under torchrun: minutes a rank waits for another before the run stops "
        f"(resumable) as if interrupted ({distributed.DEFAULT_TIMEOUT_MIN:g})",
    )
    return p


def config_from_args(args: argparse.Namespace) -> SurfaceConfig:
    split = tuple(s.strip() for s in args.split.split(",") if s.strip())
    return SurfaceConfig(**options.fields_from_args(SurfaceConfig, args, split=split))


def _seeds(text: str) -> list[int]:
    try:
        seeds = [options.seed(s.strip()) for s in text.split(",") if s.strip()]
    except argparse.ArgumentTypeError as e:
        raise InputError(f"--seeds takes integers like 0,1,2: {e}") from None
    if len(seeds) < 1 or len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds must list distinct seeds, e.g. 0,1,2; got {text!r}")
    return seeds


def main(argv: Sequence[str] | None = None) -> int:
    code = guarded(
        "landscape compute", lambda: _main(build_parser().parse_args(argv)), kept=RESUMABLE
    )
    if distributed.launched():
        _end_rank(code)
    return code


def _end_rank(code: int) -> NoReturn:
    """End a torchrun rank with `code` now, without the interpreter's teardown.

    gloo's worker threads let go of a finished collective's tensors only after the
    collective has returned, and letting go takes the GIL. When that comes after the
    interpreter has begun to finalize (a busy machine, a rank exiting right after a
    collective), CPython ends the thread inside a C++ destructor and the rank aborts
    (``terminate called without an active exception``, exit code -6).
    ``destroy_process_group`` does not join those threads (torch 2.14), so no teardown
    order avoids it; not finalizing does. Every file is closed where it is written, so
    only what was printed is left to flush; peers see the connection close.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _main(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if not str(args.out).endswith((".h5", ".hdf5")):
        raise InputError(f"--out must end in .h5 or .hdf5; got {args.out!r}")
    # --overwrite replaces a surface, never one of the command's inputs.
    inputs = [resolve_checkpoint(c) for c in (config.ckpt, config.ckpt2, config.ckpt3) if c]
    seeds = _seeds(args.seeds) if args.seeds else None
    outs = seed_paths(args.out, seeds) if seeds else [Path(args.out)]
    for out in outs:
        check_output(
            out, SURFACE_FORMAT, overwrite=args.overwrite, inputs=[*inputs, config.directions]
        )
    if seeds:
        if distributed.launched():
            raise InputError("--seeds runs in one process; under torchrun give one --seed per run")
        if config.directions or config.ckpt2:
            raise InputError("--seeds draws random directions; drop --directions / --ckpt2")
        surfaces = run_seeds(
            config, seeds, args.out, overwrite=args.overwrite, progress=not args.quiet
        )
        for out, surface in zip(outs, surfaces, strict=True):
            print(f"wrote {out}: {int(surface.computed.sum())}/{surface.computed.size} points")
        return 0
    try:
        surface = run(
            config,
            args.out,
            overwrite=args.overwrite,
            progress=not args.quiet,
            dist_timeout_min=args.dist_timeout,
        )
    except distributed.QuietExit as e:  # rank 0 reported for the whole job
        # This rank is done: torchrun stopping the rest must not change its exit code
        # (`guarded` leaves a handler it did not install as it is).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return e.code
    if surface is None:  # a torchrun rank other than 0
        return 0
    done = int(surface.computed.sum())
    diverged = surface.diverged
    print(
        f"wrote {args.out}: {done}/{surface.computed.size} points "
        f"({'x'.join(map(str, surface.shape))} grid, splits {','.join(config.split)})"
        + (f"; {int(diverged.sum())} points diverged (loss NaN or inf)" if diverged.any() else "")
    )
    if args.plot:
        from landscape.plot import main as plot_main

        return plot_main([str(args.out)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
