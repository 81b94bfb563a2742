"""The losses a surface, a Hessian or a gradient can be taken of, defined once.

* ``ce``: cross-entropy of the logits (what the networks were trained with);
* ``mse``: mean squared error of the raw logits against one-hot labels, averaged over
  classes (``nn.MSELoss`` on the logits);
* ``mse-softmax``: the same of the softmax probabilities: the original loss-landscape
  code's ``--loss_name mse`` (``nn.MSELoss()(F.softmax(outputs), one_hot)``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from landscape.core.errors import InputError

__all__ = ["LOSSES", "mean_loss", "per_sample_loss"]

LOSSES = ("ce", "mse", "mse-softmax")


def per_sample_loss(logits: Tensor, y: Tensor, loss: str) -> Tensor:
    """Per-sample losses of `logits` (..., B, C) against class indices `y` (B,): (..., B)."""
    if loss == "ce":
        per = F.cross_entropy(
            logits.flatten(0, -2), y.expand(logits.shape[:-1]).flatten(), reduction="none"
        )
        return per.view(logits.shape[:-1])
    if loss in ("mse", "mse-softmax"):
        out = logits.softmax(-1) if loss == "mse-softmax" else logits
        target = F.one_hot(y, logits.shape[-1]).to(out.dtype).expand_as(out)
        return ((out - target) ** 2).mean(-1)
    raise InputError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}", arg="loss")


def mean_loss(logits: Tensor, y: Tensor, loss: str) -> Tensor:
    """The mean over samples of `per_sample_loss` (a differentiable scalar)."""
    return per_sample_loss(logits, y, loss).mean()
