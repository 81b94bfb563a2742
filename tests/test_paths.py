"""A training path (landscape trajectory) drawn by `plot --path` and `view --path`."""

from __future__ import annotations

import numpy as np
import torch
from surfaces import make_surface_file

from landscape import plot, view
from landscape.io.surface_file import write_directions_file
from landscape.io.trajectory import read_path

ALPHA = np.array([0.8, 0.5, 0.2, 0.0])
BETA = np.array([-0.4, -0.1, 0.05, 0.0])


def _dirs_with_path(tmp_path):
    path = tmp_path / "dirs.h5"
    write_directions_file(
        path,
        {"x": {"w": torch.ones(2)}, "y": {"w": torch.zeros(2)}},
        groups={"path": {"alpha": ALPHA, "beta": BETA, "epoch": np.arange(4)}},
    )
    return path


def test_plot_and_view_draw_the_path(tmp_path) -> None:
    surface = make_surface_file(tmp_path, kind="bowl", shape=(9, 9))
    dirs = _dirs_with_path(tmp_path)
    alpha, beta, epochs = read_path(dirs)
    np.testing.assert_array_equal(alpha, ALPHA)
    assert plot.main([str(surface), "--path", str(dirs), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0
    assert view.main([str(surface), "--path", str(dirs), "--out", str(tmp_path / "v.html")]) == 0
    html = (tmp_path / "v.html").read_text()
    assert "training path" in html and "0.05" in html


def test_file_without_path_is_refused(tmp_path, capsys) -> None:
    surface = make_surface_file(tmp_path, kind="bowl", shape=(5, 5))
    assert plot.main([str(surface), "--path", str(surface)]) == 2
    assert "holds no training path" in capsys.readouterr().err
