"""The package installs beside a user's own `models`: one import name for the networks
(`landscape.models`), a distribution name of our own, no top-level `models` in the wheel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import pytest
from helpers import REPO

USER_MODELS = "NAME = 'the user models package'\n\ndef load_checkpoint(*a, **k):\n    raise AssertionError('ours called')\n"  # noqa: E501


def user_env() -> dict[str, str]:
    """A child as a user's shell starts it: the installed package, nothing of the repository
    on PYTHONPATH (the repository's own top-level folder would shadow a user's `models`)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A research folder with its own `models/` package, the commonest module name in ML code."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text(USER_MODELS)
    return tmp_path


@pytest.mark.child
@pytest.mark.parametrize("order", ["user first", "ours first"])
def test_a_users_models_package_and_ours_coexist_in_one_process(user_project, order):
    imports = ["import models", "import landscape as ls"]
    if order == "ours first":
        imports.reverse()
    script = "\n".join(
        [
            *imports,
            "loaded = ls.load_model('pretrained:resnet20')",
            "assert models.NAME == 'the user models package', models.__file__",
            "assert type(loaded.model).__module__ == 'landscape.models.resnet'",
            "from landscape import models as ours",
            "assert ours is not models and ours.__name__ == 'landscape.models'",
            "print('ok')",
        ]
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=user_project,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


@pytest.mark.child
def test_python_m_landscape_compute_runs_from_a_folder_with_its_own_models(user_project):
    run = subprocess.run(
        [
            sys.executable, "-m", "landscape.compute", "--ckpt", "pretrained:resnet20",
            "--samples", "8", "--batch-size", "8", "--x=-1:1:3", "--out", "s.h5", "--quiet",
        ],
        cwd=user_project,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with h5py.File(user_project / "s.h5", "r") as f:
        assert f["train_loss"].shape == (3,) and (f["train_loss"][:] > 0).all()


@pytest.mark.child
def test_the_wheel_installs_no_top_level_models_and_carries_the_networks(tmp_path):
    run = subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--quiet", "--wheel-dir", str(tmp_path), str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=user_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name.startswith("torch_landscape-")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"landscape", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    for module in ("__init__", "resnet", "checkpoint", "registry", "summary", "atomic"):
        assert f"landscape/models/{module}.py" in names
    assert "landscape/models/py.typed" in names
    assert any(n.startswith("landscape/assets/pretrained/") for n in names)


def test_the_distribution_name_is_ours_and_the_import_and_script_stay():
    text = (REPO / "pyproject.toml").read_text()
    # `landscape` on PyPI is another project (a terminal landscape generator); checked
    # with `pip download --no-deps torch-landscape`: no such distribution (2026-12-06).
    assert re.search(r'^name = "(.*)"$', text, re.M)[1] == "torch-landscape"
    assert re.search(r"^\[project.scripts\]\n(.*)$", text, re.M)[1] == (
        'landscape = "landscape.__main__:run"'
    )
