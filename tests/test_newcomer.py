"""What a newcomer trips over (#34): the command line as people expect it, habits from
the original code and other tools, checkpoints as other tools write them."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import torch
import torchvision

from landscape import __main__ as cli
from landscape import __version__, compute, pretrained, train
from landscape.cli.options import json_object
from landscape.models import CheckpointError, create_model, load_checkpoint
from landscape.models.__main__ import main as models_main

# ------------------------------------------------------------------ the command line


def test_version_help_and_no_command(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"landscape {__version__}"
    assert cli.main([]) == 2  # a command is needed: the usage goes to stderr
    assert capsys.readouterr().err.startswith("usage: landscape COMMAND")
    assert cli.main(["--help"]) == 0
    assert "pretrained" in capsys.readouterr().out
    assert cli.main(["comptue"]) == 2
    assert "did you mean compute?" in capsys.readouterr().err


def test_models_takes_a_part_of_a_name_and_says_when_nothing_matches(capsys):
    assert cli.main(["models", "resnet"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows and all("resnet" in r.split()[0] for r in rows)
    assert {"resnet20", "resnet152"} <= {r.split()[0] for r in rows}
    assert cli.main(["models", "zzz"]) == 2
    assert "no network matches 'zzz'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["models", "--help"])
    assert e.value.code == 0 and "usage: landscape models" in capsys.readouterr().out
    assert models_main(["plain5*"]) == 0
    assert [r.split()[0] for r in capsys.readouterr().out.splitlines()[2:]] == [
        "plain56",
        "plain50",
    ]


def test_pretrained_lists_network_data_and_errors_and_refuses_unknown_flags(capsys):
    assert pretrained.main([]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("pretrained:resnet56 "))
    assert "resnet56" in row and "12.85%" in row and "CIFAR-10 (50,000 train / 10,000 test)" in row
    assert cli.main(["pretrained", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_a_mistyped_flag_is_an_error_that_names_the_right_one(capsys):
    args = ["--ckpt", "pretrained:resnet20", "--out", "never.h5", "--sample", "10"]
    assert compute.main(args) == 2  # not taken as --samples 10
    assert "did you mean --sample -> --samples?" in capsys.readouterr().err


def test_flags_of_the_original_code_are_translated_in_one_line(capsys):
    pasted = ["--model_file", "a.t7", "--xnorm", "filter", "--xignore", "biasbn", "--cuda",
              "--mpi", "--x=-1:1:51", "--surf_file", "s.h5"]  # fmt: skip
    assert compute.main(pasted) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    pairs = ["--model_file -> --ckpt", "--xnorm -> --norm", "--xignore -> --ignore",
             "--cuda -> --device cuda", "--mpi -> torchrun", "--surf_file -> --out"]  # fmt: skip
    for pair in pairs:
        assert pair in err


def test_quiet_is_the_same_flag_everywhere_there_is_a_progress_bar():
    for module in (compute, train):
        args = module.build_parser().parse_args(
            ["--quiet", *(["--ckpt", "a", "--out", "b.h5"] if module is compute else [])]
        )
        assert getattr(args, "quiet", None) is True or getattr(args, "progress", None) is False
    assert train.build_parser().parse_args(["--no-progress"]).progress is False


def test_help_never_states_a_default_twice_or_for_an_on_off_flag(capsys):
    for module in (compute, train):
        with pytest.raises(SystemExit):
            module.build_parser().parse_args(["--help"])
        text = capsys.readouterr().out
        assert "(default: True)" not in text and "(default: False)" not in text
        assert "(default: (" not in text  # a list reads as typed
        assert "default 0.5,0.75" not in text.replace("(default: 0.5,0.75)", "")


def test_model_kwargs_take_key_value_pairs_as_people_type_them():
    assert json_object("num_classes=100,width=2,small_input=true,name=x") == {
        "num_classes": 100, "width": 2, "small_input": True, "name": "x",
    }  # fmt: skip
    assert json_object('{"num_classes": 3}') == {"num_classes": 3}
    with pytest.raises(argparse.ArgumentTypeError, match="key=value"):
        json_object("num_classes 100")


@pytest.mark.child
def test_a_reader_that_leaves_stops_the_command_quietly():
    run = subprocess.run(
        f"{sys.executable} -m landscape models | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.stdout.startswith("model") and run.stderr == "", run.stderr


# ------------------------------------------------------------------ checkpoints of other tools


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, shape=(2, 3, 32, 32)) -> None:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.eval()(x), b.eval()(x))


def test_a_dataparallel_checkpoint_of_the_original_code_loads(tmp_path):
    model = create_model("resnet20").eval()
    renamed = {
        "module." + k.replace("fc.", "linear.", 1).replace(".downsample.", ".shortcut."): v
        for k, v in model.state_dict().items()
    }
    torch.save({"acc": 91.5, "epoch": 3, "state_dict": renamed}, tmp_path / "dp.t7")
    loaded = load_checkpoint(tmp_path / "dp.t7")
    assert loaded.model_name == "resnet20"
    _same_outputs(loaded.model, model)


def test_a_ten_class_torchvision_checkpoint_builds_ten_classes(tmp_path):
    net = torchvision.models.resnet18(num_classes=10).eval()
    torch.save(net.state_dict(), tmp_path / "r18.pt")
    loaded = load_checkpoint(tmp_path / "r18.pt", model_name="torchvision:resnet18")
    assert loaded.model.fc.out_features == 10
    _same_outputs(loaded.model, net, shape=(1, 3, 64, 64))


def test_a_3x3_stem_checkpoint_gets_the_small_input_hint(tmp_path):
    torch.save(create_model("resnet18", small_input=True).state_dict(), tmp_path / "s.pt")
    with pytest.raises(CheckpointError, match="small_input=true"):
        load_checkpoint(tmp_path / "s.pt", model_name="resnet18")
    loaded = load_checkpoint(
        tmp_path / "s.pt", model_name="resnet18", model_kwargs={"small_input": True}
    )
    assert loaded.model.conv1.kernel_size == (3, 3)


def test_a_lightning_checkpoint_with_namespace_hyper_parameters_loads(tmp_path):
    model = create_model("resnet20").eval()
    torch.save(
        {
            "pytorch-lightning_version": "2.1.0",
            "hyper_parameters": argparse.Namespace(lr=0.1, model="resnet20"),
            "state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
        },
        tmp_path / "pl.ckpt",
    )
    loaded = load_checkpoint(tmp_path / "pl.ckpt", model_name="resnet20")
    _same_outputs(loaded.model, model)


# ------------------------------------------------------------------ errors in the caller's words


def test_python_errors_name_arguments_and_the_command_line_names_flags(tmp_path, capsys):
    from landscape.core.device import resolve_device
    from landscape.core.errors import InputError
    from landscape.training import TrainConfig, run_training

    with pytest.raises(InputError) as e:
        resolve_device("cuda:7") if not torch.cuda.is_available() else resolve_device("tpu")
    assert "device=" in str(e.value) and "--device" not in str(e.value)
    assert "--device" in e.value.as_flag() and "device=" not in e.value.as_flag()
    run = tmp_path / "run"
    run_training(TrainConfig(model="resnet20", out=str(run), epochs=1, samples=8,
                             test_samples=8, batch_size=8))  # fmt: skip
    with pytest.raises(InputError) as e:
        run_training(TrainConfig(model="resnet20", out=str(run), epochs=1, samples=8,
                                 test_samples=8, batch_size=4))  # fmt: skip
    assert "choose a new out" in str(e.value) and "--out" not in str(e.value)
    assert "batch_size: 8 -> 4" in str(e.value)
    argv = ["--model", "resnet20", "--out", str(run), "--epochs", "1", "--samples", "8",
            "--test-samples", "8", "--batch-size", "4"]  # fmt: skip
    assert train.main(argv) == 2
    assert "choose a new --out" in capsys.readouterr().err


def test_a_train_config_refuses_a_class_where_a_name_belongs():
    from landscape.training import TrainConfig

    with pytest.raises(TypeError, match=r"TrainConfig.model must be str, got type"):
        TrainConfig(model=torch.nn.Linear)
    assert TrainConfig(out=pytest.importorskip("pathlib").Path("runs/x")).out == "runs/x"


def test_help_on_an_api_function_shows_its_public_name():
    import landscape as ls

    assert ls.run_training.__name__ == "run_training"


def test_a_surface_from_python_records_the_data_and_model_it_evaluated(tmp_path):
    import numpy as np
    from PIL import Image

    import landscape as ls

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            for j in range(4):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                    tmp_path / "imgs" / split / cls / f"{j}.png"
                )
    spec = f"imagefolder:{tmp_path / 'imgs'}"
    data = ls.load_split(spec, "train", samples=6, subset="stratified", seed=1)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
    surface = ls.compute_surface(
        net, data, ls.SurfaceConfig(x=(-1, 1, 3)), out=tmp_path / "s.h5", progress=False
    )
    cfg = surface.config
    assert (cfg["dataset"], cfg["samples"], cfg["subset"], cfg["data_seed"]) == (
        spec, 6, "stratified", 1,
    )  # fmt: skip
    assert surface.provenance["model"] == "torch.nn.modules.container.Sequential"
    assert surface.provenance["data"]["train"]["n"] == 6


def test_an_option_offered_by_several_commands_reads_the_same_in_every_help():
    import importlib
    from collections import defaultdict

    shown: dict[str, dict[str, str]] = defaultdict(dict)
    for name, (module, _) in cli.COMMANDS.items():
        mod = importlib.import_module(module)
        parser = mod.build_parser()
        fmt = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.nargs is not None or action.choices:
                continue  # on/off flags, lists and choices say what they take themselves
            assert action.help, f"landscape {name} {action.option_strings[0]} has no help"
            metavar = action.metavar or fmt._get_default_metavar_for_optional(action)
            shown[action.option_strings[-1]][name] = metavar
    differ = {flag: d for flag, d in shown.items() if len(set(d.values())) > 1}
    assert set(differ) <= {"--split"}, differ  # compute's --split takes a list: LIST
