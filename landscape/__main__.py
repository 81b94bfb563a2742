"""The ``landscape`` console script: ``landscape COMMAND ...`` runs ``python -m
landscape.COMMAND ...`` (`COMMANDS` names each command's module and one-line help;
``landscape --help`` prints them). Two more need no module of their own: ``landscape
models [PATTERN]`` prints a table of the networks, ``landscape pretrained`` the
checkpoints shipped in the package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

# Subcommand -> (module with main(argv), one-line help). Imported only when used.
COMMANDS = {
    "compute": ("landscape.compute", "compute a 1-D or 2-D loss surface into an HDF5 file"),
    "train": ("landscape.train", "train a network with per-epoch checkpoints"),
    "plot": ("landscape.plot", "static figures (PNG/PDF/SVG) of surface files"),
    "view": ("landscape.view", "an interactive HTML viewer comparing surfaces"),
    "export": ("landscape.export", "export surfaces to VTK (ParaView) or CSV"),
    "convert": ("landscape.convert", "convert a surface file of the original loss-landscape code"),
    "metrics": ("landscape.metrics", "a table of surface metrics, one row per file"),
    "curves": ("landscape.curves", "training / test error curves of several runs"),
    "demo": ("landscape.demo", "the skip vs no-skip demo of make demo"),
    "hessian": (
        "landscape.hessian",
        "Hessian eigenvalues and trace at theta*, or a curvature map of a surface",
    ),
    "eigendirs": ("landscape.eigendirs", "the top-2 Hessian eigenvectors as directions"),
    "trajectory": ("landscape.trajectory", "PCA directions of a training path"),
    "responses": ("landscape.responses", "layer-response std and gradient norms"),
}


# Names of earlier versions, kept working.
ALIASES = {"legacy": "convert"}


def _models(argv: Sequence[str]) -> int:
    from landscape.models import models_table

    print(models_table(argv[0] if argv else "*"))
    return 0


def _pretrained(argv: Sequence[str]) -> int:
    from landscape.core.checkpoints import list_pretrained

    names = list_pretrained()
    print("\n".join(f"pretrained:{n}" for n in names) if names else "no pretrained checkpoints")
    return 0


def _usage() -> str:
    lines = ["usage: landscape COMMAND [options]   (landscape COMMAND --help)", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
    lines += [
        f"  {'models':<11} a table of every network",
        f"  {'pretrained':<11} list shipped checkpoints",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "models":
        return _models(rest)
    if command == "pretrained":
        return _pretrained(rest)
    command = ALIASES.get(command, command)
    if command not in COMMANDS:
        known = ", ".join([*COMMANDS, "models", "pretrained"])
        print(f"landscape: error: unknown command {command!r}; commands: {known}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
