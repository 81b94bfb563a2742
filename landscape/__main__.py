"""The ``landscape`` console script: ``landscape COMMAND ...`` runs ``python -m
landscape.COMMAND ...`` (`COMMANDS` names each command's module and one-line help;
``landscape --help`` prints them). ``landscape models [PATTERN]`` prints a table of the
networks (``python -m landscape.models``, the networks package's own entry point).
"""

from __future__ import annotations

import difflib
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
    "pretrained": ("landscape.pretrained", "the checkpoints shipped in the package"),
    "connect": ("landscape.connect", "a low-loss curve between two minima (mode connectivity)"),
}


# Names of earlier versions, kept working.
ALIASES = {"legacy": "convert"}


def _models(argv: Sequence[str]) -> int:
    from landscape.models.__main__ import main as models_main

    return models_main(argv, prog="landscape models")


def _usage() -> str:
    lines = ["usage: landscape COMMAND [options]   (landscape COMMAND --help)", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
    lines += [f"  {'models':<11} a table of every network", "", "landscape --version"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(_usage())
        return 0
    if argv[:1] in (["-V"], ["--version"]):
        from landscape import __version__

        print(f"landscape {__version__}")
        return 0
    if not argv:  # a command is needed: the usage, as an error
        print(_usage(), file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "models":
        return _models(rest)
    command = ALIASES.get(command, command)
    if command not in COMMANDS:
        known = ", ".join([*COMMANDS, "models"])
        close = difflib.get_close_matches(command, [*COMMANDS, "models"], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        print(
            f"landscape: error: unknown command {command!r}{hint} (commands: {known})",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


def run() -> None:
    """The ``landscape`` program (the console script): a Ctrl-C or SIGTERM while a command
    loads stops it in one line, and none after its result changes the exit code
    (`landscape.cli.early`)."""
    from landscape.cli import early

    early.install()
    code = main()
    from landscape.cli.runner import exit_after

    exit_after(code)


if __name__ == "__main__":
    run()
