"""The language-model pieces: the small GPT (`landscape.models.gpt`), the shipped text and
its task (`landscape.data.text`), and the worked example `docs/examples/language_model.py`
in its small configuration (with transformers' GPT-2 too, where the extra is installed)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from helpers import REPO

import landscape as ls
from landscape.data import text
from landscape.models.gpt import gpt


def example():
    path = REPO / "docs" / "examples" / "language_model.py"
    spec = importlib.util.spec_from_file_location("language_model_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpt_is_causal_and_ignores_padded_keys() -> None:
    model = gpt(13, context=10, dim=16, layers=2, heads=4)
    ids = torch.randint(0, 13, (3, 10), generator=torch.Generator().manual_seed(0))
    logits = model(ids)
    assert logits.shape == (3, 10, 13)
    later = ids.clone()
    later[:, 6:] = (later[:, 6:] + 1) % 13  # the future changes; the past's logits do not
    assert torch.allclose(model(later)[:, :6], logits[:, :6], atol=1e-6)
    mask = torch.ones_like(ids)
    mask[:, 8:] = 0  # padded tail: the positions before it see the same keys either way
    assert torch.allclose(model(ids, mask)[:, :8], logits[:, :8], atol=1e-6)
    # Seeded weights, the global generator left alone.
    state = torch.random.get_rng_state()
    again = gpt(13, context=10, dim=16, layers=2, heads=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match="exceed the context"):
        model(torch.zeros(1, 11, dtype=torch.long))


def test_text_batches_cover_the_text_and_pad_the_tail() -> None:
    vocab = text.char_vocab()
    assert vocab.decode(vocab.encode(text.PUBLIC_DOMAIN_TEXT)) == text.PUBLIC_DOMAIN_TEXT
    assert text.PUBLIC_DOMAIN_TEXT.startswith("Four score and seven years ago")
    batches = text.text_batches(context=32, batch_size=8, vocab=vocab)
    ids = torch.cat([b["input_ids"] for b in batches])
    mask = torch.cat([b["attention_mask"] for b in batches])
    assert ids.shape[1] == 32 and all(len(b["input_ids"]) <= 8 for b in batches)
    # Rows overlap by half: the text is every row's first half, then the last row's rest.
    rebuilt = "".join(vocab.decode(r[:16]) for r in ids[:-1]) + vocab.decode(
        ids[-1][mask[-1].bool()]
    )
    assert rebuilt == text.PUBLIC_DOMAIN_TEXT
    assert mask[:-1].all() and not mask[-1].all()
    assert len(text.text_batches(context=32, max_sequences=5)[0]["input_ids"]) == 5


def test_causal_lm_loss_matches_a_loop_and_reads_logits_objects() -> None:
    model = gpt(40, context=32, dim=16, layers=1, heads=2)
    batch = text.text_batches(context=32, batch_size=8)[-1]  # the padded one is in it
    got = text.causal_lm_loss(model, batch)
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"])
    for i in range(len(got)):
        n = int(batch["attention_mask"][i].sum())
        ce = [
            F.cross_entropy(logits[i, t], batch["input_ids"][i, t + 1]).item() for t in range(n - 1)
        ]
        assert got[i].item() == pytest.approx(sum(ce) / len(ce), rel=1e-5)

    class Output:  # a Hugging Face model's output: the logits as .logits
        def __init__(self, logits):
            self.logits = logits

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, input_ids, attention_mask):
            return Output(self.inner(input_ids, attention_mask))

    assert torch.allclose(text.causal_lm_loss(Wrapped(), batch), got)
    acc = text.causal_lm_metrics(model, batch)["token_accuracy"]
    assert acc.shape == got.shape and ((0 <= acc) & (acc <= 1)).all()


def test_training_lowers_the_loss_and_the_surface_takes_the_task(tmp_path) -> None:
    vocab = text.char_vocab()
    batches = text.text_batches(context=16, batch_size=8, vocab=vocab, max_sequences=8)
    model = gpt(vocab.size, context=16, dim=16, layers=1, heads=2)
    losses = text.train_causal_lm(model, batches, steps=30)
    assert losses[-1] < losses[0] and not model.training
    surface = ls.compute_surface(
        model, batches, ls.SurfaceConfig(x=(-1, 1, 3), params="blocks.*.attn.*"),
        out=tmp_path / "lm.h5", loss_fn=text.causal_lm_loss, progress=False,
    )  # fmt: skip
    with torch.no_grad():
        at_optimum = torch.cat([text.causal_lm_loss(model, b) for b in batches]).mean()
    assert surface.get("train", "loss")[1] == pytest.approx(float(at_optimum), rel=1e-5)
    moving = {n for n, d in ls.read_directions(tmp_path / "lm.h5")["x"].items() if d.any()}
    assert moving == {"blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight"}


def test_the_example_runs_in_its_small_configuration(tmp_path, capsys) -> None:
    assert example().main(["--small", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "attention only: loss" in printed and "lambda_max" in printed
    for name in ("lm_all.h5", "lm_attention.h5", "lm_surfaces.png"):
        assert (tmp_path / name).stat().st_size > 0
    attention = ls.read_surface(tmp_path / "lm_attention.h5")
    assert attention.config["params"] == ["blocks.*.attn.*"] and attention.computed.all()


def test_the_example_with_transformers_and_from_pretrained(tmp_path, capsys) -> None:
    """Only where the [transformers] extra is installed (not in dev: tests/README.md)."""
    pytest.importorskip("transformers")
    module = example()
    saved = tmp_path / "saved"
    assert module.main(["--small", "--hf", "--out", str(tmp_path / "a"), "--save", str(saved)]) == 0
    first = capsys.readouterr().out
    assert module.main(["--small", "--pretrained", str(saved), "--out", str(tmp_path / "b")]) == 0
    again = capsys.readouterr().out
    line = next(x for x in first.splitlines() if x.startswith("all weights"))
    assert line in again  # the saved weights, loaded back: the same surface
