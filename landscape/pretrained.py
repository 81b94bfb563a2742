"""``python -m landscape.pretrained``: the checkpoints shipped in the package, with what
they were trained on and how well they do (``--ckpt pretrained:NAME`` loads one).

Exit codes: 0 done; 2 bad input (one line on stderr).
"""

from __future__ import annotations

from collections.abc import Sequence

from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.checkpoints import list_pretrained, resolve_checkpoint
from landscape.models import read_checkpoint

__all__ = ["build_parser", "main", "pretrained_table"]


def build_parser() -> ArgumentParser:
    return ArgumentParser(
        prog="landscape pretrained",
        description="The checkpoints shipped in the package: network, epochs, data and "
        "errors; load one with --ckpt pretrained:NAME.",
    )


def pretrained_table() -> str:
    """One row per shipped checkpoint: its name, network, epochs, training data, final
    training and test error, and file size."""
    width = max([22, *(len(f"pretrained:{n}") for n in list_pretrained())])
    header = (
        f"{'name':<{width}} {'network':<10} {'epochs':>6} {'train err':>9} {'test err':>8} "
        f"{'MB':>5}  data"
    )
    rows = [header, "-" * len(header)]
    for name in list_pretrained():
        path = resolve_checkpoint(f"pretrained:{name}")
        ckpt = read_checkpoint(path)
        metrics, data = ckpt.get("metrics", {}), ckpt.get("dataset", {})

        def pct(key: str, metrics: dict = metrics) -> str:
            value = metrics.get(key)
            return f"{100 * value:.2f}%" if isinstance(value, int | float) else "-"

        train_n, test_n = data.get("n"), (data.get("test") or {}).get("n")
        where = str(data.get("dataset", "?")).replace("imagefolder:data/cifar10", "CIFAR-10")
        sizes = f" ({train_n:,} train / {test_n:,} test)" if train_n and test_n else ""
        rows.append(
            f"{'pretrained:' + name:<{width}} {str(ckpt.get('model', '?')):<10} "
            f"{ckpt.get('epoch', '-'):>6} {pct('train_error'):>9} {pct('test_error'):>8} "
            f"{path.stat().st_size / 1e6:>5.1f}  {where}{sizes}"
        )
    return "\n".join(rows) if len(rows) > 2 else "no pretrained checkpoints"


def main(argv: Sequence[str] | None = None) -> int:
    def run() -> int:
        build_parser().parse_args(argv)
        print(pretrained_table())
        return 0

    return guarded("landscape pretrained", run)


if __name__ == "__main__":
    exit_after(main())
