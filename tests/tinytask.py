"""Tasks for the tests (`test_task.py`): a tiny causal language model on dict batches and a
regression MLP on tuple batches, written in plain torch; ``--task tinytask:lm_task`` and
``--model tinytask:tiny_lm`` for the command line."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VOCAB, DIM, CONTEXT = 11, 8, 6


class Attention(nn.Module):
    """Causal self-attention with hand-written q, k, v and output projections."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        b, t, d = h.shape
        split = lambda z: z.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)  # (b, heads, t, t)
        causal = torch.ones(t, t, dtype=torch.bool, device=h.device).tril()
        allowed = causal & mask[:, None, None, :].bool()
        scores = scores.masked_fill(~allowed, -1e9)
        att = scores.softmax(-1) @ v
        return self.out(att.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        h = h + self.attn(self.ln1(h), mask)
        return h + self.mlp(self.ln2(h))


class TinyLM(nn.Module):
    """Token and position embeddings, one attention block, layer norm, LM head."""

    def __init__(self, vocab: int = VOCAB, dim: int = DIM, heads: int = 2, context: int = CONTEXT):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList([Block(dim, heads)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        t = input_ids.shape[1]
        h = self.tok(input_ids) + self.pos(torch.arange(t, device=input_ids.device))
        for block in self.blocks:
            h = block(h, attention_mask)
        return self.head(self.ln(h))


def tiny_lm(num_classes: int = VOCAB, **kwargs) -> nn.Module:
    """A builder for ``--model tinytask:tiny_lm`` (num_classes is the vocabulary)."""
    torch.manual_seed(0)
    model = TinyLM(vocab=VOCAB, **kwargs)
    with torch.no_grad():  # trained-looking layer norms: not all ones and zeros
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model.eval()


def lm_batches(n_batches: int = 3, batch: int = 4, seed: int = 0) -> list[dict[str, Tensor]]:
    """Dict batches of token ids with padded tails (attention_mask 0 at the end)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        ids = torch.randint(0, VOCAB, (batch, CONTEXT), generator=g)
        lengths = torch.randint(3, CONTEXT + 1, (batch,), generator=g)
        mask = (torch.arange(CONTEXT)[None, :] < lengths[:, None]).long()
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def lm_token_losses(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    ids, mask = batch["input_ids"], batch["attention_mask"]
    logits = model(ids, mask)[:, :-1]
    ce = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
    ).view(ids.shape[0], -1)
    return ce, mask[:, 1:].to(ce.dtype)


def lm_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Per-sequence mean cross-entropy of the next token over the unpadded positions: (B,)."""
    ce, m = lm_token_losses(model, batch)
    return (ce * m).sum(1) / m.sum(1)


def lm_metrics(model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-sequence next-token accuracy over the unpadded positions."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    logits = model(ids, mask)[:, :-1]
    hits = (logits.argmax(-1) == ids[:, 1:]).double() * mask[:, 1:]
    return {"token_accuracy": hits.sum(1) / mask[:, 1:].sum(1)}


def lm_task() -> dict:
    """``--task tinytask:lm_task``: the LM's loss, its metric and its data."""
    return {"loss_fn": lm_loss, "metrics_fn": lm_metrics, "data": lm_batches()}


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)
    )


def regression_batches(n: int = 40, batch: int = 16) -> list[tuple[Tensor, Tensor]]:
    """(x, y) tuple batches of y = sin(2x) on [-2, 2]."""
    x = torch.linspace(-2, 2, n)[:, None]
    y = torch.sin(2 * x)
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def mse_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, y = batch
    return ((model(x) - y) ** 2).mean(-1)


def abs_error(model: nn.Module, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
    x, y = batch
    return {"abs_error": (model(x) - y).abs().mean(-1)}


def ce_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y, reduction="none")


def hits(model: nn.Module, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
    x, y = batch
    return {"accuracy": model(x).argmax(-1) == y}


def ce_task() -> dict:
    """``--task tinytask:ce_task``: the built-in task written as one, on --dataset's images."""
    return {"loss_fn": ce_loss, "metrics_fn": hits}


def float_task() -> dict:
    """A task whose loss_fn returns a Python float (bad input: exit 2)."""
    return {"loss_fn": lambda m, b: float(lm_loss(m, b).mean()), "data": lm_batches(1)}


def buggy_task() -> dict:
    """A task whose loss_fn has a bug (exit 1, its traceback)."""

    def broken_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return lm_loss(model, {"input_ids": batch["input_ids"]})  # KeyError: attention_mask

    return {"loss_fn": broken_loss, "data": lm_batches(1)}


def mlp_builder(num_classes: int = 1) -> nn.Module:
    """``--model tinytask:mlp_builder``: the regression MLP."""
    return mlp()


def regression_task() -> dict:
    """``--task tinytask:regression_task``: MSE and absolute error on (x, y) tuples."""
    return {"loss_fn": mse_loss, "metrics_fn": abs_error, "data": regression_batches()}
