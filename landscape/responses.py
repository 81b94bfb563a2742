"""``landscape responses``: layer-response std and gradient norms (He et al. 2015, Fig. 7).

    landscape responses runs/plain20/final.pt runs/resnet20/final.pt --out responses.json
    landscape responses plain20 resnet20 --init --out init.json

For each network, the standard deviation of every 3x3 layer's response (after BN,
before the addition and ReLU), in network order and sorted by magnitude, and the
norm of the loss gradient of every conv and linear weight. ResNets' responses are
smaller than plain nets' (the residual functions stay near zero); healthy gradients
in the plain nets show their degradation is not vanishing gradients.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landscape import models
from landscape.analysis.responses import gradient_norms, layer_response_std
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
from landscape.data import DataTensors, check_model_fits, num_classes
from landscape.io.responses import RESPONSES_FORMAT, ResponseSeries, write_responses
from landscape.viz.analysis_figures import gradient_norms_figure, layer_response_figure

__all__ = ["build_parser", "main"]

PROG = "landscape responses"
SAMPLES = 1000
BN_MODES = ("eval", "batch")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Std of each 3x3 layer's response and per-layer gradient norms of several "
        "networks (He et al. 2015, Fig. 7), saved as JSON with two figures.",
    )
    p.add_argument(
        "sources",
        nargs="+",
        metavar="CKPT_OR_MODEL",
        help="checkpoints or pretrained:NAME; with --init, model names (e.g. plain20 resnet20)",
    )
    p.add_argument(
        "--init",
        action="store_true",
        help="the sources are model names: measure freshly initialized networks",
    )
    p.add_argument("--seed", type=options.seed, default=0, help="initialization seed with --init")
    options.add_model_arguments(p)
    p.add_argument("--labels", metavar="LIST", help="comma-separated legend labels, one a source")
    add_data_arguments(p)
    set_default(p, "samples", None, f"use N samples (at most {SAMPLES})")
    p.add_argument("--split", default="train", choices=("train", "test"), help="data split")
    p.add_argument(
        "--bn",
        default="eval",
        choices=BN_MODES,
        help="BN statistics for the responses: eval, the running statistics (default), or "
        "batch, each batch's (a fresh network's responses are then 1 by construction)",
    )
    p.add_argument("--batch-size", type=int, default=256, metavar="INT", help="per pass")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    o = p.add_argument_group("output")
    o.add_argument("--out", default="responses.json", help="the result (.json; responses.json)")
    o.add_argument("--figure", metavar="PATH", help="response std figure (default: <out>.png)")
    o.add_argument(
        "--grad-figure", metavar="PATH", help="gradient norm figure (default: <out>_grad.png)"
    )
    o.add_argument("--dpi", type=options.dpi, default=150, help="resolution of PNG figures")
    add_overwrite_argument(o, "--out and the figures")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return guarded(PROG, lambda: _main(build_parser().parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    out = check_suffix(args.out, (".json",), "--out")
    figure = check_suffix(args.figure or out.with_suffix(".png"), FIGURE_FORMATS, "--figure")
    grad_figure = check_suffix(
        args.grad_figure or out.with_name(f"{out.stem}_grad.png"), FIGURE_FORMATS, "--grad-figure"
    )
    check_output(out, RESPONSES_FORMAT, overwrite=args.overwrite, inputs=args.sources)
    for path, flag in ((figure, "--figure"), (grad_figure, "--grad-figure")):
        check_output(path, "figure", overwrite=args.overwrite, inputs=args.sources, flag=flag)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be a positive integer; got {args.batch_size}")
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    if labels is not None and len(labels) != len(args.sources):
        raise InputError(
            f"--labels has {len(labels)} entries for {len(args.sources)} sources; give one each"
        )
    model_kwargs = args.model_kwargs
    device = resolve_device(args.device)
    data = options.data_from_args(args).load(args.split, at_most=SAMPLES)
    x, y = data.normalized(device), data.y.to(device)
    batch_stats = args.bn == "batch"
    stage = "init" if args.init else "trained"

    nets = [_network(s, args, model_kwargs, data, device) for s in args.sources]
    names = labels or _labels([(name, src) for name, _, src in nets])
    series: list[ResponseSeries] = []
    files: dict[str, Path] = {}
    for i, ((name, model, src), label) in enumerate(zip(nets, names, strict=True)):
        check_model_fits(model, x, y, what="the data")
        attrs: dict[str, Any] = {"source": src, "model": name}
        if not args.init:
            files[f"source{i}"] = resolve_checkpoint(src)
        stds = layer_response_std(model, x, batch_size=args.batch_size, batch_stats=batch_stats)
        grads = gradient_norms(model, x, y, batch_size=args.batch_size)
        series.append(
            ResponseSeries.from_pairs(
                label,
                "response_std",
                stds,
                stage=stage,
                attrs={**attrs, "batch_stats": batch_stats},
            )
        )
        series.append(
            ResponseSeries.from_pairs(
                label, "gradient_norm", grads, stage=stage, attrs={**attrs, "batch_stats": True}
            )
        )
    meta = {
        "config": {
            "sources": list(args.sources),
            "init": args.init,
            "seed": args.seed if args.init else None,
            "model_kwargs": model_kwargs,
            "split": args.split,
            "bn": args.bn,
            "batch_size": args.batch_size,
            "loss": "ce",
        },
        "data": data.info,
        "provenance": provenance(device, files),
    }
    write_responses(out, series, meta=meta)
    atomic_savefig(layer_response_figure(series, stage=stage), figure, dpi=args.dpi)
    atomic_savefig(gradient_norms_figure(series, stage=stage), grad_figure, dpi=args.dpi)

    width = max(len(s.label) for s in series)
    print(f"{'network':<{width}}  {'layers':>6}  {'mean std':>9}  {'median grad norm':>16}")
    for resp, grad in zip(series[::2], series[1::2], strict=True):
        print(
            f"{resp.label:<{width}}  {len(resp.values):>6}  {np.mean(resp.values):>9.4g}  "
            f"{np.median(grad.values):>16.4g}"
        )
    print(f"wrote {out}, {figure} and {grad_figure}")
    return 0


def _network(
    source: str,
    args: argparse.Namespace,
    model_kwargs: dict[str, Any],
    data: DataTensors,
    device: torch.device,
) -> tuple[str, torch.nn.Module, str]:
    """``(model name, model in eval mode on device, source)`` of one command-line source."""
    if not args.init:
        loaded = load_model(source, model=args.model, model_kwargs=model_kwargs, device=device)
        return loaded.model_name or Path(source).stem, loaded.model, source
    kwargs = {"num_classes": num_classes(args.dataset, data_root=args.data_root), **model_kwargs}
    if data.in_channels != 3:
        kwargs.setdefault("in_channels", data.in_channels)
    # A private random stream: the same seed gives the same network, and the caller's
    # global generator is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = models.create_model(source, **kwargs)
    return source, model.to(device).eval(), source


def _labels(entries: list[tuple[str, str]]) -> list[str]:
    """Model names, with the file name added where two sources share one."""
    names = [name for name, _ in entries]
    stems = [Path(src).stem for _, src in entries]
    out = []
    for name, src in entries:
        path = Path(src)
        if names.count(name) == 1:
            out.append(name)
        elif stems.count(path.stem) == 1:
            out.append(f"{name} ({path.stem})")
        else:
            out.append(f"{name} ({path.parent.name}/{path.stem})")
    return out


if __name__ == "__main__":
    exit_after(main())
