"""A task is a function (issue #30): any model, loss and batch, any part of the weights.

Every value is checked against a naive computation: the weights set by hand to
theta* + alpha*dx + beta*dy (the file's directions, copied in under no_grad), the model
run, the user's loss taken, the mean and std(ddof=1)/sqrt(N) of the per-sample losses.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import tinytask
import torch

import landscape as ls
from landscape.io.surface_file import OutError, read_directions, read_per_sample, read_surface
from landscape.surface.task import materialize, tree_sha256


def hand_losses(model, fn, batches, dirs, alpha, beta) -> torch.Tensor:
    """`fn`'s per-sample values at theta* + alpha*dx + beta*dy, the weights set by hand."""
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            w = p.detach().clone() + alpha * dirs["x"][name]
            if "y" in dirs:
                w = w + beta * dirs["y"][name]
            p.copy_(w)
        return torch.cat([torch.as_tensor(fn(m, b)).double().reshape(-1) for b in batches])


def assert_matches_hand(path, model, loss_fn, batches, *, metrics_fn=None, split="train"):
    surface = read_surface(path)
    dirs = read_directions(path)
    per_sample = read_per_sample(path, split)
    assert surface.computed.all()
    beta = surface.beta if surface.beta is not None else [0.0]
    for i, a in enumerate(surface.alpha):
        for j, b in enumerate(beta):
            idx = (i, j) if surface.is_2d else (i,)
            per = hand_losses(model, loss_fn, batches, dirs, float(a), float(b))
            n = len(per)
            assert surface.get(split, "loss")[idx] == pytest.approx(float(per.mean()), rel=1e-5)
            se = float(per.std(correction=1)) / math.sqrt(n)
            assert surface.values[f"{split}_loss_se"][idx] == pytest.approx(se, rel=1e-4)
            if per_sample is not None:
                # rel 1e-5, or float32 rounding where a residual cancels to near zero
                atol = 1e-6 * float(per.abs().max())
                np.testing.assert_allclose(per_sample[idx], per.numpy(), rtol=1e-5, atol=atol)
            if metrics_fn is not None:
                for name in metrics_fn(model, batches[0]):
                    value = hand_losses(
                        model, lambda m, bt, k=name: metrics_fn(m, bt)[k], batches, dirs, a, b
                    )
                    assert surface.get(split, name)[idx] == pytest.approx(
                        float(value.mean()), rel=1e-5, abs=1e-12
                    )
                    se = float(value.std(correction=1)) / math.sqrt(len(value))
                    assert surface.values[f"{split}_{name}_se"][idx] == pytest.approx(
                        se, rel=1e-4, abs=1e-12
                    )
    return surface


def no_fallback(caplog) -> bool:
    return not any("vmap cannot batch" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ a language model


@pytest.mark.parametrize("strategy", ["pointwise", "vmap"])
def test_language_model_on_dict_batches_matches_hand(tmp_path, strategy, caplog) -> None:
    caplog.set_level(logging.INFO)
    model, batches = tinytask.tiny_lm(), tinytask.lm_batches()
    out = tmp_path / "lm.h5"
    config = ls.SurfaceConfig(x=(-1, 1, 5), y=(-0.5, 0.5, 3), strategy=strategy)
    surface = ls.compute_surface(
        model,
        batches,
        config,
        out=out,
        loss_fn=tinytask.lm_loss,
        metrics_fn=tinytask.lm_metrics,
        progress=False,
    )
    assert surface.shape == (5, 3)
    assert sorted(surface.values) == [
        "train_loss",
        "train_loss_se",
        "train_token_accuracy",
        "train_token_accuracy_se",
    ]
    assert read_per_sample(out).shape == (5, 3, 12)
    assert_matches_hand(out, model, tinytask.lm_loss, batches, metrics_fn=tinytask.lm_metrics)
    assert no_fallback(caplog)
    assert f"task-{strategy} evaluator" in caplog.text
    prov = surface.provenance
    assert prov["task"]["loss_fn"] == "tinytask:lm_loss"
    assert prov["data_sha256"]["train"] == tree_sha256(batches)
    # the user's model was never touched
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            model.state_dict().values(), tinytask.tiny_lm().state_dict().values(), strict=True
        )
    )


