"""``landscape hessian``: Hessian eigenvalues at theta*, or a curvature map over a surface.

    landscape hessian --ckpt CKPT [--top-k 3] [--trace-samples 50] [--out result.json]
    landscape hessian --surface FILE.h5 [--samples 128] [--iters 20] [--figure map.png]
    landscape hessian --ckpt CKPT --density [--probes 10] [--depth 80] [--compare OTHER.json]
    landscape hessian --ckpt CKPT --per-block [stage|block] [--compare OTHER.json]
    landscape hessian --ckpt CKPT --sharpness worst|average [--rho 0.05] [--scale adaptive]

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
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landscape.analysis import curvature, hessian, sharpness, spectrum
from landscape.analysis.curvature import surface_curvature_map, value_at_origin
from landscape.analysis.spectrum import select_parameters
from landscape.cli import options
from landscape.cli.options import (
    FIGURE_FORMATS,
    add_data_arguments,
    add_overwrite_argument,
    check_suffix,
    set_default,
)
from landscape.cli.runner import ArgumentParser, exit_after, guarded
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
from landscape.io.spectrum import (
    BLOCKS_FORMAT,
    DENSITY_FORMAT,
    SHARPNESS_FORMAT,
    read_curvature_result,
    write_block_curvature,
    write_density,
    write_sharpness,
)
from landscape.io.surface_file import read_surface
from landscape.viz.analysis_figures import curvature_map_figure, hessian_spectrum_figure
from landscape.viz.spectrum import block_curvature_figure, density_figure

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
    h.add_argument(
        "--params",
        metavar="GLOB[,GLOB]",
        default=None,
        help="take the Hessian (or perturb) over these parameters only: fnmatch globs over "
        "named_parameters() names or the built-in networks' groups (stem, stage1.., head, "
        "stage2.block0 ...); within --wrt",
    )
    h.add_argument(
        "--exclude", metavar="GLOB[,GLOB]", default=None, help="leave these out (after --params)"
    )
    options.add_task_argument(h)
    s = p.add_argument_group("spectrum, blocks and sharpness (at theta*, instead of the above)")
    s.add_argument(
        "--density",
        action="store_true",
        help="the spectral density by stochastic Lanczos quadrature; the JSON keeps each "
        "probe's Lanczos nodes and weights",
    )
    s.add_argument("--probes", type=int, default=None, metavar="N", help="SLQ probes (10)")
    s.add_argument(
        "--depth", type=int, default=None, metavar="N", help="Lanczos steps per SLQ probe (80)"
    )
    s.add_argument(
        "--probe", choices=spectrum.PROBES, default=None, help="SLQ probe vectors (rademacher)"
    )
    s.add_argument(
        "--sigma",
        type=float,
        default=None,
        help="the density figure's Gaussian smoothing (default PyHessian's: "
        "sigma^2 = 1e-5 max(1, range))",
    )
    s.add_argument(
        "--per-block",
        nargs="?",
        const="stage",
        choices=spectrum.LEVELS,
        default=None,
        help="top eigenvalue and trace of each stage (default) or block's sub-Hessian; "
        "--trace-samples probes each (20), --iters Lanczos steps",
    )
    s.add_argument(
        "--jackknife",
        type=int,
        default=0,
        metavar="B",
        help="with --per-block: the standard error of each lambda_max over the data, by "
        "leaving out each of B batches in turn (B more Lanczos runs per group; 0: none)",
    )
    s.add_argument(
        "--sharpness",
        choices=("worst", "average"),
        default=None,
        help="worst-case (projected gradient ascent in a ball) or average-case (Gaussian "
        "noise) loss rise",
    )
    s.add_argument("--rho", type=float, default=None, help="the ball's radius or noise size (0.05)")
    s.add_argument(
        "--scale",
        choices=sharpness.SCALES,
        default=None,
        help="radius in units of: absolute, adaptive (|theta|; worst default) or filter "
        "(filter norms; average default)",
    )
    s.add_argument("--ball", choices=sharpness.NORMS, default=None, help="worst case's norm (l2)")
    s.add_argument(
        "--m",
        type=int,
        default=None,
        metavar="N",
        help="samples per batch: sharpness per batch, the interval over batches (default 128)",
    )
    s.add_argument("--ascent-steps", type=int, default=None, metavar="N", help="per restart (20)")
    s.add_argument("--restarts", type=int, default=None, metavar="N", help="worst case's (1)")
    s.add_argument(
        "--perturbations", type=int, default=None, metavar="N", help="average case's (20)"
    )
    s.add_argument(
        "--compare",
        nargs="+",
        metavar="FILE.json",
        default=(),
        help="earlier --density / --per-block results drawn on the same figure",
    )
    s.add_argument("--label", default=None, help="this network's name in figures (the model's)")
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
    modes = [f for f, on in (("--density", args.density), ("--per-block", args.per_block),
                             ("--sharpness", args.sharpness)) if on]  # fmt: skip
    if len(modes) > 1:
        raise InputError(f"{' and '.join(modes)} are separate runs; give one of them")
    if modes and args.surface:
        raise InputError(f"{modes[0]} is computed at theta* (--ckpt); drop --surface")
    _refuse_flags_of_other_modes(args, modes[0] if modes else None)
    if modes:
        return _curvature_mode(args, model_kwargs, modes[0])
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
    task, data, info = options.task_data_from_args(args, split, at_most=SAMPLES[0])
    chosen = set(select_parameters(loaded.model, args.params, args.exclude, wrt=args.wrt))
    n_params = sum(p.numel() for n, p in loaded.model.named_parameters() if n in chosen)
    print(
        f"{PROG}: {loaded.model_name}, {split} {_what(args, data)}, "
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
            params=args.params or (),
            exclude=args.exclude or (),
            batch_size=args.batch_size,
            seed=args.seed,
            loss=args.loss or "ce",
            device=device,
            progress=not args.quiet,
            task=task,
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
        "params": args.params or "",
        "exclude": args.exclude or "",
        "top_k": k,
        "iters": iters,
        "tol": tol,
        "trace_samples": trace_samples,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "loss": None if task else args.loss or "ce",
        "task": args.task,
    }
    write_hessian_result(
        out,
        spectrum,
        config=config,
        data=info,
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


def _what(args: argparse.Namespace, data: Any) -> str:
    """What the loss is and of what, for the first line on stderr."""
    if not args.task:
        return f"loss on {len(data)} samples"
    return f"loss of --task {args.task}"


def _stem(spec: str) -> str:
    return spec.split(":", 1)[1] if spec.startswith("pretrained:") else Path(spec).stem


def _status(res: hessian.LanczosResult) -> str:
    return f"{res.iterations} steps, {'converged' if res.converged else 'NOT converged'}"


# ---------------------------------------------------------------- density, blocks, sharpness

# The flags of one mode, refused elsewhere (never silently ignored).
MODE_FLAGS = {
    "--density": ("probes", "depth", "probe", "sigma"),
    "--per-block": ("jackknife",),
    "--sharpness": ("rho", "scale", "ball", "m", "ascent_steps", "restarts", "perturbations"),
}


def _refuse_flags_of_other_modes(args: argparse.Namespace, mode: str | None) -> None:
    for owner, names in MODE_FLAGS.items():
        if owner == mode:
            continue
        for name in names:
            value = getattr(args, name)
            if value is not None and not (name == "jackknife" and value == 0):
                flag = "--" + name.replace("_", "-")
                raise InputError(f"{flag} goes with {owner}; add {owner} or drop {flag}")
    # The eigenvalue settings of the default run: --per-block uses --iters, --tol and
    # --trace-samples; --density and --sharpness none of them.
    unused = {"--per-block": ("top_k",), "--density": ("top_k", "iters", "tol", "trace_samples")}
    unused["--sharpness"] = unused["--density"]
    for name in unused.get(mode or "", ()):
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} does not apply to {mode}; drop it")
    if mode == "--per-block" and (args.params or args.exclude):
        raise InputError("--per-block picks its own groups; drop --params/--exclude")
    if args.compare and mode not in ("--density", "--per-block"):
        raise InputError("--compare goes with --density or --per-block")


MAX_COUNT = 10_000  # probes, ascent steps, restarts, perturbations, jackknife batches


def _curvature_mode(args: argparse.Namespace, model_kwargs: dict[str, Any], mode: str) -> int:
    # Each of these counts costs Hessian-vector products or passes over the data.
    for flag, value in (
        ("--probes", args.probes), ("--depth", args.depth), ("--m", args.m),
        ("--ascent-steps", args.ascent_steps), ("--restarts", args.restarts),
        ("--perturbations", args.perturbations), ("--jackknife", args.jackknife or None),
    ):  # fmt: skip
        most = None if flag == "--m" else MAX_COUNT
        if value is not None and not (1 <= value and (most is None or value <= most)):
            bound = f" up to {most:,}" if most else ""
            raise InputError(f"{flag} must be a positive integer{bound}; got {value}")
    if args.depth is not None and args.depth > MAX_ITERS:
        raise InputError(
            f"--depth must be at most {MAX_ITERS:,} (one vector per step); got {args.depth}"
        )
    for flag, value in (("--rho", args.rho), ("--sigma", args.sigma)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise InputError(f"{flag} must be a positive number; got {value}")
    kind = {"--density": "density", "--per-block": "blocks", "--sharpness": "sharpness"}[mode]
    out = Path(args.out or f"{_stem(args.ckpt)}_{kind}.json")
    check_suffix(out, (".json",), "--out")
    figure = Path(args.figure) if args.figure else out.with_suffix(".png")
    fmt = {"density": DENSITY_FORMAT, "blocks": BLOCKS_FORMAT, "sharpness": SHARPNESS_FORMAT}[kind]
    check_output(out, fmt, overwrite=args.overwrite, inputs=[args.ckpt])
    if kind != "sharpness":
        check_output(
            figure, "figure", overwrite=args.overwrite, inputs=[args.ckpt], flag="--figure"
        )
    compare = [read_curvature_result(c, kind) for c in args.compare]
    if args.compare and kind == "sharpness":
        raise InputError("--compare goes with --density or --per-block")
    device = resolve_device(args.device)
    loaded = load_model(args.ckpt, model=args.model, model_kwargs=model_kwargs, device=device)
    split = args.split or "train"
    task, data, info = options.task_data_from_args(args, split, at_most=SAMPLES[0])
    label = args.label or loaded.model_name
    # The selection is checked before anything is computed (or printed).
    select_parameters(loaded.model, args.params or (), args.exclude or (), wrt=args.wrt)
    common = {
        "params": args.params or (), "exclude": args.exclude or (), "wrt": args.wrt,
        "loss": args.loss or "ce", "batch_size": args.batch_size, "seed": args.seed,
        "device": device, "progress": not args.quiet, "task": task,
    }  # fmt: skip
    config = {
        "ckpt": args.ckpt, "model": loaded.model_name, "model_kwargs": loaded.model_kwargs,
        "split": split,
        **{k: v for k, v in common.items() if k not in ("device", "progress", "task")},
        "task": args.task,
    }  # fmt: skip
    if task is not None:
        config["loss"] = None
    config["params"], config["exclude"] = list(common["params"]), list(common["exclude"])
    meta = {
        "label": label, "config": config, "data": info,
        "provenance": provenance(device, {"ckpt": resolve_checkpoint(args.ckpt)}),
    }  # fmt: skip
    print(f"{PROG}: {loaded.model_name}, {split} {_what(args, data)}", file=sys.stderr)
    if kind == "density":
        probes, depth = args.probes or 10, args.depth or 80
        probe = args.probe or "rademacher"
        config.update(probes=probes, depth=depth, probe=probe)
        result = spectrum.spectral_density(
            loaded.model, data, probes=probes, depth=depth, probe=probe, **common
        )
        write_density(out, result, **meta)
        doc = read_curvature_result(out, "density")
        fig = density_figure([(d["label"], d) for d in compare] + [(label, doc)], sigma=args.sigma)
        atomic_savefig(fig, figure, dpi=args.dpi)
        r = result.slq
        lo, hi = r.trace_interval()
        worst = max(
            max(c["lambda_max_residual"], c["lambda_min_residual"]) for c in r.convergence()
        )
        print(
            f"{r.probes} {r.probe} probes x {depth} Lanczos steps over {r.dimension:,} "
            f"parameters ({result.seconds:.0f} s)\n"
            f"nodes in [{r.lambda_min:.6g}, {r.lambda_max:.6g}] (largest extreme-node residual "
            f"{worst:.2g})\ntrace {r.trace:.6g} +- {r.trace_stderr:.2g} (95% [{lo:.6g}, {hi:.6g}])"
        )
    elif kind == "blocks":
        iters, tol = args.iters or ITERS[0], args.tol or TOL[0]
        probes = 20 if args.trace_samples is None else args.trace_samples
        config.update(
            level=args.per_block, iters=iters, tol=tol, trace_samples=probes,
            jackknife=args.jackknife,
        )  # fmt: skip
        start = time.perf_counter()
        with warnings.catch_warnings():  # the table says which did not converge
            warnings.simplefilter("ignore")
            blocks = spectrum.per_block_curvature(
                loaded.model, data, level=args.per_block, iters=iters, tol=tol,
                trace_samples=probes, jackknife=args.jackknife,
                **{k: v for k, v in common.items() if k not in ("params", "exclude")},
            )  # fmt: skip
        seconds = time.perf_counter() - start
        blocks_samples = len(data) if task is None else "the task's"
        write_block_curvature(out, blocks, seconds=seconds, **meta)
        fig = block_curvature_figure(
            [(d["label"], d) for d in compare] + [(label, blocks)],
            title=f"Hessian curvature per {args.per_block} ({blocks_samples} samples)",
        )
        atomic_savefig(fig, figure, dpi=args.dpi)
        width = max(len(b.name) for b in blocks)

        def jack(b: spectrum.BlockCurvature) -> str:
            return f", +- {b.lambda_max_stderr:.2g} over data" if b.jackknife else ""

        for b in blocks:
            flag = "" if b.converged else "  (NOT converged)"
            print(
                f"{b.name:<{width}}  {b.parameters:>9,}  lambda_max {b.lambda_max:.5g} "
                f"(+{b.lambda_max_bound:.2g}{jack(b)})  "
                + (f"trace {b.trace:.5g} +- {b.trace_stderr:.2g}" if b.probes else "no trace")
                + flag
            )
        print(f"({seconds:.0f} s)")
    else:
        rho = args.rho or 0.05
        ball, steps = args.ball or "l2", args.ascent_steps or 20
        restarts, perturbations = args.restarts or 1, args.perturbations or 20
        # A task's data is taken batch by batch (each batch one of the sharpness), unless m.
        m = args.m or (min(128, len(data)) if task is None else None)
        if args.sharpness == "worst":
            scale = args.scale or "adaptive"
            config.update(sharpness="worst", rho=rho, ball=ball, scale=scale, m=m,
                          steps=steps, restarts=restarts)  # fmt: skip
            result = sharpness.worst_case_sharpness(
                loaded.model, data, radius=rho, norm=ball, scale=scale, m=m,
                steps=steps, restarts=restarts, **common,
            )  # fmt: skip
        else:
            scale = args.scale or "filter"
            config.update(sharpness="average", rho=rho, scale=scale, m=m,
                          perturbations=perturbations)  # fmt: skip
            result = sharpness.average_case_sharpness(
                loaded.model, data, radius=rho, scale=scale, perturbations=perturbations,
                m=m, **common,
            )  # fmt: skip
        write_sharpness(out, result, **meta)
        lo, hi = result.interval()
        print(
            f"{args.sharpness}-case sharpness (rho {rho:g}, {scale}): {result.value:.5g} +- "
            f"{result.stderr:.2g} (95% [{lo:.5g}, {hi:.5g}]) over {len(result.per_batch)} "
            f"batches of {result.m}; loss at theta* {result.base_loss:.5g} ({result.seconds:.0f} s)"
        )
        print(f"wrote {out}")
        return 0
    print(f"wrote {out} and {figure}")
    return 0


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
    task = task_data = None
    if args.task:  # a task surface made from Python: its task, given again
        from landscape.surface.engine import load_task

        task, task_data = load_task(args.task)
    bar = progress_bar(not args.quiet, total=total, unit="pt", desc=path.name, dynamic_ncols=True)
    with bar:
        result = surface_curvature_map(
            path,
            ckpt=args.ckpt,
            model=args.model,
            model_kwargs=model_kwargs,
            split=args.split,
            # The data options given; the rest are the surface's own.
            data=task_data
            if task_data is not None
            else {k: v for k in DATA_FIELDS if (v := getattr(args, k)) not in (None, False)},
            wrt=args.wrt,
            params=args.params or (),
            exclude=args.exclude or (),
            loss=args.loss,
            iters=iters,
            tol=tol,
            seed=args.seed,
            batch_size=args.batch_size,
            device=args.device,
            progress=lambda done, _: bar.update(done - bar.n),
            task=task,
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
    exit_after(main())
