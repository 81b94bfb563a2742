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
    "hessian", "eigendirs", "trajectory", "responses", "pretrained", "connect",
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


# ---------------------------------------------------------------- layers
# Below the command line: core < io < surface, analysis < viz. A layer may import the
# layers below it, never one above (the reader of a file must not need the code that
# draws it); `models`, `data` and `training` sit beside them.
LAYER_BANS = {
    "io": ("landscape.viz", "landscape.analysis", "landscape.surface", "landscape.training"),
    "surface": ("landscape.viz", "landscape.analysis"),
    "analysis": ("landscape.viz",),
    "core": ("landscape.io", "landscape.surface", "landscape.analysis", "landscape.viz"),
}


@pytest.mark.parametrize("layer", sorted(LAYER_BANS))
def test_each_layer_imports_only_the_layers_below(layer):
    for path in sorted((PKG / layer).rglob("*.py")):
        bad = sorted(n for n in imports(path) if n.startswith(LAYER_BANS[layer]))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}: an upward import"


# The contour-level rule: every name of it is defined in viz/levels.py alone, and both
# products that draw contours (the static figures and the viewer's page) take it from there.
LEVEL_RULE = (
    "resolve_scale", "Scale", "page_rule", "_nice_levels", "LEVEL_PRESETS", "DEFAULT_LEVELS",
    "MAX_LEVELS", "SKEW_FRACTION", "BASIN_LEVELS", "LOG_SUBS",
)  # fmt: skip


def defined_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_level_rule_lives_in_one_module_used_by_figures_and_page():
    homes = {
        name: [str(p.relative_to(ROOT)) for p in PKG.rglob("*.py") if name in defined_names(p)]
        for name in LEVEL_RULE
    }
    for name, where in homes.items():
        assert where == ["landscape/viz/levels.py"], (name, where)
    for product in ("figures", "viewer"):
        used = imports(PKG / "viz" / f"{product}.py")
        assert any(n.startswith("landscape.viz.levels.") for n in used), product
        assert not any(n.startswith("landscape.viz.figures") for n in used), product
    # The page's script reads the constants from the data, never a copy of its own.
    script = (PKG / "viz" / "viewer_assets" / "viewer.js").read_text()
    assert "D.levels.count" in script and "D.levels.presets" in script


def test_commands_build_no_figures_of_their_own():
    """Figure builders live in viz/, public, so a notebook can draw what a command saves."""
    for name in sorted(COMMAND_MODULES):
        tree = ast.parse((PKG / f"{name}.py").read_text())
        built = [
            n.lineno
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and (
                (isinstance(n.func, ast.Name) and n.func.id == "Figure")
                or (isinstance(n.func, ast.Attribute) and n.func.attr in ("subplots", "figure"))
            )
        ]
        assert not built, f"landscape/{name}.py builds a figure at lines {built}: move it to viz/"


# Modules outside io/ that may write files themselves, and why. Everything else that
# writes a file format goes through io/ (or core/files.py, the atomic-write primitives).
WRITES_ALLOWED = {
    # checkpoints are the networks' own format, and `models` imports nothing of landscape
    "models/checkpoint.py": "the checkpoint format, which models/ must own",
    "models/atomic.py": "models/' own atomic write (it may not import core/files.py)",
    "landscape/viz/viewer.py": "the viewer page is viz's product (HTML), not a data format",
    "landscape/demo.py": "the demo's plain-text report beside its figures",
    "landscape/training/trainer.py": "the run folder (metrics.csv, config.json): a follow-up",
}


def file_writes(path: Path) -> list[str]:
    """Calls that open an HDF5 file, dump JSON to a file, write text through core/files.py,
    or open a file for writing."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (
            f"{func.value.id}.{func.attr}"
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else func.id
            if isinstance(func, ast.Name)
            else ""
        )
        if name in ("h5py.File", "json.dump", "write_json", "atomic_write_text"):
            found.append(f"{name} at line {node.lineno}")
        elif name in ("open", "Path.open") or name.endswith(".open"):
            mode = node.args[1] if name == "open" and len(node.args) > 1 else None
            mode = mode or (node.args[0] if name != "open" and node.args else None)
            mode = next((k.value for k in node.keywords if k.arg == "mode"), mode)
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
                if set(mode.value) & set("wax+"):
                    found.append(f"open(..., {mode.value!r}) at line {node.lineno}")
    return found


def test_every_file_format_lives_in_io():
    files = [*PKG.rglob("*.py"), *(ROOT / "models").rglob("*.py")]
    for path in sorted(set(files)):
        rel = str(path.relative_to(ROOT))
        if rel.startswith("landscape/io/") or rel == "landscape/core/files.py":
            continue
        if rel in WRITES_ALLOWED or rel.startswith("landscape/models/"):
            continue  # landscape/models is the top-level models/, checked under its own name
        writes = file_writes(path)
        assert not writes, f"{rel} writes a file itself ({', '.join(writes)}): move it to io/"


def test_the_file_check_sees_writes(tmp_path):
    """The check above would catch each kind of write it looks for."""
    code = (
        "import h5py, json\nh5py.File(p, 'r+')\njson.dump(d, f)\nopen(p, 'w')\n"
        "path.open('a')\nopen(p)\nwrite_json(p, {})\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(code)
    assert len(file_writes(probe)) == 5
