"""``landscape eigendirs``: the two sharpest Hessian eigenvectors as a directions file.

    landscape eigendirs --ckpt CKPT --out dirs.h5
    landscape compute --ckpt CKPT --directions dirs.h5 --norm none --x -1:1:51 --y -1:1:51 ...

The directions are unit vectors over the conv and linear weights (biases and BN held
fixed, as ``--ignore biasbn``), so with ``--norm none`` the surface's coordinates are
Euclidean distances in weight space. Along them the loss curves up fastest: a plane
that shows the sharpest view of the minimum, unlike random directions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import torch

from landscape.analysis import hessian
from landscape.analysis.hessian import LanczosWarnings
from landscape.analysis.objective import objective
from landscape.analysis.spectrum import select_parameters
from landscape.cli import options
from landscape.cli.options import (
    add_data_arguments,
    add_overwrite_argument,
    check_suffix,
    set_default,
)
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.checkpoints import load_model, resolve_checkpoint
from landscape.core.device import resolve_device
from landscape.core.errors import InputError
from landscape.core.files import check_output, provenance
from landscape.data import DEFAULT_DATASET
from landscape.io.surface_file import DIRECTIONS_FORMAT, write_directions_file
from landscape.surface.direction_policy import directions_made_by
from landscape.surface.directions import cosine

__all__ = ["build_parser", "main"]

PROG = "landscape eigendirs"
SAMPLES = 1000


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Write the top-2 Hessian eigenvectors at theta* as a directions file for "
        "landscape compute --directions FILE --norm none.",
    )
    p.add_argument("--ckpt", required=True, metavar="PATH", help="a checkpoint or pretrained:NAME")
    options.add_model_arguments(p)
    add_data_arguments(p)
    set_default(p, "samples", None, f"use N samples (at most {SAMPLES})")
    p.add_argument("--split", default="train", choices=("train", "test"), help="data split")
    h = p.add_argument_group("hessian")
    h.add_argument("--iters", type=int, default=100, metavar="N", help="most Lanczos steps")
    h.add_argument("--tol", type=float, default=1e-4, help="relative residual")
    h.add_argument("--seed", type=options.seed, default=0, help="seed of the Lanczos start vector")
    h.add_argument("--batch-size", type=int, default=256, metavar="INT", help="per pass")
    h.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    h.add_argument(
        "--params",
        metavar="GLOB[,GLOB]",
        default=None,
        help="the weights the Hessian is taken over: globs or the built-in networks' groups "
        "(stage1, head, ...); a surface on these directions then takes the same --params",
    )
    h.add_argument("--exclude", metavar="GLOB[,GLOB]", default=None, help="leave these out")
    options.add_task_argument(h)
    p.add_argument("--out", required=True, metavar="PATH", help="the directions file (.h5)")
    add_overwrite_argument(p, "--out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return guarded(PROG, lambda: _main(build_parser().parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    out = check_suffix(args.out, (".h5", ".hdf5"), "--out")
    check_output(
        out,
        DIRECTIONS_FORMAT,
        overwrite=args.overwrite,
        inputs=[args.ckpt],
        same_job=lambda p: directions_made_by(p) == "hessian_eigenvectors",  # not trajectory's
    )
    if args.iters < 2:
        raise InputError(f"--iters must be at least 2 (two eigenvectors); got {args.iters}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be a positive integer; got {args.batch_size}")
    if not args.tol > 0:
        raise InputError(f"--tol must be positive; got {args.tol}")
    device = resolve_device(args.device)
    loaded = load_model(
        args.ckpt,
        model=args.model,
        model_kwargs=args.model_kwargs,
        device=device,
    )
    model = loaded.model
    task, data, info = options.task_data_from_args(args, args.split, at_most=SAMPLES)
    wrt = select_parameters(model, args.params or (), args.exclude or (), wrt="weights")
    # The loss: the built-in one on the images, or the task's on its batches.
    obj = objective(model, data, task=task, batch_size=args.batch_size, device=device)
    what = f"loss of --task {args.task}" if task else f"loss on {obj.n} samples"
    print(f"{PROG}: {loaded.model_name}, {args.split} {what}", file=sys.stderr)
    with LanczosWarnings() as unconverged:
        x, y = (obj.batches, None) if task else (obj.x, obj.y)
        dirs = hessian.eigenvector_directions(
            model,
            x,
            y,
            batch_size=args.batch_size,
            wrt=wrt,
            iters=args.iters,
            tol=args.tol,
            generator=torch.Generator().manual_seed(args.seed),
            task=task,
        )
    # Rayleigh quotients d^T H d: the eigenvalues belonging to the two directions.
    hvp = obj.hvp(wrt)
    eigenvalues = []
    for axis in ("x", "y"):
        d = {n: dirs[axis][n].to(device) for n in wrt}
        hd = hvp(d)
        eigenvalues.append(sum(float((d[n].double() * hd[n].double()).sum()) for n in wrt))
    config = {
        "kind": "hessian_eigenvectors",
        "ckpt": args.ckpt,
        "model": loaded.model_name,
        "split": args.split,
        "iters": args.iters,
        "tol": args.tol,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "wrt": "weights",
        "task": args.task,
        "data": info,
        "provenance": provenance(device, {"ckpt": resolve_checkpoint(args.ckpt)}),
    }
    write_directions_file(
        out,
        dirs,
        config=config,
        attrs={"eigenvalues": np.asarray(eigenvalues), "converged": unconverged.count == 0},
    )
    print(
        f"lambda_1 = {eigenvalues[0]:.6g}, lambda_2 = {eigenvalues[1]:.6g} "
        f"(unit directions, cosine {cosine(dirs['x'], dirs['y']):.1e})"
    )
    if unconverged.count:
        print(
            f"{PROG}: warning: Lanczos did not converge in {args.iters} steps; the directions "
            "are approximate eigenvectors (raise --iters)",
            file=sys.stderr,
        )
    dataset = f" --dataset {args.dataset}" if args.dataset != DEFAULT_DATASET else ""
    if task:
        model_flag = f" --model {args.model}" if args.model else ""
        dataset = f"{model_flag} --task {args.task}"
    print(f"wrote {out}; next:")
    print(
        f"  landscape compute --ckpt {args.ckpt}{dataset} --directions {out} --norm none "
        f"--x -1:1:51 --y -1:1:51 --out {out.with_name(out.stem + '_surface.h5')}"
    )
    return 0


if __name__ == "__main__":
    exit_after(main())
