"""Options and argument types the commands share, each defined once.

Defaults are shown by `landscape.cli.runner.ArgumentParser` itself
(``ArgumentDefaultsHelpFormatter``), so a help string never repeats one by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from landscape.core.errors import InputError
from landscape.data.spec import DATA_FIELDS, DataSpec
from landscape.surface.config import SurfaceConfig

R = TypeVar("R")

__all__ = [
    "FIGURE_FORMATS",
    "MAX_DPI",
    "MAX_SEED",
    "ARG_TYPES",
    "add_data_arguments",
    "add_fields",
    "add_model_arguments",
    "add_overwrite_argument",
    "check_suffix",
    "data_from_args",
    "record_from_args",
    "dpi",
    "finite_float",
    "fractions",
    "json_object",
    "option_group",
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


def fractions(text: str) -> tuple[float, ...]:
    """argparse type of a list of fractions in (0, 1), e.g. ``0.5,0.75``."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected fractions like 0.5,0.75, got {text!r}"
        ) from None
    if not values or not all(0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected fractions in (0, 1) like 0.5,0.75, got {text!r}"
        )
    return values


def json_object(text: str) -> dict[str, Any]:
    """argparse type of ``--model-kwargs``-like options, as a dict: a JSON object
    (``'{"num_classes": 100}'``) or ``key=value`` pairs (``num_classes=100,width=2``), each
    value read as JSON where it is one (``100``, ``true``, ``null``) and as text otherwise."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise argparse.ArgumentTypeError(f"is not valid JSON ({e.msg}): {text!r}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
        return value
    pairs = {}
    for item in filter(None, (p.strip() for p in stripped.split(","))):
        key, eq, raw = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise argparse.ArgumentTypeError(
                f"takes key=value pairs (num_classes=100,width=2) or a JSON object; got {text!r}"
            )
        try:
            pairs[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            pairs[key.strip()] = raw.strip()
    return pairs


# Argument types a record's field may name in its metadata (records know no argparse).
ARG_TYPES: Mapping[str, Callable[[str], Any]] = {
    "seed": seed,
    "positive_int": positive_int,
    "positive_float": positive_float,
    "finite_float": finite_float,
    "json_object": json_object,
    "fractions": fractions,
    "int": int,
    "float": float,
}


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
    """Add ``--model`` and ``--model-kwargs`` (to a parser or an argument group), as
    `SurfaceConfig` declares them."""
    add_fields(parser, SurfaceConfig, only=("model", "model_kwargs"), grouped=False)


def add_fields(
    parser: Any,
    cls: type,
    *,
    only: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    grouped: bool = True,
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """Add one flag per field of dataclass `cls` that declares one in its metadata.

    A field's metadata holds its help, its option group and argparse's settings
    (metavar, choices, action, a type named in `ARG_TYPES`, required); its default is the
    field's (``cli_default`` where the command line spells it otherwise). The flag is
    ``--field-name``. So a record and its command cannot disagree on names or defaults.

    Args:
        parser: an argparse parser (or group) to add to.
        cls: the settings record.
        only, skip: the fields to add (default: every field with a help text).
        grouped: put each flag in its field's option group (made once per title);
            else everything goes to `parser`.
        defaults: defaults that differ for this command, by field name.

    Returns:
        The names (``dest``) of the flags added.
    """
    groups: dict[str | None, Any] = {None: parser}
    for action_group in getattr(parser, "_action_groups", []):
        groups.setdefault(action_group.title, action_group)
    added = []
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        if "help" not in meta or f.name in skip or (only is not None and f.name not in only):
            continue
        group = meta.pop("group", None)
        if not grouped:
            group = None
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        if "cli_default" in meta:
            default = meta.pop("cli_default")
        elif f.default is dataclasses.MISSING:
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = f.default
        if defaults and f.name in defaults:
            default = defaults[f.name]
        if "type" in meta:
            meta["type"] = ARG_TYPES[meta["type"]]
        if meta.get("required"):
            default = None
        flag = meta.pop("flag", "--" + f.name.replace("_", "-"))
        groups[group].add_argument(flag, dest=f.name, default=default, **meta)
        added.append(f.name)
    return added


def option_group(parser: argparse.ArgumentParser, title: str) -> Any:
    """The parser's option group `title`, made now if it has none (a command declares its
    groups first, in their --help order, then adds flags to them by title)."""
    found = next((g for g in parser._action_groups if g.title == title), None)
    return found or parser.add_argument_group(title)


def add_data_arguments(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """Add the flags of `DataSpec`: ``--dataset --data-root --download --samples --subset
    --data-seed`` (in a group "data"); `defaults` changes a default for this command."""
    add_fields(option_group(parser, "data"), DataSpec, grouped=False, defaults=defaults)


def record_from_args(cls: type[R], args: argparse.Namespace, **overrides: Any) -> R:
    """The record `cls` the options in `args` fill, with `overrides`: every field that has
    an option, by name; a ``data`` field is the `DataSpec` of the data options."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == "data" and hasattr(args, "dataset"):
            values["data"] = data_from_args(args)
        elif hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return cls(**{**values, **overrides})


def data_from_args(args: argparse.Namespace, config: Mapping[str, Any] | None = None) -> DataSpec:
    """The `DataSpec` the data options name; options left unset (None) take a surface's
    settings where its `config` is given, else the defaults (`DataSpec.from_config`)."""
    given = {name: getattr(args, name) for name in DATA_FIELDS}
    given["download"] = given["download"] or None  # unset unless given
    return DataSpec.from_config(config, **given)


TASK_HELP = (
    "a function returning {'loss_fn': f(model, batch) -> per-sample losses, 'data' "
    "(optional: batches, or split -> batches)}: the curvature of that loss instead of --loss "
    "(docs/api.md section 9); without data, the --dataset images in (x, y) batches"
)


def add_task_argument(parser: Any) -> None:
    """``--task MODULE:FUNCTION``, as ``landscape compute`` has it (`SurfaceConfig.task`)."""
    parser.add_argument("--task", default=None, metavar="MODULE:FUNCTION", help=TASK_HELP)


def task_data_from_args(
    args: argparse.Namespace, split: str, *, at_most: int
) -> tuple[Any, Any, dict[str, Any]]:
    """``(task, data, info)`` of a command with ``--task``: the task and its data for
    `split` (the data options' images where it brings none), or ``(None, DataTensors,
    info)`` without ``--task``. A task refuses ``--loss`` (its loss_fn is the loss)."""
    if not getattr(args, "task", None):
        data = data_from_args(args).load(split, at_most=at_most)
        return None, data, data.info
    if getattr(args, "loss", None):
        raise InputError(f"--loss and --task {args.task} both name the loss; drop --loss")
    from landscape.surface.engine import load_task

    task, data = load_task(args.task)
    if isinstance(data, Mapping):
        if split not in data:
            raise InputError(
                f"--task {args.task}'s data has no {split!r} split (it has "
                f"{', '.join(map(repr, data)) or 'none'}); pass --split with one of them"
            )
        data = data[split]
    if data is None:
        images = data_from_args(args).load(split, at_most=at_most)
        return task, images, {"task": args.task, **images.info}
    return task, data, {"task": args.task}
