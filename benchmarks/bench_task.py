"""Points per second of a task (``loss_fn``) surface: the batched vmap path against pointwise.

Two models written in plain torch, both on user batches through `compute_surface(...,
loss_fn=...)`: a small GPT-style causal LM on dict batches (``input_ids``,
``attention_mask``; per-sequence token-mean cross-entropy) and a regression MLP on
``(x, y)`` tuples (MSE). Each is timed pointwise and with vmap at a few chunk sizes K, on
the same grid, after a warm-up; the values of every strategy are compared. Where the
``[transformers]`` extra is installed, Hugging Face's ``GPT2LMHeadModel`` of the same size
(built from a ``GPT2Config``, nothing downloaded) is timed too, with `ls.causal_lm_loss`.

    python benchmarks/bench_task.py                  # CPU, 1 thread
    python benchmarks/bench_task.py --device cuda    # a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import landscape as ls


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        allowed = (
            torch.ones(t, t, dtype=torch.bool, device=h.device).tril()
            & mask[:, None, None, :].bool()
        )
        att = scores.masked_fill(~allowed, -1e9).softmax(-1) @ v
        h = h + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return h + self.mlp(self.ln2(h))


class GPT(nn.Module):
    def __init__(self, vocab: int = 256, d: int = 64, layers: int = 2, context: int = 32):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList([Block(d, 4) for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        h = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            h = block(h, mask)
        return self.head(self.ln(h))


def lm_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    ids, mask = batch["input_ids"], batch["attention_mask"]
    logits = model(ids, mask)[:, :-1]
    ce = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    m = mask[:, 1:].to(ce.dtype)
    return (ce.view(ids.shape[0], -1) * m).sum(1) / m.sum(1)


def mse(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, y = batch
    return ((model(x) - y) ** 2).mean(-1)


def cases(samples: int):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (samples, 32), generator=g)
    mask = torch.ones_like(ids)
    lm = [
        {"input_ids": ids[i : i + 64], "attention_mask": mask[i : i + 64]}
        for i in range(0, samples, 64)
    ]
    x = torch.linspace(-3, 3, 4 * samples)[:, None]
    reg = [(x[i : i + 1024], torch.sin(x[i : i + 1024])) for i in range(0, len(x), 1024)]
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    torch.manual_seed(0)
    out = {"lm": (GPT(), lm, lm_loss), "mlp": (mlp, reg, mse)}
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return out
    config = GPT2Config(
        vocab_size=256,
        n_positions=32,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    out["hf-gpt2"] = (GPT2LMHeadModel(config).eval(), lm, ls.causal_lm_loss)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--points", type=int, default=5, help="grid points per axis")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default=None, help="one case: lm, mlp or hf-gpt2")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    grid = (-1, 1, args.points)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, data, loss_fn) in cases(args.samples).items():
            if args.only and name != args.only:
                continue
            n = sum(len(b[0] if isinstance(b, tuple) else b["input_ids"]) for b in data)
            params = sum(p.numel() for p in model.parameters())
            print(f"{name}: {params:,} parameters, {n} samples, {args.points}x{args.points} points")
            ref = None
            for strategy, chunk in (("pointwise", None), ("vmap", 4), ("vmap", 8), ("vmap", 16)):
                config = ls.SurfaceConfig(
                    x=grid, y=grid, strategy=strategy, chunk_size=chunk, device=args.device
                )
                out = Path(tmp) / f"{name}_{strategy}_{chunk}.h5"
                kw = dict(loss_fn=loss_fn, progress=False, overwrite=True)
                warm = dataclasses.replace(config, x=(-1, 1, 2), y=None)
                ls.compute_surface(model, data, warm, out=Path(tmp) / "warm.h5", **kw)
                start = time.perf_counter()
                surface = ls.compute_surface(model, data, config, out=out, **kw)
                dt = time.perf_counter() - start
                values = surface.get("train", "loss")
                ref = values if ref is None else ref
                diff = float(np.max(np.abs(values - ref) / np.abs(ref)))
                label = strategy + (f" K={chunk}" if chunk else "")
                rate = args.points**2 / dt
                print(f"  {label:14s} {rate:8.2f} points/s  (max rel diff {diff:.1e})")


if __name__ == "__main__":
    main()
