"""Options and argument types the commands share, each defined once.

Defaults are shown by `landscape.cli.runner.ArgumentParser` itself
(``ArgumentDefaultsHelpFormatter``), so a help string never repeats one by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from landscape.core.errors import InputError
from landscape.data import (
    DEFAULT_DATA_ROOT,
    DEFAULT_DATASET,
    SUBSETS,
    DataTensors,
    load_data_for,
)

__all__ = [
    "FIGURE_FORMATS",
    "MAX_DPI",
    "MAX_SEED",
    "add_data_arguments",
    "add_model_arguments",
    "add_overwrite_argument",
    "check_suffix",
    "data_from_args",
    "fields_from_args",
    "dpi",
    "finite_float",
    "json_object",
    "positive_float",
    "positive_int",
    "seed",
    "set_default",
]

FIGURE_FORMATS = (".png", ".pdf", ".svg")


def add_overwrite_argument(parser: argparse.ArgumentParser, what: str = "the output") -> None:
    """``--overwrite``: replace an existing file that this command did not write."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace {what} even when it exists and was not written by this command",
    )


MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed takes
MAX_DPI = 2400  # a 6.4x4.8-inch figure is then 15360x11520 pixels, 0.5 GB of RGBA


def _int_between(text: str, low: int, high: int, high_text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high_text}, got {text}")
    return value


def seed(text: str) -> int:
    """argparse type of a random seed: an integer in 0 .. 2**63 - 1."""
    return _int_between(text, 0, MAX_SEED, "2**63 - 1")


def dpi(text: str) -> int:
    """argparse type of a figure resolution: an integer in 1 .. `MAX_DPI`."""
    return _int_between(text, 1, MAX_DPI, str(MAX_DPI))


def finite_float(text: str) -> float:
    """argparse type of a finite number (not nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type of a finite number above 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type of a count: an integer of at least 1."""
    return _int_between(text, 1, 2**63 - 1, "2**63 - 1")


def json_object(text: str) -> dict[str, Any]:
    """argparse type of ``--model-kwargs``-like options: a JSON object, as a dict."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def set_default(parser: argparse.ArgumentParser, dest: str, value: Any, help: str) -> None:
    """Change the default and help text of an option added elsewhere (e.g. ``--samples``)."""
    for action in parser._actions:
        if action.dest == dest:
            action.default, action.help = value, help
            return
    raise AssertionError(f"no option {dest!r}")


def check_suffix(path: str | Path, suffixes: tuple[str, ...], flag: str) -> Path:
    """`path` as a Path when it ends in one of `suffixes`; else a one-line error naming `flag`."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{flag} must end in {' or '.join(suffixes)}; got {str(path)!r}")
    return path


def add_model_arguments(parser: Any) -> None:
    """Add ``--model`` and ``--model-kwargs`` (to a parser or an argument group)."""
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="network name or module.path:function; needed for a bare state_dict, or to "
        "trust a checkpoint that names your own builder",
    )
    parser.add_argument(
        "--model-kwargs",
        type=json_object,
        default={},
        metavar="JSON",
        help="builder arguments, e.g. '{\"num_classes\": 100}'",
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dataset --data-root --download --samples --subset --data-seed``."""
    g = parser.add_argument_group("data")
    g.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        metavar="NAME",
        help="embedded (default: 5,000 / 1,000 CIFAR-10 images shipped in the package) | "
        "cifar10 | cifar100 | imagefolder:DIR | module.path:function",
    )
    g.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help=f"folder of the CIFAR files (default ./{DEFAULT_DATA_ROOT})",
    )
    g.add_argument("--download", action="store_true", help="download CIFAR files that are missing")
    g.add_argument(
        "--samples",
        type=positive_int,
        default=None,
        metavar="N",
        help="use N samples (default: all)",
    )
    g.add_argument(
        "--subset",
        choices=SUBSETS,
        default="first",
        help="which N samples: the first N (default) or a seeded class-stratified random subset",
    )
    g.add_argument(
        "--data-seed",
        type=int,
        default=0,
        metavar="INT",
        help="seed of --subset stratified (default 0)",
    )


def fields_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """The fields of dataclass `cls` that `args` has an option for, by name, and `overrides`.

    A settings record and its command share field names, so no field is copied by hand.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    found = {k: v for k, v in vars(args).items() if k in names}
    return {**found, **overrides}


def data_from_args(
    args: argparse.Namespace,
    split: str,
    *,
    at_most: int,
    config: dict[str, Any] | None = None,
) -> DataTensors:
    """The samples the options of `add_data_arguments` name (`load_data_for`)."""
    return load_data_for(
        split,
        at_most=at_most,
        config=config,
        dataset=args.dataset,
        data_root=args.data_root,
        download=args.download,
        samples=args.samples,
        subset=args.subset,
        data_seed=args.data_seed,
    )
