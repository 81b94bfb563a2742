"""`option`: a settings record's field that also declares its command-line flag.

Records (`SurfaceConfig`, `TrainConfig`, `DataSpec`) know nothing of argparse; their
fields carry the flag's help, option group and argparse settings as metadata, and
`landscape.cli.options.add_fields` makes the flags from them. A record and its command
then cannot disagree on a name or a default, and no flag is declared twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["option"]


def option(
    help: str,
    *,
    group: str | None = None,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    **argparse: Any,
) -> Any:
    """A dataclass field with a flag ``--field-name``.

    Args:
        help: the flag's help text (argparse adds the default).
        group: the option group of ``--help`` it is listed in (None: the parser's own).
        default, default_factory: the field's default, also the flag's.
        **argparse: what argparse takes (``metavar``, ``choices``, ``action``,
            ``required``), and ``type`` as a name of `landscape.cli.options.ARG_TYPES`,
            ``flag`` for another spelling (``--no-augment``), ``cli_default`` where the
            command line's default is spelled otherwise (``"train"`` for ``("train",)``).

    Returns:
        The `dataclasses.field`.
    """
    metadata = {"group": group, "help": help, **argparse}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)
