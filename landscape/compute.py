"""``python -m landscape.compute``: a 1-D or 2-D loss surface around a trained model.

Exit codes: 0 done; 2 bad input (one line on stderr); 130 interrupted (the file
is consistent and a rerun resumes it). Started by ``torchrun``, the ranks share
the grid and rank 0 writes the file (`landscape.surface.distributed`, docs/distributed.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from landscape.cli import options
from landscape.cli.runner import RESUMABLE, ArgumentParser, exit_after, guarded
from landscape.core.checkpoints import resolve_checkpoint
from landscape.core.errors import InputError
from landscape.core.files import check_output
from landscape.io.surface_file import SURFACE_FORMAT
from landscape.surface import distributed
from landscape.surface.config import SurfaceConfig
from landscape.surface.engine import run, run_seeds, seed_paths

__all__ = ["COMMAND_ONLY", "build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="landscape compute",
        description="Compute f(alpha, beta) = L(theta* + alpha*dx + beta*dy) on a grid "
        "and store it in an HDF5 surface file (rerun with the same --out to resume).",
    )
    for title in ("model", "data", "grid and directions", "evaluation", "output"):
        p.add_argument_group(title)  # in this order in --help
    options.add_fields(p, SurfaceConfig)
    options.add_data_arguments(p)
    o = options.option_group(p, "output")
    o.add_argument("--out", required=True, metavar="PATH", help="the surface file (.h5)")
    o.add_argument(
        "--seeds",
        metavar="LIST",
        help="one surface per direction seed (e.g. 0,1,2), the data read once: OUT_seed0.h5, "
        "... (landscape metrics groups them into intervals); rerun to resume all",
    )
    o.add_argument("--overwrite", action="store_true", help="replace --out instead of resuming")
    o.add_argument("--plot", action="store_true", help="render the default figures when done")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.add_argument(
        "--dist-timeout",
        type=options.positive_float,
        default=distributed.DEFAULT_TIMEOUT_MIN,
        metavar="MIN",
        help="under torchrun: minutes a rank waits for another before the run stops "
        "(resumable) as if interrupted",
    )
    return p


MAX_SEEDS = 100
# The flags of `landscape compute` that are not settings of the surface (`SurfaceConfig`).
COMMAND_ONLY = ("out", "seeds", "overwrite", "plot", "quiet", "dist_timeout", "help")


def config_from_args(args: argparse.Namespace) -> SurfaceConfig:
    split = tuple(s.strip() for s in args.split.split(",") if s.strip())
    return options.record_from_args(SurfaceConfig, args, split=split)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [options.seed(s.strip()) for s in text.split(",") if s.strip()]
    except argparse.ArgumentTypeError as e:
        raise InputError(f"--seeds takes integers like 0,1,2: {e}") from None
    if len(seeds) < 1 or len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds must list distinct seeds, e.g. 0,1,2; got {text!r}")
    if len(seeds) > MAX_SEEDS:  # each seed is a file and a full surface of its own
        raise InputError(
            f"--seeds lists {len(seeds)} seeds; use at most {MAX_SEEDS} (3 to 10 give an "
            "interval over directions)"
        )
    return seeds


def main(argv: Sequence[str] | None = None) -> int:
    # Under torchrun the rank ends here, its teardown the distributed strategy's.
    body = distributed.rank_body(lambda: _main(build_parser().parse_args(argv)))
    return distributed.end_rank(guarded("landscape compute", body, kept=RESUMABLE))


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
    surface = run(
        config,
        args.out,
        overwrite=args.overwrite,
        progress=not args.quiet,
        dist_timeout_min=args.dist_timeout,
    )
    if surface is None:  # a torchrun rank other than 0
        return 0
    done = int(surface.computed.sum())
    diverged = surface.diverged
    print(
        f"wrote {args.out}: {done}/{surface.computed.size} points "
        f"({'x'.join(map(str, surface.shape))} grid, splits {','.join(config.split)})"
        + (f"; {int(diverged.sum())} points diverged (loss NaN or inf)" if diverged.any() else "")
    )
    if args.plot:  # each split computed: one figure each in 2-D, one figure of all in 1-D
        from landscape.plot import main as plot_main

        runs = [(s,) for s in config.split] if surface.is_2d else [config.split]
        for splits in runs:
            code = plot_main([str(args.out), "--split", ",".join(splits)])
            if code:
                return code
    return 0


if __name__ == "__main__":
    exit_after(main())
