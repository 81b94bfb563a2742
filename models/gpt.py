"""A small GPT-2-style causal language model in plain torch (Radford et al. 2019).

Token and position embeddings, ``layers`` pre-LayerNorm blocks of causal self-attention
and an MLP, a final LayerNorm and a language-model head, as GPT-2 has them (nanoGPT's
layout), except that the head is not tied to the token embedding: every weight has one
name, and moves once. Parameter names follow the same pattern as Hugging Face's
``GPT2LMHeadModel`` where a selection cares: every block's attention weights are
``blocks.I.attn.*`` (``transformer.h.I.attn.*`` there). Not in the model registry: a
language model takes token ids, not images (``landscape.data.text`` gives it data and a
loss; ``docs/examples/language_model.py`` a worked example).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GPT", "gpt"]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; padded keys (``attention_mask`` 0) are ignored."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)  # GPT-2's c_attn
        self.proj = nn.Linear(dim, dim)  # GPT-2's c_proj

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        b, t, d = h.shape  # (B, T, C)
        q, k, v = self.qkv(h).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)  # (B, heads, T, T)
        allowed = torch.ones(t, t, dtype=torch.bool, device=h.device).tril()
        if mask is not None:
            allowed = allowed & mask[:, None, None, :].bool()
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        out = scores.softmax(-1) @ v  # (B, heads, T, C / heads)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: ``h + attn(ln1(h))``, then ``h + mlp(ln2(h))``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        h = h + self.attn(self.ln1(h), mask)
        return h + self.mlp(self.ln2(h))


class GPT(nn.Module):
    """A GPT-2-style causal LM: ``forward(input_ids, attention_mask=None)`` -> logits
    (B, T, vocab_size).

    Args:
        vocab_size: the number of tokens.
        context: the longest sequence (position embeddings).
        dim: the width of the residual stream.
        layers: transformer blocks.
        heads: attention heads per block.
    """

    def __init__(
        self, vocab_size: int, *, context: int = 64, dim: int = 64, layers: int = 2, heads: int = 4
    ) -> None:
        super().__init__()
        self.config = {
            "vocab_size": vocab_size, "context": context, "dim": dim, "layers": layers,
            "heads": heads,
        }  # fmt: skip
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual outputs
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        t = input_ids.shape[1]
        if t > self.config["context"]:
            raise ValueError(f"sequences of {t} tokens exceed the context {self.config['context']}")
        h = self.tok(input_ids) + self.pos(torch.arange(t, device=input_ids.device))  # (B, T, C)
        for block in self.blocks:
            h = block(h, attention_mask)
        return self.head(self.ln_f(h))  # (B, T, vocab)

    def loss(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Mean next-token cross-entropy over the unpadded positions (for training)."""
        logits = self(input_ids, attention_mask)[:, :-1]
        ce = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1), reduction="none"
        )
        if attention_mask is None:
            return ce.mean()
        m = attention_mask[:, 1:].reshape(-1).to(ce.dtype)
        return (ce * m).sum() / m.sum()


def gpt(vocab_size: int, *, seed: int = 0, **kwargs: int) -> GPT:
    """A `GPT` with weights drawn from `seed` (the global generator is left alone).

    Args:
        vocab_size: the number of tokens.
        seed: of the initial weights.
        **kwargs: ``context``, ``dim``, ``layers``, ``heads`` (see `GPT`).

    Returns:
        The network, in eval mode.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT(vocab_size, **kwargs).eval()
