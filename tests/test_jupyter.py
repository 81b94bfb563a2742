"""The library as a Jupyter user meets it: figures show as the cell's result without
``%matplotlib inline``, and progress off means no progress bar and no tqdm warning."""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from surfaces import make_surface_file
from test_notebooks import kernel  # noqa: F401  (the fixture: a kernel of this interpreter)

from landscape.core.progress import NoBar, progress_bar

NOTEBOOK = """\
import warnings
import landscape as ls
surface = ls.read_surface({path!r})
---
ls.surface_figure([surface], kind="contour")
---
import torch
from torch import nn
model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
data = (torch.randn(8, 3, 4, 4), torch.arange(8) % 10)
config = ls.SurfaceConfig(x=(-1, 1, 3), y=(-1, 1, 2))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    s = ls.compute_surface(model, {{"train": data}}, config, out="s.h5", progress=False)
print("warnings:", [f"{{w.category.__name__}}: {{w.message}}" for w in caught])
print("points:", int(s.computed.sum()))
"""


@pytest.mark.child
def test_a_returned_figure_is_an_image_in_a_notebook_and_progress_off_is_silent(
    tmp_path: Path,
    kernel: str,  # noqa: F811
) -> None:
    """No ``%matplotlib inline``, pyplot never imported: the figure cell's result is a PNG
    (it printed ``<Figure size ...>`` before), and a computation with progress off writes
    nothing to stderr and warns nothing (``TqdmWarning: IProgress not found`` came from
    importing tqdm.auto in a kernel without ipywidgets)."""
    path = make_surface_file(tmp_path, "bowl.h5", shape=(9, 7), label="resnet56")
    cells = NOTEBOOK.format(path=str(path)).split("---\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    work = tmp_path / "cwd"
    work.mkdir()
    client = NotebookClient(
        nb, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    outputs = [cell.outputs for cell in nb.cells]
    assert not [o for out in outputs for o in out if o.output_type == "error"]
    (figure,) = [o for o in outputs[1] if o.output_type == "execute_result"]
    png = figure["data"].get("image/png")
    assert png, f"the figure cell shows no image: {figure['data'].keys()}"
    assert len(png) > 1000  # base64 of a drawn figure, not an empty one
    printed = "".join(o.get("text", "") for o in outputs[2] if o.output_type == "stream")
    errors = "".join(o.get("text", "") for o in outputs[2] if o.get("name") == "stderr")
    assert "points: 6" in printed
    assert "warnings: []" in printed, printed
    assert "Tqdm" not in errors and "IProgress" not in errors, errors


def test_progress_off_makes_no_tqdm_bar_and_no_tqdm_warning(monkeypatch: pytest.MonkeyPatch):
    """In a Jupyter kernel without ipywidgets (faked here: the modules tqdm.auto looks
    at), neither a silent bar nor a shown one warns; a silent one is no tqdm at all."""
    shell = type("ZMQInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    for name in ("tqdm.auto", "tqdm.autonotebook", "tqdm.notebook"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    real_find_spec = __import__("importlib.util").util.find_spec
    monkeypatch.setattr(
        "importlib.util.find_spec",
        lambda name, *a: None if name == "ipywidgets" else real_find_spec(name, *a),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        silent = progress_bar(False, total=5, desc="x")
        with silent:
            silent.update(2)
            silent.set_postfix(loss="1")
        assert isinstance(silent, NoBar) and silent.n == 2
        shown = progress_bar(True, total=2, desc="y", disable=False)
        with shown:
            shown.update(2)
        assert type(shown).__module__ == "tqdm.std"


def test_library_code_creates_no_bar_with_progress_off(tmp_path, monkeypatch):
    """compute_surface with progress=False never builds a tqdm bar (so nothing can warn
    or print, in a notebook or not)."""
    import tqdm.std

    import landscape as ls

    made = []
    monkeypatch.setattr(tqdm.std.tqdm, "__init__", lambda self, *a, **k: made.append(k))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10))
    data = (torch.randn(4, 3, 2, 2), torch.arange(4))
    config = ls.SurfaceConfig(x=(-1, 1, 2))
    ls.compute_surface(model, {"train": data}, config, out=tmp_path / "s.h5", progress=False)
    assert made == []
