"""A language model's loss landscape, offline: a small GPT trained on a public-domain text.

    python docs/examples/language_model.py                  # 30 s on 2 idle CPU cores
    python docs/examples/language_model.py --small          # seconds (what the tests run)
    python docs/examples/language_model.py --hf             # transformers' GPT2LMHeadModel
    python docs/examples/language_model.py --pretrained DIR # weights you have, from_pretrained

The text is the Gettysburg Address and the opening of the Declaration of Independence,
shipped in the package (`landscape.data.text`; both public domain: published in 1863 and
1776, long before the 1929 cutoff, and works of the United States besides). The tokens
are its characters, so nothing is downloaded. The model is a GPT-2-style causal LM built
from a config: `landscape.models.gpt.gpt` in plain torch, or, with ``--hf`` and the
``[transformers]`` extra installed (``pip install -e ".[transformers]"``),
``GPT2LMHeadModel(GPT2Config(...))``. After a short training run the example computes the
2-D surface of the per-sequence next-token loss (`causal_lm_loss`, a task) over all the
weights, and over the attention weights only (``params="blocks.*.attn.*"``, or
``"transformer.h.*.attn.*"`` for transformers' names), draws both side by side, and prints
the Hessian's top eigenvalue of the same loss.

**Weights you have.** ``--pretrained DIR`` loads ``GPT2LMHeadModel.from_pretrained(DIR)``
(any causal LM: ``AutoModelForCausalLM.from_pretrained(DIR)`` works the same way) from a
local folder, with ``AutoTokenizer.from_pretrained(DIR)`` when the folder holds a tokenizer
(else the characters: a model saved by this script with ``--hf --save DIR``). Nothing is
trained then; the surface is the model's own. In your own code::

    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained("path/to/dir", attn_implementation="eager")
    tok = AutoTokenizer.from_pretrained("path/to/dir")
    tok.pad_token = tok.pad_token or tok.eos_token
    enc = tok(list_of_texts, return_tensors="pt", padding=True, truncation=True, max_length=128)
    n = len(enc["input_ids"])
    batches = [{k: v[i : i + 8] for k, v in enc.items()} for i in range(0, n, 8)]
    ls.compute_surface(model, batches, ls.SurfaceConfig(x=(-1, 1, 21), y=(-1, 1, 21),
                       params="transformer.h.*.attn.*"), out="lm.h5", loss_fn=causal_lm_loss)
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

import landscape as ls
from landscape import (
    causal_lm_loss,
    causal_lm_metrics,
    char_vocab,
    gpt,
    text_batches,
    train_causal_lm,
)

# (full, small): the small one is what the tests run (seconds on a CPU).
SIZES = {
    "context": (64, 32),
    "dim": (64, 32),
    "layers": (2, 1),
    "heads": (4, 2),
    "steps": (600, 60),
    "grid": (15, 5),
    "sequences": (None, 16),
}


def build(args: argparse.Namespace, vocab_size: int, size: dict[str, int]) -> torch.nn.Module:
    """The network: ours, transformers' from a config, or transformers' from a folder."""
    if args.pretrained or args.hf:
        try:
            from transformers import GPT2Config, GPT2LMHeadModel
        except ImportError:
            sys.exit("--hf and --pretrained need transformers: pip install -e '.[transformers]'")
        if args.pretrained:
            # Eager attention: PyTorch's fused CPU attention has no second derivative, which
            # the Hessian needs (the surfaces alone would work with any).
            return GPT2LMHeadModel.from_pretrained(
                args.pretrained, attn_implementation="eager"
            ).eval()
        config = GPT2Config(
            vocab_size=vocab_size, n_positions=size["context"], n_embd=size["dim"],
            n_layer=size["layers"], n_head=size["heads"], bos_token_id=0, eos_token_id=0,
            attn_implementation="eager",  # a second derivative for the Hessian (see above)
        )  # fmt: skip
        torch.manual_seed(0)
        return GPT2LMHeadModel(config).eval()
    return gpt(
        vocab_size, context=size["context"], dim=size["dim"], layers=size["layers"],
        heads=size["heads"],
    )  # fmt: skip


def batches_for(args: argparse.Namespace, size: dict[str, int]) -> tuple[list[dict], int]:
    """The text's batches, tokenized by the folder's tokenizer or by characters."""
    if args.pretrained and (Path(args.pretrained) / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.pretrained)
        tok.pad_token = tok.pad_token or tok.eos_token
        from landscape.data.text import PUBLIC_DOMAIN_TEXT  # the shipped text

        lines = [s for s in PUBLIC_DOMAIN_TEXT.splitlines() if s.strip()]
        enc = tok(lines, return_tensors="pt", padding=True, truncation=True, max_length=128)
        return [{k: v[i : i + 4] for k, v in enc.items()} for i in range(0, len(lines), 4)], len(
            tok
        )
    vocab = char_vocab()
    batches = text_batches(
        context=size["context"], batch_size=8, vocab=vocab, max_sequences=size["sequences"]
    )
    return batches, vocab.size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="the tests' tiny configuration")
    p.add_argument("--hf", action="store_true", help="transformers' GPT2LMHeadModel")
    p.add_argument("--pretrained", metavar="DIR", help="from_pretrained(DIR); no training")
    p.add_argument("--save", metavar="DIR", help="save_pretrained the trained --hf model here")
    p.add_argument("--out", default="language_model_out", help="folder of the files written")
    args = p.parse_args(argv)
    size = {k: v[1] if args.small else v[0] for k, v in SIZES.items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    batches, vocab_size = batches_for(args, size)
    model = build(args, vocab_size, size)
    n = sum(p.numel() for p in model.parameters())
    print(f"{type(model).__name__}: {n:,} weights; {sum(len(b['input_ids']) for b in batches)} "
          f"sequences in {len(batches)} batches")  # fmt: skip
    if not args.pretrained:
        start = time.perf_counter()
        losses = train_causal_lm(model, batches, steps=size["steps"])
        print(f"trained {size['steps']} steps in {time.perf_counter() - start:.0f} s: loss "
              f"{losses[0]:.3f} -> {losses[-1]:.3f}")  # fmt: skip
    if args.save and args.hf:
        model.save_pretrained(args.save)

    # The attention weights, by the names of the model at hand.
    attention = "transformer.h.*.attn.*" if args.hf or args.pretrained else "blocks.*.attn.*"
    g = size["grid"]
    surfaces = []
    for label, params in (("all weights", ()), ("attention only", attention)):
        config = ls.SurfaceConfig(x=(-1, 1, g), y=(-1, 1, g), params=params, label=label)
        name = "all" if not params else "attention"
        surfaces.append(
            ls.compute_surface(
                model,
                batches,
                config,
                out=out / f"lm_{name}.h5",
                loss_fn=causal_lm_loss,
                metrics_fn=causal_lm_metrics,
                overwrite=True,
                progress=not args.small,
            )  # fmt: skip
        )
        loss = surfaces[-1].get("train", "loss")
        print(f"{label}: loss {loss[g // 2, g // 2]:.3f} at theta*, {loss.max():.3f} at most")
    fig = ls.surface_figure(surfaces, kind="contour", title="next-token loss")
    fig.savefig(out / "lm_surfaces.png", dpi=100)

    with warnings.catch_warnings():  # said below, with the numbers
        warnings.simplefilter("ignore")
        spectrum = ls.hessian_spectrum(
            model, batches, task=causal_lm_loss, k=1, iters=30, trace_samples=0,
            params=attention, progress=False,
        )  # fmt: skip
    note = "" if spectrum.converged else " (not converged)"
    print(f"attention Hessian: lambda_max {spectrum.lambda_max:.4g}, lambda_min "
          f"{spectrum.lambda_min:.4g}{note}")  # fmt: skip
    print(f"wrote {out}/lm_all.h5, lm_attention.h5 and lm_surfaces.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
