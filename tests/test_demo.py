"""`make demo`'s job on tiny checkpoints: every promised output, then an instant resume."""

from __future__ import annotations

from helpers import make_checkpoint

from landscape.demo import main
from landscape.io.surface_file import read_surface


def test_demo_writes_everything_and_resumes(tmp_path, capsys) -> None:
    a = make_checkpoint(tmp_path / "res.pt", "resnet20", seed=0)
    b = make_checkpoint(tmp_path / "plain.pt", "plain20", seed=1)
    argv = [
        "--ckpt",
        str(a),
        str(b),
        "--dataset",
        "tinydata:tiny",
        "--grid",
        "3",
        "--samples",
        "16",
        "--out",
        str(tmp_path / "demo"),
        "--quiet",
    ]
    assert main(argv) == 0
    out = tmp_path / "demo"
    for name in (
        "compare_contour.png",
        "compare_3d.png",
        "compare_filled.png",
        "slices_1d.png",
        "metrics.txt",
        "view.html",
        "res_2d.h5",
        "plain_1d.h5",
    ):
        assert (out / name).stat().st_size > 0, name
    assert read_surface(out / "res_2d.h5").computed.all()
    text = capsys.readouterr().out
    assert "view.html first" in text and "plain20" in (out / "metrics.txt").read_text()
    assert main(argv) == 0  # everything is already computed: resumes to done


def test_demo_without_shipped_checkpoint_is_one_line(tmp_path, capsys) -> None:
    assert main(["--ckpt", "pretrained:nosuch", "--out", str(tmp_path)]) == 2
    assert "no pretrained checkpoint 'nosuch'" in capsys.readouterr().err
