"""The notebooks run top to bottom in their small configuration (nbclient, CPU, offline).

Each notebook reads ``LANDSCAPE_NOTEBOOK_SMALL=1`` (a tiny configuration) and writes its files
under ``LANDSCAPE_NOTEBOOK_OUT``. The kernel is this interpreter, whatever kernelspecs the
machine has: a ``python3`` kernelspec naming ``sys.executable`` is written to a temporary
folder that ``JUPYTER_PATH`` puts first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import REPO
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from landscape import (
    barrier_intervals,
    comparison_lines,
    intervals_table,
    measure,
    metrics_table,
    read_surface,
    surface_metrics,
)

NOTEBOOKS = REPO / "notebooks"
# notebook -> files it must write into its output folder
EXPECTED = {
    "skip_vs_noskip": ["resnet20_2d.h5", "plain20_2d.h5", "resnet20_1d.h5", "view.html"],
    "degradation": ["runs/plain56/final.pt", "runs/resnet20/metrics.csv"],
    "trajectories": ["run/final.pt", "pca_directions.h5", "path_surface.h5"],
    "language_model": ["lm_all.h5", "lm_attention.h5"],
}


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Name of a kernelspec that runs this interpreter, with the small configuration set."""
    folder = tmp_path / "jupyter"
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(folder))
    monkeypatch.setenv("LANDSCAPE_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("LANDSCAPE_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # fair to a small shared machine
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
    return "python3"


def test_every_notebook_is_tested() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


@pytest.mark.child
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_in_small_configuration(name: str, kernel: str, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    work = tmp_path / "cwd"  # nothing is written beside the notebooks
    work.mkdir()
    client = NotebookClient(
        nb, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(work)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    out = tmp_path / "out" / name
    for file in EXPECTED[name]:
        assert (out / file).stat().st_size > 0, file
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 2, f"{name}: only {len(figures)} figures"


def test_skip_vs_noskip_shows_the_published_56_layer_results() -> None:
    """The committed outputs come from the full configuration, on the files of docs/results:
    its metrics, intervals, verdicts and seed spread are what the library computes from
    them now (bootstrap intervals are seeded), not the small configuration's 20 layers."""
    results = REPO / "docs" / "results"
    names = ["resnet56", "plain56"]
    pair = [results / f"{name}_51x51.h5" for name in names]
    seeds = sorted(results.glob("*56_15x15_seed*.h5"))
    if not all(f.is_file() for f in pair) or len(seeds) != 6:
        pytest.skip("docs/results lacks the 56-layer files: run scripts/results56.sh")
    nb = nbformat.read(NOTEBOOKS / "skip_vs_noskip.ipynb", as_version=4)

    def stdout(cells) -> str:
        return "".join(
            o.get("text", "")
            for cell in cells
            for o in cell.outputs
            if o.output_type == "stream" and o.name == "stdout"
        )

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    # Section 7 compares the 20-layer pairs (the published curves of scripts/connect.sh).
    connect = [cell for cell in code if "barrier_intervals" in cell.source]
    printed = stdout([cell for cell in code if cell not in connect])
    assert "resnet56" in printed and "plain56" in printed and "resnet20" not in printed
    barriers = stdout(connect)
    for net in ("resnet20", "plain20"):
        curve = results / f"{net}_curve.h5"
        if curve.is_file():
            found = barrier_intervals(
                read_surface(curve), read_surface(results / f"{net}_curve_line.h5")
            )
            assert f"curve {found['curve']}, line - curve {found['line - curve']}" in barriers
    surfaces = [read_surface(f) for f in pair]
    rows = [(name, surface_metrics(s)) for name, s in zip(names, surfaces, strict=True)]
    assert metrics_table(rows) in printed
    measured = measure(surfaces)
    assert intervals_table(measured) in printed
    assert "\n".join(comparison_lines(measured)) in printed
    spread = measure([read_surface(f) for f in seeds])
    assert intervals_table(spread) in printed
    assert "\n".join(comparison_lines(spread)) in printed