def test_language_model_selection_moves_only_the_attention(tmp_path) -> None:
    model, batches = tinytask.tiny_lm(), tinytask.lm_batches(n_batches=2)
    out = tmp_path / "attn.h5"
    config = ls.SurfaceConfig(x=(-1, 1, 3), y=(-1, 1, 3), params=["blocks.*.attn.*"])
    assert config.to_json()["params"] == ["blocks.*.attn.*"]
    ls.compute_surface(model, batches, config, out=out, loss_fn=tinytask.lm_loss, progress=False)
    dirs = read_directions(out)
    for axis in ("x", "y"):
        for name, d in dirs[axis].items():
            moving = name.startswith("blocks.0.attn.") and name.endswith(".weight")
            assert bool(torch.count_nonzero(d)) == moving, (axis, name)  # attention biases: biasbn
    assert_matches_hand(out, model, tinytask.lm_loss, batches)
    stored = read_surface(out).config
    assert stored["params"] == ["blocks.*.attn.*"] and stored["exclude"] == []
    # The same draw as without a selection, where it moves.
    full = tmp_path / "full.h5"
    ls.compute_surface(
        model,
        batches,
        ls.SurfaceConfig(x=(-1, 1, 3), y=(-1, 1, 3)),
        out=full,
        loss_fn=tinytask.lm_loss,
        progress=False,
    )
    assert torch.equal(
        read_directions(full)["x"]["blocks.0.attn.q.weight"], dirs["x"]["blocks.0.attn.q.weight"]
    )
    # Another selection on resume: refused in one line naming it.
    other = ls.SurfaceConfig(x=(-1, 1, 3), y=(-1, 1, 3), params="blocks.*.mlp.*")
    with pytest.raises(OutError) as e:
        ls.compute_surface(model, batches, other, out=out, loss_fn=tinytask.lm_loss, progress=False)
    assert "params: file has ['blocks.*.attn.*'], now ['blocks.*.mlp.*']" in str(e.value)
    assert "\n" not in str(e.value)
    excluded = ls.SurfaceConfig(
        x=(-1, 1, 3), y=(-1, 1, 3), params=["blocks.*.attn.*"], exclude="*.q.*"
    )
    with pytest.raises(OutError, match="exclude: file has"):
        ls.compute_surface(
            model, batches, excluded, out=out, loss_fn=tinytask.lm_loss, progress=False
        )


def test_exclude_and_bad_globs(tmp_path) -> None:
    model, batches = tinytask.tiny_lm(), tinytask.lm_batches(n_batches=1)
    out = tmp_path / "ex.h5"
    config = ls.SurfaceConfig(x=(-1, 1, 3), exclude="tok.*,pos.*,head.*")
    ls.compute_surface(model, batches, config, out=out, loss_fn=tinytask.lm_loss, progress=False)
    dirs = read_directions(out)["x"]
    assert not torch.count_nonzero(dirs["tok.weight"]) and not torch.count_nonzero(
        dirs["head.weight"]
    )
    assert torch.count_nonzero(dirs["blocks.0.mlp.0.weight"])
    with pytest.raises(ls.InputError, match="params glob 'block.*' matches no parameter"):
        ls.compute_surface(
            model,
            batches,
            ls.SurfaceConfig(x=(-1, 1, 3), params="block.*"),
            out=tmp_path / "none.h5",
            loss_fn=tinytask.lm_loss,
            progress=False,
        )
    with pytest.raises(ls.InputError, match="leave no parameter to move"):
        ls.compute_surface(
            model,
            batches,
            ls.SurfaceConfig(x=(-1, 1, 3), params="tok.*", exclude="tok.*"),
            out=tmp_path / "none.h5",
            loss_fn=tinytask.lm_loss,
            progress=False,
        )


def test_selection_on_the_builtin_path(tmp_path) -> None:
    """--params works for the built-in (x, y) task too, every strategy alike."""
    from landscape.surface.evaluate import EvalData

    torch.manual_seed(0)
    model = ls.load_model("pretrained:resnet20").model
    x = torch.randn(8, 3, 32, 32)
    y = torch.arange(8) % 10
    values = {}
    for strategy in ("pointwise", "folded"):
        out = tmp_path / f"{strategy}.h5"
        config = ls.SurfaceConfig(x=(-1, 1, 3), params="fc.*,layer3.*", strategy=strategy)
        surface = ls.compute_surface(model, EvalData(x, y), config, out=out, progress=False)
        dirs = read_directions(out)["x"]
        assert not torch.count_nonzero(dirs["conv1.weight"]) and torch.count_nonzero(
            dirs["fc.weight"]
        )
        values[strategy] = surface.get("train", "loss")
    np.testing.assert_allclose(values["pointwise"], values["folded"], rtol=1e-4)


# ------------------------------------------------------------------ a regression model


