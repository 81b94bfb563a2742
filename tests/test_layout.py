"""The architecture, kept: command line on top, library in subpackages, one home per helper."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import landscape
from landscape.__main__ import ALIASES, COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "landscape"
COMMAND_MODULES = {
    "compute", "train", "plot", "view", "export", "metrics", "curves", "demo", "convert",
    "hessian", "eigendirs", "trajectory", "responses",
}  # fmt: skip


def imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (``from a import b`` gives a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def library_files() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.parent != PKG and p.parent.name != "cli")


def test_top_level_is_the_command_line_only():
    top = {p.stem for p in PKG.glob("*.py")}
    assert top == COMMAND_MODULES | {"__init__", "__main__"}
    # One dispatch table names every command once, each a module with main(argv).
    assert set(COMMANDS) == COMMAND_MODULES
    assert {m for m, _ in COMMANDS.values()} == {f"landscape.{c}" for c in COMMAND_MODULES}
    assert set(ALIASES.values()) <= set(COMMANDS)
    for name in COMMAND_MODULES:
        text = (PKG / f"{name}.py").read_text()
        assert "def main(" in text and 'if __name__ == "__main__":' in text, name


def test_library_never_imports_a_command_or_the_command_line():
    commands = {f"landscape.{c}" for c in COMMAND_MODULES} | {"landscape.__main__"}
    for path in library_files():
        bad = {n for n in imports(path) if n in commands or n.startswith("landscape.cli")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_models_imports_nothing_from_landscape():
    for path in sorted((ROOT / "models").rglob("*.py")):
        bad = {n for n in imports(path) if n.split(".")[0] == "landscape"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_one_home_for_each_helper():
    """Helpers that once existed two or three times, disagreeing, are defined once."""
    defined: dict[str, list[str]] = {}
    for path in [*PKG.rglob("*.py"), *(ROOT / "models").rglob("*.py")]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    for name in (
        "resolve_device",
        "load_model",
        "import_function",
        "atomic_path",
        "make_parent",
        "plot_path",
        "metrics_table",
        "json_object",
        "surface_figure",
    ):
        assert len(defined.get(name, [])) == 1, (name, defined.get(name))
    for gone in ("rank_device", "_resolve_device", "format_table", "parse_model_kwargs"):
        assert gone not in defined, (gone, defined[gone])
    # Distinct names for distinct constants.
    for name in ("METRICS", "PRECISIONS"):
        assert not any(re.search(rf"^{name} = ", p.read_text(), re.M) for p in PKG.rglob("*.py")), (
            name
        )


@pytest.mark.child
def test_public_api_resolves_and_import_stays_light():
    for name in landscape.__all__:
        assert getattr(landscape, name) is not None, name
    assert set(dir(landscape)) >= set(landscape.__all__)
    with pytest.raises(AttributeError):
        landscape.no_such_name  # noqa: B018
    heavy = "('torch', 'h5py', 'matplotlib')"
    code = f"import sys, landscape; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def notebook_imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        src = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom):
                found.append((node.module or "", [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                found += [(a.name, []) for a in node.names]
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_use_the_public_api_only(path):
    for module, names in notebook_imports(path):
        top = module.split(".")[0]
        assert top != "models", f"{path.name} imports models: use `from landscape import models`"
        if top != "landscape":
            continue
        assert module == "landscape", f"{path.name} imports {module}: use `from landscape import`"
        for name in names:
            assert name in landscape.__all__ and not name.startswith("_"), (path.name, name)


MYNET = """
import torch
from torch import nn

def build(num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, num_classes))
"""


@pytest.mark.child
@pytest.mark.parametrize("entry", ["console script", "python -m"])
def test_model_plugin_from_the_working_directory(tmp_path, entry):
    """``--model mod:fn`` finds mod.py in the current folder under both entry points
    (the console script starts without the working directory on sys.path)."""
    (tmp_path / "mynet.py").write_text(MYNET)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    args = ["--ckpt", "bare.pt", "--model", "mynet:build", "--samples", "8", "--x", "-1:1:3"]
    args += ["--out", "s.h5", "--quiet", "--device", "cpu"]
    script = Path(sys.executable).with_name("landscape")
    if entry == "console script":
        if not script.exists():
            pytest.skip("the landscape console script is not installed beside this Python")
        argv = [str(script), "compute", *args]
    else:
        argv = [sys.executable, "-m", "landscape.compute", *args]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "s.h5").exists()
