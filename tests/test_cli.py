"""The `landscape` console script dispatches every subcommand."""

from __future__ import annotations

import pytest

from landscape.__main__ import COMMANDS, main


def test_models_table(capsys) -> None:
    assert main(["models", "resnet5*"]) == 0
    out = capsys.readouterr().out
    assert "resnet56" in out and "855,770" in out and "resnet50" in out


def test_pretrained_lists_shipped(capsys) -> None:
    assert main(["pretrained"]) == 0
    assert capsys.readouterr().out.strip()


def test_unknown_command_is_one_line(capsys) -> None:
    assert main(["bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown command 'bogus'" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_usage(capsys) -> None:
    assert main(["--help"]) == 0
    assert "compute" in capsys.readouterr().out
