"""Degradation curves from metrics files: reading, drawing on an Axes, the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from landscape.analysis.curves import CurvesError, run_label
from landscape.curves import main
from landscape.io.runs import read_metrics
from landscape.viz.curves import degradation_figure, plot_degradation

HEADER = "epoch,train_loss,train_error,test_loss,test_error,lr,time,elapsed\n"


def make_run(root, name, model, train_error, test_error):
    """A run folder as `landscape train` writes it: config.json and metrics.csv."""
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": model, "epochs": 3}))
    rows = [f"0,,,2.3,{test_error[0]},0.1,0.0,0.0"]
    for e in range(1, len(test_error)):
        rows.append(f"{e},1.0,{train_error[e - 1]},1.1,{test_error[e]},0.1,1.0,{e}.0")
    (folder / "metrics.csv").write_text(HEADER + "\n".join(rows) + "\n")
    return folder


@pytest.fixture
def runs(tmp_path):
    return [
        make_run(tmp_path, "p20", "plain20", [0.5, 0.3, 0.2], [0.9, 0.5, 0.35, 0.25]),
        make_run(tmp_path, "p56", "plain56", [0.6, 0.4, 0.3], [0.9, 0.6, 0.45, 0.35]),
        make_run(tmp_path, "r20", "resnet20", [0.5, 0.3, 0.2], [0.9, 0.5, 0.35, 0.25]),
        make_run(tmp_path, "r56", "resnet56", [0.4, 0.2, 0.1], [0.9, 0.4, 0.3, 0.2]),
    ]


def test_read_metrics_gives_float_columns_with_nan_blanks(runs):
    m = read_metrics(runs[0])
    assert m["epoch"].tolist() == [0, 1, 2, 3]
    assert math.isnan(m["train_error"][0]) and m["train_error"][1:].tolist() == [0.5, 0.3, 0.2]
    assert np.array_equal(read_metrics(runs[0] / "metrics.csv")["test_error"], m["test_error"])
    assert run_label(runs[0]) == "plain20"


def test_read_metrics_json_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"epoch": 1, "test_error": 0.5}\n{"epoch": 2, "test_error": 0.25}\n')
    assert read_metrics(path)["test_error"].tolist() == [0.5, 0.25]


def test_plot_degradation_draws_train_dashed_and_test_bold(runs):
    ax = Figure().subplots()
    lines = plot_degradation(ax, runs[:2])
    assert len(lines) == 4 and ax.get_ylabel() == "error (%)"
    train, test = lines[0], lines[1]
    assert train.get_linestyle() == "--" and test.get_linewidth() > train.get_linewidth()
    assert train.get_color() == test.get_color() != lines[2].get_color()
    assert train.get_xdata().tolist() == [1, 2, 3]  # epoch 0 has no training error
    assert test.get_ydata().tolist() == pytest.approx([90, 50, 35, 25])
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["plain20", "plain56"]


def test_plot_degradation_takes_labels_and_metrics_dicts(runs):
    ax = Figure().subplots()
    lines = plot_degradation(
        ax, {"mine": read_metrics(runs[3])}, metric="loss", splits=["test"], legend=False
    )
    assert len(lines) == 1 and lines[0].get_label() == "mine test"
    assert ax.get_legend() is None and ax.get_ylabel() == "loss"
    with pytest.raises(CurvesError, match="metric must be"):
        plot_degradation(ax, runs, metric="accuracy")


def test_figure_splits_plain_and_resnet_panels(runs):
    fig = degradation_figure(runs)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["plain nets", "ResNet"]
    assert all(len(ax.get_lines()) == 4 for ax in fig.axes)
    assert len(degradation_figure(runs, layout="single").axes) == 1
    assert len(degradation_figure(runs[:2]).axes) == 1


def test_cli_writes_the_figure(runs, tmp_path, capsys):
    out = tmp_path / "figs" / "curves.png"
    assert main([*map(str, runs), "--out", str(out), "--title", "CIFAR-10"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "c.svg"
    argv = [str(runs[0]), str(runs[2]), "--label", "a", "--label", "b", "--out", str(svg)]
    assert main(argv) == 0 and svg.stat().st_size > 0


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no metrics file" in err and err.count("\n") == 1
