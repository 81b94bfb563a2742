"""A small public-domain text for language models, offline: characters, batches, a task.

The text is two documents everyone can copy: Abraham Lincoln's Gettysburg Address (1863,
the Bliss copy) and the opening of the United States Declaration of Independence (1776).
Both are in the public domain: published long before 1929 (the United States' cutoff),
and the work of the United States' government and its officers besides.

Characters are the tokens (`CharVocab`, a few dozen of them), so a causal LM of a few
ten thousand weights learns the text in minutes on a CPU. `text_batches` cuts it into
dict batches ``{"input_ids", "attention_mask"}`` as a tokenizer would give them;
`causal_lm_loss` and `causal_lm_metrics` are the task of any causal LM called as
``model(input_ids=..., attention_mask=...)`` that returns logits (B, T, V) or an object
with ``.logits`` (a Hugging Face model): ``compute_surface(..., loss_fn=causal_lm_loss)``
and ``task=causal_lm_loss`` of the curvature analyses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PUBLIC_DOMAIN_TEXT",
    "CharVocab",
    "char_vocab",
    "text_batches",
    "causal_lm_loss",
    "causal_lm_metrics",
    "train_causal_lm",
]

GETTYSBURG = """\
Four score and seven years ago our fathers brought forth on this continent, a new nation, \
conceived in Liberty, and dedicated to the proposition that all men are created equal.
Now we are engaged in a great civil war, testing whether that nation, or any nation so \
conceived and so dedicated, can long endure. We are met on a great battle-field of that war. \
We have come to dedicate a portion of that field, as a final resting place for those who \
here gave their lives that that nation might live. It is altogether fitting and proper that \
we should do this.
But, in a larger sense, we can not dedicate -- we can not consecrate -- we can not hallow -- \
this ground. The brave men, living and dead, who struggled here, have consecrated it, far \
above our poor power to add or detract. The world will little note, nor long remember what \
we say here, but it can never forget what they did here. It is for us the living, rather, \
to be dedicated here to the unfinished work which they who fought here have thus far so \
nobly advanced. It is rather for us to be here dedicated to the great task remaining before \
us -- that from these honored dead we take increased devotion to that cause for which they \
gave the last full measure of devotion -- that we here highly resolve that these dead shall \
not have died in vain -- that this nation, under God, shall have a new birth of freedom -- \
and that government of the people, by the people, for the people, shall not perish from the \
earth.
"""

DECLARATION = """\
When in the Course of human events, it becomes necessary for one people to dissolve the \
political bands which have connected them with another, and to assume among the powers of \
the earth, the separate and equal station to which the Laws of Nature and of Nature's God \
entitle them, a decent respect to the opinions of mankind requires that they should declare \
the causes which impel them to the separation.
We hold these truths to be self-evident, that all men are created equal, that they are \
endowed by their Creator with certain unalienable Rights, that among these are Life, Liberty \
and the pursuit of Happiness.
"""

PUBLIC_DOMAIN_TEXT = GETTYSBURG + DECLARATION


@dataclass(frozen=True)
class CharVocab:
    """Characters as tokens: id ``i`` is ``chars[i]``.

    Attributes:
        chars: the characters, sorted.
    """

    chars: str

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        """The ids of `text`'s characters, (len(text),) int64."""
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {''.join(unknown)!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """The text of token ids."""
        return "".join(self.chars[int(i)] for i in ids)


def char_vocab(text: str = PUBLIC_DOMAIN_TEXT) -> CharVocab:
    """The vocabulary of `text`'s characters.

    Args:
        text: the text (default: the shipped one).

    Returns:
        Its `CharVocab`.
    """
    return CharVocab("".join(sorted(set(text))))


def text_batches(
    text: str = PUBLIC_DOMAIN_TEXT,
    *,
    context: int = 64,
    batch_size: int = 16,
    vocab: CharVocab | None = None,
    max_sequences: int | None = None,
) -> list[dict[str, Tensor]]:
    """`text` cut into sequences of `context` characters, in order, as dict batches.

    Consecutive sequences overlap by half (stride ``context // 2``); the last one is padded
    (``attention_mask`` 0 where it runs out of text).

    Args:
        text: the text (default: the shipped one).
        context: tokens per sequence.
        batch_size: sequences per batch (the last batch may hold fewer).
        vocab: the tokens (default: `text`'s characters).
        max_sequences: keep only the first this many sequences (a smaller data set).

    Returns:
        ``[{"input_ids": (B, context) int64, "attention_mask": (B, context) int64}, ...]``.
    """
    if context < 2 or batch_size < 1:
        raise ValueError(f"context must be >= 2 and batch_size >= 1; got {context}, {batch_size}")
    vocab = vocab or char_vocab(text)
    ids = vocab.encode(text)
    stride = max(1, context // 2)
    starts = list(range(0, max(1, len(ids) - stride), stride))[:max_sequences]
    seqs = torch.zeros(len(starts), context, dtype=torch.long)
    mask = torch.zeros(len(starts), context, dtype=torch.long)
    for row, s in enumerate(starts):
        piece = ids[s : s + context]
        seqs[row, : len(piece)] = piece
        mask[row, : len(piece)] = 1
    return [
        {"input_ids": seqs[i : i + batch_size], "attention_mask": mask[i : i + batch_size]}
        for i in range(0, len(starts), batch_size)
    ]


def _logits(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return getattr(out, "logits", out)  # a Hugging Face output, or the logits themselves


def causal_lm_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Per-sequence mean next-token cross-entropy over the unpadded positions: (B,).

    Args:
        model: a causal LM, ``model(input_ids=, attention_mask=)`` -> logits or ``.logits``.
        batch: ``{"input_ids": (B, T), "attention_mask": (B, T)}``.

    Returns:
        The losses, (B,).
    """
    ids, mask = batch["input_ids"], batch["attention_mask"]
    logits = _logits(model, batch)[:, :-1]  # (B, T-1, V): position t predicts token t+1
    ce = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
    ).view(ids.shape[0], -1)
    m = mask[:, 1:].to(ce.dtype)
    return (ce * m).sum(1) / m.sum(1).clamp(min=1)


def causal_lm_metrics(model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-sequence next-token accuracy over the unpadded positions.

    Args:
        model, batch: as in `causal_lm_loss`.

    Returns:
        ``{"token_accuracy": (B,)}``.
    """
    ids, mask = batch["input_ids"], batch["attention_mask"]
    logits = _logits(model, batch)[:, :-1]
    m = mask[:, 1:].to(logits.dtype)
    hits = (logits.argmax(-1) == ids[:, 1:]).to(logits.dtype) * m
    return {"token_accuracy": hits.sum(1) / m.sum(1).clamp(min=1)}


def train_causal_lm(
    model: nn.Module,
    batches: Sequence[dict[str, Tensor]],
    *,
    steps: int,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """A few AdamW steps on `causal_lm_loss`, the batches in a seeded random order (for
    examples; the model is trained in place and left in eval mode).

    Args:
        model: the causal LM.
        batches: the training batches.
        steps: optimizer steps (one batch each).
        lr: AdamW's learning rate (cosine-decayed to 0).
        seed: of the batch order.

    Returns:
        The loss of every step.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    losses: list[float] = []
    model.train()
    for _ in range(steps):
        batch: Any = batches[int(torch.randint(len(batches), (1,), generator=gen))]
        loss = causal_lm_loss(model, batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses
