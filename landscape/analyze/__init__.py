"""Analysis commands over the analysis library: Hessian, eigen-directions, PCA paths, responses.

    landscape hessian ...     = python -m landscape.analyze hessian ...
    landscape eigendirs ...   = python -m landscape.analyze eigendirs ...
    landscape trajectory ...  = python -m landscape.analyze trajectory ...
    landscape responses ...   = python -m landscape.analyze responses ...

Each is a thin command-line module (``main(argv) -> int``) that calls
`landscape.hessian`, `landscape.trajectory` or `landscape.responses`, stores the
result (JSON, a directions file, or datasets in a surface file) and draws a figure.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from ..cliutil import bad_input

__all__ = ["COMMANDS", "main"]

PROG = "python -m landscape.analyze"
COMMANDS = {
    "hessian": "Hessian eigenvalues and trace at theta*, or a curvature map of a surface",
    "eigendirs": "the top-2 Hessian eigenvectors as a directions file",
    "trajectory": "PCA directions of a training path, with its projection",
    "responses": "layer-response std and gradient norms (He et al. 2015, Fig. 7)",
}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m landscape.analyze COMMAND [options]``: run one analysis command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        usage = f"usage: {PROG} COMMAND [options]   (the same as landscape COMMAND ...)"
        lines = [usage, "", "commands:"]
        lines += [f"  {name:<11} {text}" for name, text in COMMANDS.items()]
        print("\n".join(lines))
        return 0
    if argv[0] not in COMMANDS:
        return bad_input(PROG, f"unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}")
    module = importlib.import_module(f"{__name__}.{argv[0]}")
    return int(module.main(argv[1:]) or 0)