@pytest.mark.parametrize("strategy", ["pointwise", "vmap"])
def test_regression_on_tuple_batches_matches_hand(tmp_path, strategy, caplog) -> None:
    caplog.set_level(logging.INFO)
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    out = tmp_path / "mlp.h5"
    config = ls.SurfaceConfig(x=(-1, 1, 7), y=(-1, 1, 5), strategy=strategy, ignore="none")
    surface = ls.compute_surface(
        model,
        {"train": batches},
        config,
        out=out,
        loss_fn=tinytask.mse_loss,
        metrics_fn=tinytask.abs_error,
        progress=False,
    )
    assert "train_abs_error" in surface.values and "train_accuracy" not in surface.values
    assert_matches_hand(out, model, tinytask.mse_loss, batches, metrics_fn=tinytask.abs_error)
    assert no_fallback(caplog)
    assert f"task-{strategy} evaluator" in caplog.text


def test_both_strategies_give_the_same_file_and_resume_across_them(tmp_path) -> None:
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    kw = dict(loss_fn=tinytask.mse_loss, progress=False)
    a = ls.compute_surface(
        model,
        batches,
        ls.SurfaceConfig(x=(-1, 1, 9), strategy="pointwise"),
        out=tmp_path / "a.h5",
        **kw,
    )
    # A file half done pointwise is finished with vmap (the strategy is a runtime setting).
    import h5py

    path = tmp_path / "b.h5"
    path.write_bytes((tmp_path / "a.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        f["train_loss"][2:7] = np.nan
    b = ls.compute_surface(
        model, batches, ls.SurfaceConfig(x=(-1, 1, 9), strategy="vmap"), out=path, **kw
    )
    np.testing.assert_allclose(a.get("train", "loss"), b.get("train", "loss"), rtol=1e-6)
    # Other samples, or another loss, are refused on resume.
    other = tinytask.regression_batches(n=41)
    with pytest.raises(OutError, match="train samples' content differs"):
        ls.compute_surface(model, other, ls.SurfaceConfig(x=(-1, 1, 9)), out=path, **kw)
    with pytest.raises(OutError, match="task: file has loss_fn tinytask:mse_loss, now loss_fn"):
        ls.compute_surface(
            model,
            batches,
            ls.SurfaceConfig(x=(-1, 1, 9)),
            out=path,
            loss_fn=lambda m, b: tinytask.mse_loss(m, b) * 2,
            progress=False,
        )


def test_vmap_falls_back_to_pointwise_in_one_line(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    model, batches = tinytask.mlp(), tinytask.regression_batches()

    def branchy(m, batch):  # Python control flow on a value: vmap cannot batch it
        loss = tinytask.mse_loss(m, batch)
        return loss * 1.0 if float(loss.sum()) >= 0 else loss

    out = tmp_path / "fb.h5"
    ls.compute_surface(
        model,
        batches,
        ls.SurfaceConfig(x=(-1, 1, 5), strategy="vmap"),
        out=out,
        loss_fn=branchy,
        progress=False,
    )
    lines = [r.getMessage() for r in caplog.records if "vmap cannot batch" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "point by point" in lines[0]
    assert_matches_hand(out, model, tinytask.mse_loss, batches)


def test_scalar_loss_gives_means_only_said_once(tmp_path) -> None:
    model, batches = tinytask.mlp(), tinytask.regression_batches()  # batches of 16, 16, 8

    def mean_loss(m, batch):
        return tinytask.mse_loss(m, batch).mean()

    out = tmp_path / "mean.h5"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        surface = ls.compute_surface(
            model,
            batches,
            ls.SurfaceConfig(x=(-1, 1, 5), per_sample="on"),
            out=out,
            loss_fn=mean_loss,
            progress=False,
        )
    said = [w for w in caught if "0-dim mean" in str(w.message)]
    assert len(said) == 1
    assert read_per_sample(out) is None
    assert np.isnan(surface.values["train_loss_se"]).all()
    assert_means = hand_losses  # the batch-size-weighted mean of batch means is the mean
    dirs = read_directions(out)
    for i, a in enumerate(surface.alpha):
        per = assert_means(model, tinytask.mse_loss, batches, dirs, float(a), 0.0)
        assert surface.get("train", "loss")[i] == pytest.approx(float(per.mean()), rel=1e-5)


def test_data_kinds_loader_dataset_and_pair(tmp_path) -> None:
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    ds = torch.utils.data.TensorDataset(x, y)
    kw = dict(loss_fn=tinytask.mse_loss, progress=False)
    config = ls.SurfaceConfig(x=(-1, 1, 3), batch_size=16)
    ref = ls.compute_surface(model, batches, config, out=tmp_path / "ref.h5", **kw).get(
        "train", "loss"
    )
    loader = torch.utils.data.DataLoader(ds, batch_size=16)
    seeded = torch.utils.data.DataLoader(
        ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    for name, data in (("loader", loader), ("dataset", ds), ("pair", (x, y)), ("seeded", seeded)):
        got = ls.compute_surface(model, data, config, out=tmp_path / f"{name}.h5", **kw)
        np.testing.assert_allclose(got.get("train", "loss"), ref, rtol=1e-6, err_msg=name)


def test_loaders_refused_in_one_line() -> None:
    ds = torch.utils.data.TensorDataset(torch.randn(10, 1), torch.randn(10, 1))

    class Endless(torch.utils.data.IterableDataset):
        def __iter__(self):
            while True:
                yield torch.zeros(1)

    cpu = torch.device("cpu")
    cases = [
        (
            torch.utils.data.DataLoader(ds, shuffle=True),
            "shuffling DataLoader without a seeded generator",
        ),
        (torch.utils.data.DataLoader(Endless()), "IterableDataset"),
        (Endless(), "IterableDataset"),
        (iter([torch.zeros(2)]), r"list\(\.\.\.\) fixes an iterator"),
        ([], "has no batches"),
        ([{"a": 1}], "holds no tensor with a batch dimension"),
    ]
    for data, message in cases:
        with pytest.raises(ls.InputError, match=message) as e:
            materialize(data, split="train", device=cpu)
        assert "\n" not in str(e.value)
    with pytest.raises(ls.InputError, match=r"more than the .* GiB held in memory") as e:
        materialize(
            torch.utils.data.DataLoader(ds, batch_size=2), split="train", device=cpu, max_bytes=10
        )


def test_any_pytree_batch_dataclass_and_nested(tmp_path) -> None:
    from dataclasses import dataclass

    @dataclass
    class Batch:
        inputs: dict
        target: torch.Tensor
        note: str = "fixed"

    model, plain = tinytask.mlp(), tinytask.regression_batches()
    batches = [Batch({"x": (b[0],)}, b[1]) for b in plain]

    def loss_fn(m, batch: Batch):
        assert batch.note == "fixed"
        return ((m(batch.inputs["x"][0]) - batch.target) ** 2).mean(-1)

    out = tmp_path / "dc.h5"
    for strategy in ("pointwise", "vmap"):
        ls.compute_surface(
            model,
            batches,
            ls.SurfaceConfig(x=(-1, 1, 3), strategy=strategy),
            out=out,
            overwrite=True,
            loss_fn=loss_fn,
            progress=False,
        )
        assert_matches_hand(out, model, tinytask.mse_loss, plain)
    assert tree_sha256(batches) != tree_sha256(
        [Batch({"x": (b[0],)}, b[1], "other") for b in plain]
    )


# ------------------------------------------------------------------ bad returns, bugs


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        (
            lambda m, b: tinytask.mse_loss(m, b)[:, None].expand(-1, 2),
            r"loss_fn returned a torch.float32 tensor of shape \(16, 2\) at theta\* on batch 0 "
            r"of the train split; it must return .*\(16,\)",
        ),
        (lambda m, b: tinytask.mse_loss(m, b) * float("nan"), "loss_fn returned NaN at theta"),
        (
            lambda m, b: float(tinytask.mse_loss(m, b).mean()),
            r"loss_fn returned a Python float \(0\.\d+",
        ),
        (lambda m, b: tinytask.mse_loss(m, b).tolist(), "loss_fn returned list"),
        (lambda m, b: None, "loss_fn returned NoneType None"),
    ],
    ids=["shape", "nan", "float", "list", "none"],
)
def test_bad_returns_are_one_line_naming_the_function(tmp_path, returns, message) -> None:
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    out = tmp_path / "bad.h5"
    with pytest.raises(ls.InputError, match=message) as e:
        ls.compute_surface(
            model, batches, ls.SurfaceConfig(x=(-1, 1, 3)), out=out, loss_fn=returns, progress=False
        )
    assert "\n" not in str(e.value)
    assert not out.exists()


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (lambda m, b: [1.0], "metrics_fn returned list"),
        (lambda m, b: {"loss": tinytask.mse_loss(m, b)}, "metric named 'loss'"),
        (lambda m, b: {"bad name": tinytask.mse_loss(m, b)}, "metric named 'bad name'"),
        (lambda m, b: {"r": 0.5}, r"metrics_fn\['r'\] returned a Python float"),
        (
            lambda m, b: {"r": tinytask.mse_loss(m, b).mean()},
            r"metrics_fn\['r'\] returned shape \(\)",
        ),
    ],
)
def test_bad_metrics_are_one_line(tmp_path, metrics, message) -> None:
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    with pytest.raises(ls.InputError, match=message) as e:
        ls.compute_surface(
            model,
            batches,
            ls.SurfaceConfig(x=(-1, 1, 3)),
            out=tmp_path / "m.h5",
            loss_fn=tinytask.mse_loss,
            metrics_fn=metrics,
            progress=False,
        )
    assert "\n" not in str(e.value)


def test_a_bug_in_loss_fn_keeps_its_traceback(tmp_path) -> None:
    model, batches = tinytask.mlp(), tinytask.regression_batches()

    def buggy(m, batch):
        return tinytask.mse_loss(m, batch) / 0 if batch[0].shape[0] == 8 else {}["missing"]

    with pytest.raises(KeyError, match="missing") as e:
        ls.compute_surface(
            model,
            batches,
            ls.SurfaceConfig(x=(-1, 1, 3)),
            out=tmp_path / "bug.h5",
            loss_fn=buggy,
            progress=False,
        )
    assert not isinstance(e.value, ls.InputError)
    assert any(entry.name == "buggy" for entry in e.traceback)


def test_task_refuses_what_it_cannot_do(tmp_path) -> None:
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    kw = dict(out=tmp_path / "x.h5", progress=False)
    with pytest.raises(ls.InputError, match="strategy='folded'"):
        ls.compute_surface(
            model,
            batches,
            ls.SurfaceConfig(x=(-1, 1, 3), strategy="folded"),
            loss_fn=tinytask.mse_loss,
            **kw,
        )
    with pytest.raises(ls.InputError, match="metrics_fn needs a loss_fn"):
        ls.compute_surface(
            model, batches, ls.SurfaceConfig(x=(-1, 1, 3)), metrics_fn=tinytask.abs_error, **kw
        )
    with pytest.raises(ls.InputError, match="data is one batch"):
        ls.compute_surface(
            model,
            {"x": torch.zeros(2, 1)},
            ls.SurfaceConfig(x=(-1, 1, 3)),
            loss_fn=tinytask.mse_loss,
            **kw,
        )
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        ls.compute_surface(model, batches, ls.SurfaceConfig(x=(-1, 1, 3)), loss_fn="mse", **kw)


# ------------------------------------------------------------------ the command line


def lm_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "lm.pt"
    torch.save(tinytask.tiny_lm().state_dict(), path)
    return path


def cli_args(ckpt: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--ckpt", str(ckpt), "--model", "tinytask:tiny_lm", "--task", "tinytask:lm_task",
        "--device", "cpu", "--out", str(out), "--quiet", "--x", "-1:1:5", "--y", "-1:1:3",
        *extra,
    ]  # fmt: skip


def test_command_line_task_and_params(tmp_path, capsys) -> None:
    from landscape.compute import main

    ckpt, out = lm_checkpoint(tmp_path), tmp_path / "cli.h5"
    assert main(cli_args(ckpt, out, "--params", "blocks.*.attn.*")) == 0
    model, batches = tinytask.tiny_lm(), tinytask.lm_batches()
    assert_matches_hand(out, model, tinytask.lm_loss, batches, metrics_fn=tinytask.lm_metrics)
    assert read_surface(out).config["task"] == "tinytask:lm_task"
    capsys.readouterr()
    assert main(cli_args(ckpt, out, "--params", "blocks.*.mlp.*")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "params: file has ['blocks.*.attn.*'], now ['blocks.*.mlp.*']" in err
    assert main(cli_args(ckpt, tmp_path / "b.h5", "--task", "tinytask:nope")) == 2
    assert "tinytask:nope" in capsys.readouterr().err


@pytest.mark.child
@pytest.mark.parametrize("case", ["lm-vmap", "regression-pointwise"])
def test_two_ranks_give_the_single_process_file(tmp_path, case) -> None:
    """The language model (vmap) and the regression (pointwise) under torchrun, 2 ranks:
    the single process's file, bit for bit, and the hand's values."""
    from helpers import PYTHON
    from procs import Proc
    from test_distributed import assert_same_surface, finish

    from landscape.compute import main

    name, strategy = case.split("-")
    if name == "lm":
        ckpt, model, loss_fn, batches = (
            lm_checkpoint(tmp_path),
            tinytask.tiny_lm(),
            tinytask.lm_loss,
            tinytask.lm_batches(),
        )
        extra = ["--strategy", strategy]
    else:
        ckpt, model = tmp_path / "mlp.pt", tinytask.mlp()
        torch.save(model.state_dict(), ckpt)
        loss_fn, batches = tinytask.mse_loss, tinytask.regression_batches()
        extra = [
            "--strategy", strategy, "--model", "tinytask:mlp_builder",
            "--task", "tinytask:regression_task", "--ignore", "none",
        ]  # fmt: skip
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    assert main(cli_args(ckpt, one, *extra)) == 0
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    code, out, err = finish(Proc([*cmd, "-m", "landscape.compute", *cli_args(ckpt, two, *extra)]))
    assert code == 0, err
    assert out.count("wrote") == 1 and "15/15 points" in out
    assert_same_surface(one, two)
    assert_matches_hand(two, model, loss_fn, batches)


def test_docs_section_runs_as_written_and_its_task_file_on_the_command_line(
    tmp_path, monkeypatch
) -> None:
    """docs/api.md section 9: its Python blocks in order, then its worked ``--task`` file
    (the last block, written to sine_task.py) with the command it gives."""
    import re

    from helpers import REPO

    from landscape.compute import main

    text = (REPO / "docs" / "api.md").read_text().split("## 9. Any model")[1]
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    command = re.search(r"```bash\n(landscape compute .*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"ls": ls}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    (tmp_path / "sine_task.py").write_text(blocks[-1])
    torch.save(namespace["net"].state_dict(), "sine.pt")
    argv = command.replace("\\\n", " ").split()[2:]
    argv = [a.strip("'") for a in argv]
    assert main([*argv, "--quiet"]) == 0
    head = read_surface("sine_head.h5")
    assert head.config["params"] == ["4.*"] and head.computed.all()
    # The command line's file holds what the Python API computes on the same grid.
    same = ls.compute_surface(
        namespace["net"],
        namespace["task"]()["data"],
        ls.SurfaceConfig(x=(-1, 1, 21), y=(-1, 1, 21), params="4.*"),
        out="api.h5",
        loss_fn=namespace["mse"],
        progress=False,
    )
    np.testing.assert_allclose(head.get("train", "loss"), same.get("train", "loss"), rtol=1e-6)
    # The curvature commands of the same section, with the same task (fewer steps here).
    from landscape.eigendirs import main as eigendirs
    from landscape.hessian import main as hessian

    lines = re.search(r"```bash\n(landscape hessian .*?)```", text, re.S).group(1).splitlines()
    fewer = {
        "hessian": ["--probes", "2", "--depth", "10", "--quiet"],
        "eigendirs": ["--iters", "10"],
    }
    for line in lines:
        name, *argv = line.split()[1:]
        run = hessian if name == "hessian" else eigendirs
        assert run([*argv, *fewer[name]]) == 0, line
    assert Path("sine_density.json").is_file() and Path("dirs.h5").is_file()


def test_the_builtin_task_written_as_a_task_gives_the_builtin_file(tmp_path, tiny_ckpt) -> None:
    """``--task`` without data takes --dataset's images as (x, y) batches; cross-entropy and
    accuracy written as a task give the built-in surface's values and standard errors."""
    from landscape.compute import main

    common = [
        "--ckpt", str(tiny_ckpt), "--dataset", "tinydata:tiny", "--device", "cpu", "--quiet",
        "--x", "-1:1:5", "--y", "-1:1:3", "--split", "train,test", "--strategy", "pointwise",
    ]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "builtin.h5")]) == 0
    assert main([*common, "--task", "tinytask:ce_task", "--out", str(tmp_path / "task.h5")]) == 0
    builtin, task = read_surface(tmp_path / "builtin.h5"), read_surface(tmp_path / "task.h5")
    assert sorted(builtin.values) == sorted(task.values)
    for name in builtin.values:
        np.testing.assert_allclose(task.values[name], builtin.values[name], rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(
        read_per_sample(tmp_path / "task.h5", "test"),
        read_per_sample(tmp_path / "builtin.h5", "test"),
        rtol=1e-4,
        atol=1e-6,
    )


def test_filter_normalization_per_row_for_every_weight_kind() -> None:
    """Embeddings per token, linear and attention projections per output unit, LoRA
    factors per row, convolutions per filter; 1-D tensors zero (ignore=biasbn)."""
    from landscape.surface.directions import random_direction

    torch.manual_seed(0)
    params = {
        "tok.weight": torch.randn(11, 8),  # embedding: a row per token
        "attn.in_proj_weight": torch.randn(24, 8),  # fused q, k, v: a row per output unit
        "attn.out_proj.weight": torch.randn(8, 8),
        "lora_A": torch.randn(2, 8),  # (r, in)
        "lora_B": torch.randn(8, 2),  # (out, r)
        "conv.weight": torch.randn(4, 3, 3, 3),
        "ln.weight": torch.rand(8) + 0.5,
        "head.bias": torch.randn(11),
    }
    d = random_direction(params, generator=torch.Generator().manual_seed(0))
    for name, w in params.items():
        if w.dim() == 1:
            assert not torch.count_nonzero(d[name]), name
            continue
        for i in range(w.shape[0]):
            assert float(d[name][i].norm()) == pytest.approx(float(w[i].norm()), rel=1e-5)


def test_a_loader_of_dict_samples(tmp_path) -> None:
    """A Dataset of dict samples: the DataLoader collates dict batches, read once."""
    batches = tinytask.lm_batches(n_batches=2)

    class Sequences(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.ids = torch.cat([b["input_ids"] for b in batches])
            self.mask = torch.cat([b["attention_mask"] for b in batches])

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": self.ids[i], "attention_mask": self.mask[i]}

    loader = torch.utils.data.DataLoader(Sequences(), batch_size=4)
    model, out = tinytask.tiny_lm(), tmp_path / "loader.h5"
    config = ls.SurfaceConfig(x=(-1, 1, 3), y=(-1, 1, 3))
    ls.compute_surface(model, loader, config, out=out, loss_fn=tinytask.lm_loss, progress=False)
    assert_matches_hand(out, model, tinytask.lm_loss, batches)
    # The same samples in the same batches: the list resumes the loader's file.
    ls.compute_surface(model, batches, config, out=out, loss_fn=tinytask.lm_loss, progress=False)


def test_fingerprint_is_the_content(tmp_path) -> None:
    """Every tensor leaf counts; a list and a tuple of the same tensors (a DataLoader's
    [x, y] and your (x, y)) are the same data."""
    batches = tinytask.regression_batches()
    assert tree_sha256(batches) == tree_sha256([list(b) for b in batches])
    changed = [(b[0], b[1].clone()) for b in batches]
    changed[-1][1][0] += 1e-3
    assert tree_sha256(changed) != tree_sha256(batches)
    assert tree_sha256(batches[:2]) != tree_sha256(batches)
    lm = tinytask.lm_batches()
    masked = [dict(b, attention_mask=b["attention_mask"].flip(1)) for b in lm]
    assert tree_sha256(masked) != tree_sha256(lm)


def test_config_task_from_python_and_not_with_loss_fn(tmp_path) -> None:
    model, batches = tinytask.tiny_lm(), tinytask.lm_batches(n_batches=1)
    config = ls.SurfaceConfig(x=(-1, 1, 3), task="tinytask:lm_task")
    surface = ls.compute_surface(model, batches, config, out=tmp_path / "t.h5", progress=False)
    assert "train_token_accuracy" in surface.values
    assert surface.provenance["task"]["loss_fn"] == "tinytask:lm_loss"
    with pytest.raises(ls.InputError, match="config.task 'tinytask:lm_task' and loss_fn both"):
        ls.compute_surface(
            model, batches, config, out=tmp_path / "u.h5", loss_fn=tinytask.lm_loss, progress=False
        )


def test_vmap_out_of_memory_halves_the_points_per_pass(tmp_path, monkeypatch, caplog) -> None:
    from landscape.surface.task import TaskEvaluator

    real, calls = TaskEvaluator._vmap_points, []

    def tight(self, coords):
        calls.append(len(coords))
        if len(coords) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, coords)

    monkeypatch.setattr(TaskEvaluator, "_vmap_points", tight)
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    out = tmp_path / "oom.h5"
    config = ls.SurfaceConfig(x=(-1, 1, 9), strategy="vmap", chunk_size=8)
    ls.compute_surface(model, batches, config, out=out, loss_fn=tinytask.mse_loss, progress=False)
    assert calls[:3] == [8, 4, 2] and max(calls[3:]) <= 2
    assert no_fallback(caplog)
    assert_matches_hand(out, model, tinytask.mse_loss, batches)


def test_two_splits_each_checked_before_anything_is_written(tmp_path) -> None:
    model = tinytask.mlp()
    train, test = tinytask.regression_batches(), tinytask.regression_batches(n=24, batch=8)
    config = ls.SurfaceConfig(x=(-1, 1, 3), split="train,test")
    surface = ls.compute_surface(
        model,
        {"train": train, "test": test},
        config,
        out=tmp_path / "two.h5",
        loss_fn=tinytask.mse_loss,
        metrics_fn=tinytask.abs_error,
        progress=False,
    )
    assert surface.splits == ["test", "train"]
    assert_matches_hand(tmp_path / "two.h5", model, tinytask.mse_loss, test, split="test")

    def shy(m, batch):  # no metric on the test split's batches of 8
        return {} if batch[0].shape[0] == 8 else tinytask.abs_error(m, batch)

    out = tmp_path / "shy.h5"
    with pytest.raises(ls.InputError, match=r"metrics \[\] on the test split but") as e:
        ls.compute_surface(
            model,
            {"train": train, "test": test},
            config,
            out=out,
            loss_fn=tinytask.mse_loss,
            metrics_fn=shy,
            progress=False,
        )
    assert "\n" not in str(e.value) and not out.exists()


def test_command_line_bad_return_exits_2_and_a_bug_exits_1(tmp_path, capsys) -> None:
    from landscape.compute import main

    ckpt = lm_checkpoint(tmp_path)
    assert main(cli_args(ckpt, tmp_path / "a.h5", "--task", "tinytask:float_task")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "loss_fn returned a Python float" in err, err
    assert main(cli_args(ckpt, tmp_path / "b.h5", "--task", "tinytask:buggy_task")) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "broken_loss" in err, err


def test_a_selection_that_moves_nothing_is_refused(tmp_path) -> None:
    model, batches = tinytask.tiny_lm(), tinytask.lm_batches(n_batches=1)
    config = ls.SurfaceConfig(x=(-1, 1, 3), params="*.bias,ln.*")
    with pytest.raises(ls.InputError, match="ignore='none'") as e:
        ls.compute_surface(
            model, batches, config, out=tmp_path / "n.h5", loss_fn=tinytask.lm_loss, progress=False
        )
    assert "\n" not in str(e.value)
    # With ignore="none" the biases and norms move, each with its tensor's norm.
    config = ls.SurfaceConfig(x=(-1, 1, 3), params="*.bias,ln.*", ignore="none")
    out = tmp_path / "b.h5"
    ls.compute_surface(model, batches, config, out=out, loss_fn=tinytask.lm_loss, progress=False)
    dirs = read_directions(out)["x"]
    assert torch.count_nonzero(dirs["ln.weight"]) and not torch.count_nonzero(dirs["tok.weight"])
    assert_matches_hand(out, model, tinytask.lm_loss, batches)


def test_curvature_map_of_a_python_task_surface_asks_for_its_task_in_one_line(tmp_path) -> None:
    """The curvature map of a task's surface is that task's Hessian: a surface computed
    from Python is never mapped with another loss; without its task it is refused
    (the map itself: test_task_analysis.py)."""
    model, batches = tinytask.mlp(), tinytask.regression_batches()
    out = tmp_path / "t.h5"
    config = ls.SurfaceConfig(x=(-1, 1, 3), y=(-1, 1, 3))
    ls.compute_surface(model, batches, config, out=out, loss_fn=tinytask.mse_loss, progress=False)
    with pytest.raises(ls.InputError, match="surface of the task tinytask:mse_loss") as e:
        ls.surface_curvature_map(out, progress=None)
    assert "\n" not in str(e.value)


def test_a_plane_through_two_checkpoints_with_a_task(tmp_path) -> None:
    """ckpt2 with a task: alpha = 1 is the second model's loss."""
    model, batches = tinytask.tiny_lm(), tinytask.lm_batches(n_batches=2)
    other = tinytask.tiny_lm()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.save(model.state_dict(), tmp_path / "a.pt")
    torch.save(other.state_dict(), tmp_path / "b.pt")
    config = ls.SurfaceConfig(
        ckpt=tmp_path / "a.pt", ckpt2=tmp_path / "b.pt", model="tinytask:tiny_lm", x=(0, 1, 3)
    )
    surface = ls.compute_surface(
        model, batches, config, out=tmp_path / "ab.h5", loss_fn=tinytask.lm_loss, progress=False
    )
    with torch.no_grad():
        want = torch.cat([tinytask.lm_loss(other, b) for b in batches]).double().mean()
    assert surface.get("train", "loss")[-1] == pytest.approx(float(want), rel=1e-5)
