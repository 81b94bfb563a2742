"""docs/results.md quotes `landscape metrics` of the published files, word for word.

The numbers in the results are what the project prints for the files in docs/results
(the 56-layer surfaces at 51x51 and the spread over direction seeds), not numbers typed
by hand: this recomputes them (bootstrap intervals included: they are seeded) and
finds them in the stored outputs and in the document.
"""

from __future__ import annotations

import pytest
from helpers import REPO

from landscape import metrics

RESULTS = REPO / "docs" / "results"
CASES = {
    "metrics_56_51x51.txt": ["resnet56_51x51.h5", "plain56_51x51.h5"],
    "metrics_56_seeds.txt": [
        f"{net}56_15x15_seed{seed}.h5" for net in ("plain", "resnet") for seed in (0, 1, 2)
    ],
}


@pytest.mark.parametrize("stored", sorted(CASES))
def test_results_quote_what_metrics_prints(stored, capsys, monkeypatch):
    files = [RESULTS / name for name in CASES[stored]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"docs/results lacks {missing}: run scripts/results56.sh")
    monkeypatch.chdir(REPO)  # the files are named as the script names them
    assert metrics.main([str(f.relative_to(REPO)) for f in files]) == 0
    printed = capsys.readouterr().out
    assert printed == (RESULTS / stored).read_text()
    doc = (REPO / "docs" / "results.md").read_text()
    assert printed.strip() in doc, f"docs/results.md does not quote {stored} as printed"


def test_coverage_table_is_quoted_and_every_printed_interval_covers():
    """docs/results.md quotes benchmarks/coverage.py's table (docs/results/coverage_56_51x51.md)
    and every interval `landscape metrics` prints (`INTERVAL_METHODS`) has a row there with
    coverage within 0.90-0.98 at each sample size, network and paired difference; metrics
    without a method have only "not printed" rows."""
    from landscape.analysis.uncertainty import INTERVAL_METHODS, KEY_METRICS

    stored = (RESULTS / "coverage_56_51x51.md").read_text()
    table = stored[stored.index("| metric") :].strip()
    assert table in (REPO / "docs" / "results.md").read_text()
    printed = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| "):
            continue
        name, method, *cells = [c.strip() for c in line.strip("|").split("|")]
        assert name in KEY_METRICS, name
        if "(not printed)" not in method:
            printed[name] = (method, [float(c) for c in cells])
    assert {k: v[0] for k, v in printed.items()} == INTERVAL_METHODS
    for name, (_, cells) in printed.items():
        assert len(cells) == 6 and all(0.90 <= c <= 0.98 for c in cells), (name, cells)


def test_results_quote_the_values_of_the_files():
    """The table of the four 2-D files in docs/results.md holds each file's loss at θ* and
    saddle fraction as `surface_metrics` computes them (plain20: 0.37045 is 0.370)."""
    from landscape.analysis.metrics import surface_metrics
    from landscape.io.surface_file import read_surface

    doc = (REPO / "docs" / "results.md").read_text()
    doc = doc[doc.index("| surface | loss at θ\\* |") :]  # the metrics table
    for net in ("resnet56", "plain56", "resnet20", "plain20"):
        path = RESULTS / f"{net}_2d.h5"
        if not path.is_file():
            pytest.skip(f"docs/results lacks {path.name}")
        m = surface_metrics(read_surface(path))
        row = next(line for line in doc.splitlines() if line.startswith(f"| {net} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{m['center_loss']:.3f}", (net, cells)
        assert cells[4] == f"{m['saddle_fraction']:.3f}", (net, cells)


def test_results_quote_the_barriers_metrics_prints(capsys, monkeypatch):
    """The mode-connectivity block of docs/results.md is `landscape metrics` on the published
    curve and line files (scripts/connect.sh), as printed (seeded bootstrap)."""
    names = [f"{net}_curve{part}.h5" for net in ("resnet20", "plain20") for part in ("", "_line")]
    files = [RESULTS / name for name in names]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"docs/results lacks {missing}: run scripts/connect.sh")
    monkeypatch.chdir(REPO)
    assert metrics.main([str(f.relative_to(REPO)) for f in files]) == 0
    printed = capsys.readouterr().out
    block = printed[printed.index("mode connectivity:") :].strip()
    assert block.count(": barrier ") == 4
    assert block in (REPO / "docs" / "results.md").read_text()
