"""Export (VTK structured grid, CSV) and import of the original code's files (legacy)."""

from __future__ import annotations

import base64
import csv
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest
from surfaces import analytic_values, make_legacy_file, make_surface_file

import landscape as ls
from landscape import convert, plot, view
from landscape import export as export_cli
from landscape.io import export, legacy
from landscape.io.surface_file import StoreError, read_surface
from landscape.io.surfaces import read_surface as read_any


def read_vts(path) -> tuple[tuple[int, ...], np.ndarray, dict[str, np.ndarray]]:
    """A naive reader of the binary inline .vts written by export: extent, points, point data."""
    root = ET.parse(path).getroot()
    assert root.get("type") == "StructuredGrid" and root.get("header_type") == "UInt64"

    def decode(node):
        blob = base64.b64decode(node.text.strip())
        n = int(np.frombuffer(blob[:8], "<u8")[0])
        dtype = {"Float64": "<f8", "UInt8": "u1"}[node.get("type")]
        data = np.frombuffer(blob[8 : 8 + n], dtype)
        assert len(blob) == 8 + n
        return data.reshape(-1, int(node.get("NumberOfComponents", "1"))).squeeze()

    extent = tuple(int(v) for v in root.find("StructuredGrid").get("WholeExtent").split())
    points = decode(root.find(".//Points/DataArray"))
    arrays = {a.get("Name"): decode(a) for a in root.findall(".//PointData/DataArray")}
    return extent, points, arrays


def test_vtk_any_grid_shape_partial(tmp_path):
    src = make_surface_file(tmp_path, kind="sines", shape=(7, 4), partial=0.25)
    s = read_surface(src)
    out = export.write_vtk(s, tmp_path / "s.vts", split="test")
    extent, points, arrays = read_vts(out)
    assert extent == (0, 6, 0, 3, 0, 0)
    assert points.shape == (28, 3)
    # VTK order: alpha fastest. Point k = i + nx * j is (alpha[i], beta[j]).
    i, j = 4, 2
    k = i + 7 * j
    z = s.get("test", "loss")
    np.testing.assert_allclose(points[k], [s.alpha[i], s.beta[j], z[i, j]])
    np.testing.assert_array_equal(arrays["train_loss"], s.get("train", "loss").T.ravel())
    hidden = arrays["vtkGhostType"] == 2
    np.testing.assert_array_equal(hidden, np.isnan(z.T.ravel()))
    assert hidden.sum() == 7 and np.all(np.isfinite(points))


def test_vtk_log_and_clip_are_li_et_als_3d_rendering(tmp_path):
    """h52vtp.py --zmax 10 --log (the paper's ParaView figures): ln(min(z, 10) + 0.1)."""
    s = read_surface(make_surface_file(tmp_path, kind="spiky", shape=(21, 21)))
    _, points, arrays = read_vts(export.write_vtk(s, tmp_path / "s.vts", log=True, clip=10.0))
    z = s.get("train", "loss").T.ravel()
    np.testing.assert_allclose(points[:, 2], np.log(np.minimum(z, 10.0) + 0.1))
    assert points[:, 2].max() == pytest.approx(np.log(10.1))
    np.testing.assert_allclose(arrays["z"], points[:, 2])


def test_vtk_1d(tmp_path):
    s = read_surface(make_surface_file(tmp_path, shape=(11,)))
    extent, points, _ = read_vts(export.write_vtk(s, tmp_path / "line.vts", metric="error"))
    assert extent == (0, 10, 0, 0, 0, 0)
    exact = analytic_values("bowl", s.alpha)
    np.testing.assert_allclose(points[:, 2], 1 - exact["accuracy"])


def test_csv_rows(tmp_path):
    s = read_surface(make_surface_file(tmp_path, shape=(5, 3), partial=0.2))
    out = export.write_csv(s, tmp_path / "s.csv")
    rows = list(csv.reader(out.open()))
    assert rows[0] == [
        "alpha",
        "beta",
        "test_accuracy",
        "test_loss",
        "train_accuracy",
        "train_loss",
    ]
    assert len(rows) == 1 + 15
    row = [float(v) for v in rows[1 + 2 * 3 + 1]]  # (i, j) = (2, 1)
    assert row[:2] == [s.alpha[2], s.beta[1]] and row[5] == s.get()[2, 1]
    assert rows[-1][5] == "nan"


