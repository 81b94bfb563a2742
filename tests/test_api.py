"""The public Python API as a notebook user meets it: the README's code, plain arguments."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, subprocess_env

import landscape as ls


def readme_python() -> str:
    text = (REPO / "README.md").read_text()
    return re.search(r"From Python.*?```python\n(.*?)```", text, re.S).group(1)


def test_readme_python_snippet_runs(tmp_path, monkeypatch, capsys):
    """The README's code, as written, on fewer samples and points (same calls, seconds)."""
    code = readme_python()
    small = code.replace("samples=500", "samples=16").replace("(-1, 1, 11)", "(-1, 1, 3)")
    small = small.replace("(11, 11)", "(3, 3)")
    assert small.count("samples=16") == 1 and small.count("(-1, 1, 3)") == 2
    monkeypatch.chdir(tmp_path)
    exec(compile(small, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "(3, 3)" in out and "resnet20" in out
    for name in ("resnet20.h5", "resnet20.png", "resnet20.html"):
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.mark.slow
def test_readme_python_snippet_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_python(), "README.md", "exec"), {})
    assert ls.read_surface(tmp_path / "resnet20.h5").shape == (11, 11)


def test_config_takes_plain_python_values():
    a = ls.SurfaceConfig(split="train,test", x=(-1, 1, 5), y=np.linspace(-0.5, 0.5, 3))
    assert a.split == ("train", "test") and a.x == "-1:1:5" and a.y == "-0.5:0.5:3"
    assert ls.SurfaceConfig(split="train").split == ("train",)
    assert ls.SurfaceConfig(x=[0.0, 0.25, 0.5]).x == "0:0.5:3"
    # The same settings from the command line and from Python are the same config.
    assert ls.SurfaceConfig(x="-1:1:5") == ls.SurfaceConfig(x=(-1, 1, 5))
    with pytest.raises(ls.InputError, match="not evenly spaced"):
        ls.SurfaceConfig(x=[0.0, 0.1, 0.5])
    with pytest.raises(ls.InputError, match=r"\(MIN, MAX, NUM\)"):
        ls.SurfaceConfig(x=(-1, 1))
    with pytest.raises(ls.InputError, match="split must be train, test"):
        ls.SurfaceConfig(split="val")


def test_pretrained_names_load_from_python():
    loaded = ls.load_model("pretrained:resnet20")
    assert loaded.model_name == "resnet20" and not loaded.model.training
    with pytest.raises(ls.InputError, match="no pretrained checkpoint"):
        ls.load_model("pretrained:nope")


def test_library_errors_name_python_arguments_not_flags():
    """From Python an error names the argument (`download`), the command line its flag."""
    with pytest.raises(ls.InputError) as info:
        ls.load_split("cifar10", "train", data_root=str(Path("/nonexistent/cifar")))
    assert "set download" in str(info.value) and "--download" not in str(info.value)
    assert "set --download" in info.value.as_flag()


@pytest.mark.parametrize("command", ["hessian", "trajectory", "responses", "eigendirs"])
def test_python_m_of_every_analysis_command_runs_it(command):
    """``python -m landscape.X`` runs the command: no arguments is a usage error (2)."""
    run = subprocess.run(
        [sys.executable, "-m", f"landscape.{command}"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert f"landscape {command}: error:" in run.stderr and len(run.stderr.splitlines()) == 1
