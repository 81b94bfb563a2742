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