def test_export_cli(tmp_path, capsys):
    src = make_surface_file(tmp_path, "r.h5", shape=(5, 5))  # error = 0 at theta*
    assert export_cli.main([str(src), "--vtk", "--csv"]) == 0
    assert (tmp_path / "r_train_loss.vts").is_file() and (tmp_path / "r.csv").is_file()
    assert export_cli.main([str(src), "--out", str(tmp_path / "x.csv")]) == 0
    assert (tmp_path / "x.csv").is_file()
    capsys.readouterr()
    for argv, message in [
        ([str(src)], "choose a format"),
        ([str(src), "--vtk", "--csv", "--out", "a.vts"], "one file"),
        ([str(src), "--vtk", "--split", "val"], "no 'val' split"),
        ([str(tmp_path / "none.h5"), "--vtk"], "does not exist"),
    ]:
        assert export_cli.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_legacy_layout_is_read_transposed(tmp_path):
    # Non-square on purpose: the original's flat index k = j * nx + i holds (x[i], y[j]).
    src = make_legacy_file(tmp_path, "legacy.h5", kind="sines", shape=(9, 5), uncomputed=3)
    with h5py.File(src) as f:
        assert f["train_loss"].shape == (9, 5)
    s = legacy.read_legacy_surface(src)
    exact = analytic_values("sines", s.alpha, s.beta)
    done = ~np.isnan(s.get("train", "loss"))
    assert (~done).sum() == 3 and not done[-1, -1]  # the last points in (y, x) order
    np.testing.assert_allclose(s.get("train", "loss")[done], exact["loss"][done])
    np.testing.assert_allclose(s.get("train", "accuracy")[done], exact["accuracy"][done])
    assert np.nanmax(s.get("train", "accuracy")) <= 1.0
    assert s.config["norm"] == "filter" and s.config["ignore"] == "biasbn"


def test_legacy_1d_and_model_from_folder(tmp_path):
    folder = tmp_path / "resnet56_noshort_sgd_lr=0.1_bs=128"
    folder.mkdir()
    src = make_legacy_file(folder, "surf.h5", shape=(12,), splits=("train", "test"))
    s = read_any(src)
    assert not s.is_2d and s.splits == ["test", "train"]
    assert s.label == "resnet56_noshort"
    np.testing.assert_allclose(
        s.get("test", "loss"), analytic_values("bowl", s.alpha, split="test")["loss"]
    )


def test_one_reader_for_both_formats(tmp_path):
    """`read_surface` (the public one) reads ours and the original code's files alike."""
    assert ls.read_surface is read_any

    ours = make_surface_file(tmp_path, "ours.h5", shape=(4, 3))
    old = make_legacy_file(tmp_path, "old.h5")
    assert read_any(ours).config["model"] == "resnet56"
    assert legacy.is_legacy_file(old) and not legacy.is_legacy_file(ours)
    assert read_any(old).config["source"] == legacy.LEGACY_SOURCE
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(StoreError, match="not a surface file"):
        read_any(empty)
    with pytest.raises(StoreError, match="does not exist"):
        read_any(tmp_path / "nope.h5")


def test_convert_legacy_roundtrip(tmp_path, capsys):
    old = make_legacy_file(tmp_path, "old.h5", shape=(6, 4), uncomputed=2)
    new = tmp_path / "new.h5"
    assert convert.main([str(old), "--out", str(new)]) == 0
    a, b = legacy.read_legacy_surface(old), read_surface(new)
    np.testing.assert_array_equal(a.alpha, b.alpha)
    np.testing.assert_array_equal(a.get("train", "loss"), b.get("train", "loss"))
    assert b.computed.sum() == 6 * 4 - 2
    # A rerun redoes its own conversion; another surface is never replaced unasked.
    assert convert.main([str(old), "--out", str(new)]) == 0
    other = make_legacy_file(tmp_path, "other.h5", shape=(6, 4))
    capsys.readouterr()
    assert convert.main([str(other), "--out", str(new)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert convert.main([str(other), "--out", str(new), "--overwrite"]) == 0
    assert convert.main([str(other), "--out", str(other), "--overwrite"]) == 2
    assert "also an input" in capsys.readouterr().err


def test_clis_accept_legacy_files(tmp_path):
    old = make_legacy_file(tmp_path, "old.h5", shape=(8, 6))
    assert plot.main([str(old), "--out", str(tmp_path / "old.png")]) == 0
    assert view.main([str(old), "--out", str(tmp_path / "old.html")]) == 0
    assert export_cli.main([str(old), "--vtk", "--out", str(tmp_path / "old.vts")]) == 0
    for name in ("old.png", "old.html", "old.vts"):
        assert (tmp_path / name).stat().st_size > 0
