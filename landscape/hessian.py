"""``landscape hessian``: Hessian eigenvalues at theta*, or a curvature map over a surface.

    landscape hessian --ckpt CKPT [--top-k 3] [--trace-samples 50] [--out result.json]
    landscape hessian --surface FILE.h5 [--samples 128] [--iters 20] [--figure map.png]

At theta*: the top-k eigenvalues, lambda_min, ``|lambda_min / lambda_max|`` and
Hutchinson's trace estimate of the Hessian of the mean loss on a data subset, printed
as a table and saved as JSON. With ``--surface``: ``|lambda_min / lambda_max|`` at every
grid point of a surface file (Li et al. 2018, Sec. 6, Fig. 8), stored in that file as
``/{split}_curvature_ratio`` (beside ``_lambda_min`` and ``_lambda_max``) and drawn as
a heatmap. Near 0: locally convex; large: strong negative curvature.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landscape.analysis import curvature, hessian
from landscape.analysis.curvature import surface_curvature_map, value_at_origin
from landscape.analysis.hessian import weight_names
from landscape.cli import options
from landscape.cli.options import (
    FIGURE_FORMATS,
    add_data_arguments,
    add_overwrite_argument,
    check_suffix,
    set_default,
)
from landscape.cli.runner import ArgumentParser, guarded
from landscape.core.checkpoints import load_model, resolve_checkpoint
from landscape.core.device import resolve_device
from landscape.core.errors import InputError
from landscape.core.files import atomic_savefig, check_output, provenance
from landscape.core.losses import LOSSES
from landscape.core.progress import progress_bar
from landscape.data import (
    DEFAULT_DATASET,
)
from landscape.data.spec import DATA_FIELDS
from landscape.io.curvature import refuse_if_being_written
from landscape.io.hessian import HESSIAN_FORMAT, write_hessian_result
from landscape.io.surface_file import read_surface
from landscape.viz.analysis_figures import curvature_map_figure, hessian_spectrum_figure

__all__ = ["build_parser", "main"]

PROG = "landscape hessian"
WRT = ("weights", "all")
# (theta*, per grid point): a map runs one Lanczos per point, so it gets a cheaper default.
SAMPLES = (1000, curvature.SAMPLES)
ITERS = (100, curvature.ITERS)
# The most the counts may ask for (Lanczos converges in tens to hundreds of steps; a
# million-parameter network's 1,000 steps are 4 GB).
MAX_ITERS = 1000
MAX_TOP_K = 100
MAX_TRACE_SAMPLES = 10_000
TOL = (1e-4, curvature.TOL)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Hessian eigenvalues (Lanczos) and trace (Hutchinson) of the mean loss at "
        "theta* (--ckpt), or |lambda_min/lambda_max| at every point of a surface file "
        "(--surface; Li et al. 2018, Sec. 6).",
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--ckpt",
        metavar="PATH",
        help="theta*: a checkpoint or pretrained:NAME (with --surface: replaces the file's "
        "checkpoint path, same content required)",
    )
    m.add_argument(
        "--surface",
        metavar="FILE.h5",
        help="compute a curvature map over this surface's grid and directions",
    )
    options.add_model_arguments(m)
    add_data_arguments(p)
    # With --surface, the data settings default to the surface's own.
    set_default(p, "dataset", None, f"dataset (default: the surface's, else {DEFAULT_DATASET})")
    set_default(p, "data_root", None, "folder of the CIFAR files (default: the surface's)")
    set_default(p, "subset", None, "first | stratified (default: the surface's, else first)")
    set_default(p, "data_seed", None, "seed of --subset stratified (default: the surface's)")
    set_default(
        p,
        "samples",
        None,
        f"use N samples (default {SAMPLES[0]} at theta*; {SAMPLES[1]} per grid point "
        "with --surface, or fewer if the surface used fewer)",
    )
    p.add_argument(
        "--split", default=None, help="train | test (default: train, or the surface's first)"
    )
    h = p.add_argument_group("hessian")
    h.add_argument(
        "--wrt",
        default="weights",
        choices=WRT,
        help="parameters the Hessian is over: weights (conv and linear, as --ignore biasbn; "
        "default) or all",
    )
    h.add_argument(
        "--loss",
        choices=LOSSES,
        default=None,
        help="the loss whose Hessian is taken: ce, mse (logits) or mse-softmax (the original "
        "code's mse); default ce, or the surface's with --surface",
    )
    h.add_argument("--top-k", type=int, default=None, metavar="K", help="eigenvalues (3)")
    h.add_argument(
        "--trace-samples",
        type=int,
        default=None,
        metavar="N",
        help="Hutchinson probes for the trace (50; 0 skips the trace)",
    )
    h.add_argument(
        "--iters",
        type=int,
        default=None,
        metavar="N",
        help=f"most Lanczos steps ({ITERS[0]}; {ITERS[1]} per grid point with --surface)",
    )
    h.add_argument(
        "--tol",
        type=float,
        default=None,
        help=f"relative residual of a converged eigenvalue ({TOL[0]:g}; {TOL[1]:g} with --surface)",
    )
    h.add_argument("--seed", type=options.seed, default=0, help="seed of the random start vectors")
    h.add_argument("--batch-size", type=int, default=256, metavar="INT", help="per pass")
    h.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        metavar="PATH",
        help="the result, .json (default: <checkpoint name>_hessian.json); not with --surface, "
        "whose map goes into the surface file",
    )
    o.add_argument(
        "--figure",
        metavar="PATH",
        help="the figure, .png/.pdf/.svg (default: beside the result, or "
        "<surface>_curvature.png with --surface)",
    )
    o.add_argument("--dpi", type=options.dpi, default=150, help="resolution of PNG figures")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite_argument(o, "--out and --figure")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return guarded(PROG, lambda: _main(build_parser().parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    if not args.ckpt and not args.surface:
        raise InputError(
            "give --ckpt CKPT (eigenvalues at theta*) or --surface FILE.h5 (a curvature map)"
        )
    for flag, value in (("--top-k", args.top_k), ("--iters", args.iters)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be a positive integer; got {value}")
    if args.trace_samples is not None and args.trace_samples < 0:
        raise InputError(f"--trace-samples must be 0 or more; got {args.trace_samples}")
    # Bounded before anything is allocated: Lanczos keeps one vector of every parameter
    # per step, and each eigenvalue or probe costs Hessian-vector products.
    for flag, value, most, why in (
        ("--iters", args.iters, MAX_ITERS, "Lanczos keeps one parameter vector per step"),
        ("--top-k", args.top_k, MAX_TOP_K, "each needs Lanczos steps of its own"),
        ("--trace-samples", args.trace_samples, MAX_TRACE_SAMPLES, "one Hessian pass each"),
    ):
        if value is not None and value > most:
            raise InputError(f"{flag} must be at most {most:,} ({why}); got {value:,}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be a positive integer; got {args.batch_size}")
    if args.tol is not None and not args.tol > 0:
        raise InputError(f"--tol must be positive; got {args.tol}")
    if args.split is not None and args.split not in ("train", "test"):
        raise InputError(f"--split must be train or test; got {args.split!r}")
    if args.figure:
        check_suffix(args.figure, FIGURE_FORMATS, "--figure")
    model_kwargs = args.model_kwargs
    if args.surface:
        return _surface_map(args, model_kwargs)
    return _at_optimum(args, model_kwargs)


# ---------------------------------------------------------------- at theta*


def _at_optimum(args: argparse.Namespace, model_kwargs: dict[str, Any]) -> int:
    out = Path(args.out or f"{_stem(args.ckpt)}_hessian.json")
    check_suffix(out, (".json",), "--out")
    figure = Path(args.figure) if args.figure else out.with_suffix(".png")
    check_output(out, HESSIAN_FORMAT, overwrite=args.overwrite, inputs=[args.ckpt])
    check_output(figure, "figure", overwrite=args.overwrite, inputs=[args.ckpt], flag="--figure")
    k = args.top_k or 3
    iters = args.iters or ITERS[0]
    tol = args.tol or TOL[0]
    trace_samples = 50 if args.trace_samples is None else args.trace_samples
    if k > iters:
        raise InputError(f"--top-k {k} needs at least as many --iters; got --iters {iters}")
    device = resolve_device(args.device)
    loaded = load_model(args.ckpt, model=args.model, model_kwargs=model_kwargs, device=device)
    split = args.split or "train"
    data = options.data_from_args(args).load(split, at_most=SAMPLES[0])
    n_params = sum(
        p.numel()
        for n, p in loaded.model.named_parameters()
        if n in set(weight_names(loaded.model, args.wrt))
    )
    print(
        f"{PROG}: {loaded.model_name}, {split} loss on {len(data)} samples, "
        f"{n_params:,} parameters ({args.wrt})",
        file=sys.stderr,
    )
    # Unconverged runs are reported in the table below, not as Python warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectrum = hessian.hessian_spectrum(
            loaded.model,
            data,
            k=k,
            iters=iters,
            tol=tol,
            trace_samples=trace_samples,
            wrt=args.wrt,
            batch_size=args.batch_size,
            seed=args.seed,
            loss=args.loss or "ce",
            device=device,
            progress=not args.quiet,
        )
    top, low = spectrum.largest, spectrum.smallest
    top_values = spectrum.top_eigenvalues
    lambda_min, ratio = spectrum.lambda_min, spectrum.ratio
    trace, stderr = spectrum.trace, spectrum.trace_stderr

    config = {
        "ckpt": args.ckpt,
        "model": loaded.model_name,
        "model_kwargs": loaded.model_kwargs,
        "split": split,
        "wrt": args.wrt,
        "top_k": k,
        "iters": iters,
        "tol": tol,
        "trace_samples": trace_samples,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "loss": args.loss or "ce",
    }
    write_hessian_result(
        out,
        spectrum,
        config=config,
        data=data.info,
        provenance=provenance(device, {"ckpt": resolve_checkpoint(args.ckpt)}),
    )
    fig = hessian_spectrum_figure(
        spectrum, title=f"{loaded.model_name}: Hessian at " + r"$\theta^*$"
    )
    atomic_savefig(fig, figure, dpi=args.dpi)

    rows = [(f"lambda_{i + 1}", f"{v:.6g}") for i, v in enumerate(top_values)]
    rows += [
        ("lambda_min", f"{lambda_min:.6g}"),
        ("|lmin/lmax|", f"{ratio:.4g}"),
        (
            "trace",
            f"{trace:.6g} +- {stderr:.2g} ({trace_samples} probes)" if trace_samples else "skipped",
        ),
        ("lanczos", f"{_status(top)} (largest), {_status(low)} (smallest)"),
    ]
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
    print(f"wrote {out} and {figure}")
    return 0


def _stem(spec: str) -> str:
    return spec.split(":", 1)[1] if spec.startswith("pretrained:") else Path(spec).stem


def _status(res: hessian.LanczosResult) -> str:
    return f"{res.iterations} steps, {'converged' if res.converged else 'NOT converged'}"


# ---------------------------------------------------------------- over a surface


def _surface_map(args: argparse.Namespace, model_kwargs: dict[str, Any]) -> int:
    for flag, value in (("--out", args.out), ("--top-k", args.top_k)):
        if value is not None:
            raise InputError(f"{flag} applies to --ckpt alone; with --surface drop it")
    if args.trace_samples is not None:
        raise InputError("--trace-samples applies to --ckpt alone; with --surface drop it")
    path = Path(args.surface)
    surface = read_surface(path)
    refuse_if_being_written(path)
    figure = Path(args.figure) if args.figure else path.with_name(f"{path.stem}_curvature.png")
    check_output(
        figure, "figure", overwrite=args.overwrite, inputs=[path, args.ckpt], flag="--figure"
    )
    iters, tol = args.iters or ITERS[1], args.tol or TOL[1]
    total = int(np.prod(surface.shape))
    print(
        f"{PROG}: |lambda_min/lambda_max| at {total} points of {path.name} ({iters} Lanczos steps)",
        file=sys.stderr,
    )
    bar = progress_bar(not args.quiet, total=total, unit="pt", desc=path.name, dynamic_ncols=True)
    with bar:
        result = surface_curvature_map(
            path,
            ckpt=args.ckpt,
            model=args.model,
            model_kwargs=model_kwargs,
            split=args.split,
            # The data options given; the rest are the surface's own.
            data={k: v for k in DATA_FIELDS if (v := getattr(args, k)) not in (None, False)},
            wrt=args.wrt,
            loss=args.loss,
            iters=iters,
            tol=tol,
            seed=args.seed,
            batch_size=args.batch_size,
            device=args.device,
            progress=lambda done, _: bar.update(done - bar.n),
        )
    ratio, split = result.ratio, result.split
    atomic_savefig(curvature_map_figure(result), figure, dpi=args.dpi)
    if result.unconverged_points:
        print(
            f"{PROG}: note: Lanczos did not converge at {result.unconverged_points} of {total} "
            f"points within {iters} steps (tol {tol:g}); raise --iters for a sharper map",
            file=sys.stderr,
        )
    origin = value_at_origin(surface, ratio)
    finite = ratio[np.isfinite(ratio)]
    print(
        f"|lambda_min/lambda_max|: {origin:.3g} at theta*, "
        f"median {np.median(finite) if finite.size else math.nan:.3g}, "
        f"max {finite.max() if finite.size else math.nan:.3g}; "
        f"{np.mean(finite < 0.1) if finite.size else 0:.0%} of points below 0.1 (nearly convex)"
    )
    print(f"wrote /{split}_curvature_ratio into {path} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
