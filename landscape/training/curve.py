"""Training a low-loss curve between two minima (Garipov et al. 2018, Sec. 3).

The bend points theta_1..theta_K of a curve w(t) (`landscape.surface.curve`: a Bezier
curve or a polygonal chain through A and B) are the trained parameters; A and B stay
fixed. Each step draws t ~ U(0, 1) and takes an SGD step on the loss of the network at
w(t), run through `torch.func.functional_call` (any network, no curve layers), BatchNorm
in train mode (batch statistics; the running statistics are not interpolated for this
forward pass and are re-estimated at evaluation). The bends start on the straight line,
``theta_i = A + i/(K+1) (B - A)`` (the midpoint (A+B)/2 for one bend: Garipov's
initialization; with these control points the Bezier curve is the line itself).

The curve file (`landscape.io.curve`) is written after every epoch: it is its own
checkpoint, and rerunning with the same settings resumes from it (bit-identical on a
CPU: the random generators' states travel with it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from landscape.core.checkpoints import load_model, resolve_checkpoint
from landscape.core.device import resolve_device
from landscape.core.errors import InputError
from landscape.core.fields import option
from landscape.core.files import exclusive_lock, sha256
from landscape.data import check_model_fits, normalize
from landscape.data.spec import DataSpec, accepts_data_fields, from_flat
from landscape.io.curve import read_curve, write_curve
from landscape.surface.curve import CURVES, check_bends, curve_point
from landscape.surface.direction_policy import state_of
from landscape.training.trainer import (
    _own_rng,
    _rng_state,
    _set_rng_state,
    _steps_per_epoch,
    augment_batch,
)

__all__ = ["CURVES", "CurveConfig", "train_curve"]

log = logging.getLogger(__name__)

# Settings that may differ when a curve's training is resumed: `epochs` too, since the
# learning rate is constant (more epochs continue the same run).
_RUNTIME_FIELDS = ("out", "data_root", "download", "epochs")


@accepts_data_fields
@dataclass(frozen=True)
class CurveConfig:
    """Every setting of a curve's training; stored in the curve file.

    Attributes:
        ckpt, ckpt2: the endpoints A (t = 0) and B (t = 1): checkpoint files or
            ``pretrained:NAME``, of one network.
        model, model_kwargs: the builder, for bare state_dicts (as ``landscape compute``).
        out: the curve file (.pt).
        data: the training data (`DataSpec`; its six fields may be given as keywords).
        curve: ``bezier`` (order K + 1) or ``polychain``.
        bends: K, the number of bend points.
        epochs, batch_size, lr, momentum, weight_decay: SGD on the bends (constant lr).
        augment: random crops (padding 4) and flips for image datasets.
        seed: the draws of t, the shuffling and the augmentation.
    """

    ckpt: str | None = option(
        "endpoint A (t = 0): a checkpoint or pretrained:NAME",
        group="curve",
        metavar="PATH",
        required=True,
    )
    ckpt2: str | None = option(
        "endpoint B (t = 1): a checkpoint of the same network",
        group="curve",
        metavar="PATH",
        required=True,
    )
    model: str | None = option(
        "network name or module.path:function; needed for bare state_dicts",
        group="curve",
        metavar="NAME",
    )
    model_kwargs: dict[str, Any] = option(
        "builder arguments", group="curve", default_factory=dict, metavar="JSON", type="json_object"
    )
    out: str = option("the curve file (.pt)", group="curve", default="curve.pt", metavar="PATH")
    data: DataSpec = field(default_factory=DataSpec)
    curve: str = option(
        "bezier: a Bezier curve of order K+1; polychain: A -> bends -> B",
        group="curve",
        default="bezier",
        choices=CURVES,
    )
    bends: int = option(
        "K, the number of bend points", group="curve", default=1, metavar="K", type="positive_int"
    )
    epochs: int = option(
        "epochs over the training data", group="optimization", default=10, type="positive_int"
    )
    batch_size: int = option(
        "samples per step", group="optimization", default=128, type="positive_int"
    )
    lr: float = option("learning rate (constant)", group="optimization", default=0.05, type="float")
    momentum: float = option("SGD momentum", group="optimization", default=0.9, type="float")
    weight_decay: float = option(
        "L2 on the bends", group="optimization", default=5e-4, type="float"
    )
    augment: bool = option(
        "no random crops or flips (image datasets)",
        group="optimization",
        default=True,
        flag="--no-augment",
        action="store_false",
    )
    seed: int = option(
        "seed of t, shuffling and augmentation", group="optimization", default=0, type="seed"
    )

    def __post_init__(self) -> None:
        for name in ("ckpt", "ckpt2", "out"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
            elif not isinstance(value, str) or not value:
                raise InputError(
                    f"{name} must be a file path; got {value!r}"
                    + (" (give --ckpt A --ckpt2 B: the two minima)" if name != "out" else ""),
                    arg=name,
                )
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs or {}))
        checks = [
            ("curve", self.curve in CURVES, f"one of {', '.join(CURVES)}"),
            ("bends", isinstance(self.bends, int) and 1 <= self.bends <= 64, "in 1..64"),
            ("epochs", self.epochs >= 1, "a positive integer"),
            ("batch_size", self.batch_size >= 2, "at least 2 (BatchNorm trains on batches)"),
            ("lr", 0 < self.lr < math.inf, "a positive finite number"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("weight_decay", 0 <= self.weight_decay < math.inf, "non-negative and finite"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise InputError(f"{name} must be {rule}; got {getattr(self, name)!r}", arg=name)

    def to_dict(self) -> dict[str, Any]:
        """The settings as the curve file stores them: flat, the data record's included."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "data"}
        return {**self.data.to_json(), "download": self.data.download, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CurveConfig:
        """The record `to_dict` wrote (settings it does not know ignored)."""
        return from_flat(cls, d)

    def differences(self, other: CurveConfig) -> list[str]:
        """``name: other -> self`` for every setting that changes the curve."""
        a, b = other.to_dict(), self.to_dict()
        return [
            f"{k}: {a.get(k)!r} -> {b[k]!r}"
            for k in b
            if k not in _RUNTIME_FIELDS and a.get(k) != b[k]
        ]


def train_curve(
    config: CurveConfig,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_epoch: Any = None,
) -> Path:
    """Train the bends of a curve between ``config.ckpt`` and ``config.ckpt2``.

    Writes the curve file ``config.out`` after every epoch; rerun with the same `config`
    to resume (a finished curve returns at once).

    Args:
        config: all settings.
        device: ``None``/``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:N"``.
        progress: show a progress bar per epoch.
        on_epoch: called as ``on_epoch(epoch, row)`` after each epoch's file is written.

    Returns:
        The path of the curve file.

    Raises:
        InputError: bad settings, endpoints of different networks, or ``out`` holds a
            curve of other settings or endpoints.
    """
    device = resolve_device(device)
    out = Path(config.out)
    if out.is_dir():
        raise InputError(f"out {str(out)!r} is a folder; give a curve file (.pt)", arg="out")
    refs = {}
    for key in ("ckpt", "ckpt2"):
        path = resolve_checkpoint(getattr(config, key))
        refs[key] = {"path": getattr(config, key), "sha256": sha256(path)}
    loaded = [
        load_model(getattr(config, k), model=config.model, model_kwargs=config.model_kwargs)
        for k in ("ckpt", "ckpt2")
    ]
    model = loaded[0].model.to(device)
    start, end = state_of(model, device), state_of(loaded[1].model, device)
    parameters = [n for n, _ in model.named_parameters()]
    check_bends(start, end, [], parameters)  # A and B: one network, before any data is loaded
    if not parameters:
        raise InputError("the network has no parameters: a curve moves parameters", arg="ckpt")

    train_data = config.data.load("train")
    check_model_fits(model, normalize(train_data.x[:1], train_data.mean, train_data.std),
                     train_data.y[:0], what="the training data")  # fmt: skip
    data = train_data.to(device)
    augment = config.augment and train_data.mean is not None and train_data.x.dim() == 4
    n_bends = config.bends
    bends = [
        {n: (start[n] + (i / (n_bends + 1)) * (end[n] - start[n])).clone() for n in parameters}
        for i in range(1, n_bends + 1)
    ]
    check_bends(start, end, bends, parameters)
    leaves = [b[n].requires_grad_(True) for b in bends for n in parameters]
    optimizer = torch.optim.SGD(
        leaves, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    start_epoch = 0

    busy = f"{out} is being trained by another process; wait for it or choose another out"
    with _own_rng(device), contextlib.ExitStack() as stack:
        stack.enter_context(exclusive_lock(out.with_name(f".{out.name}.lock"), busy, arg="out"))
        if out.exists():
            record = read_curve(out)
            _check_resume(config, record, refs, out)
            with torch.no_grad():
                for bend, stored in zip(bends, record["bend_states"], strict=True):
                    for n in parameters:
                        bend[n].copy_(stored[n])
            try:
                optimizer.load_state_dict(record["optimizer"])
                _set_rng_state(record["rng"], generator, device)
            except KeyError as e:
                raise InputError(
                    f"{out} lacks {e} needed to resume; delete it or choose a new out", arg="out"
                ) from e
            history = [dict(r) for r in record.get("history", [])]
            start_epoch = int(record["epoch"])
            if start_epoch > config.epochs:
                raise InputError(
                    f"{out} holds a curve trained for {start_epoch} epochs, more than the "
                    f"{config.epochs} asked; ask for at least {start_epoch}, or choose a new out",
                    arg=("epochs", "out"),
                )
            if start_epoch == config.epochs:
                log.info("%s is complete (%d epochs)", out, start_epoch)
                return out
            log.info("resuming %s from epoch %d", out, start_epoch)
        else:
            torch.manual_seed(config.seed + 1)  # a user's model may draw (dropout)
        steps = _steps_per_epoch(len(train_data), config.batch_size)
        model.train()
        for epoch in range(start_epoch + 1, config.epochs + 1):
            t0 = time.perf_counter()
            loss, error = _epoch(
                model, data, start, end, bends, config, generator, optimizer,
                steps=steps, augment=augment, progress=progress, epoch=epoch,
            )  # fmt: skip
            if not math.isfinite(loss):
                raise InputError(
                    f"the training loss became {loss} in epoch {epoch}: the curve diverged "
                    f"(lr {config.lr}); lower lr - the epochs before are kept in {out}",
                    arg="lr",
                )
            row = {
                "epoch": epoch,
                "train_loss": loss,
                "train_error": error,
                "lr": config.lr,
                "time": round(time.perf_counter() - t0, 3),
            }
            history.append(row)
            write_curve(
                out,
                {
                    "curve": config.curve,
                    "bends": n_bends,
                    "ckpt": refs["ckpt"],
                    "ckpt2": refs["ckpt2"],
                    "model": loaded[0].model_name,
                    "bend_states": [
                        {n: b[n].detach().cpu().clone() for n in parameters} for b in bends
                    ],
                    "epoch": epoch,
                    "history": history,
                    "config": config.to_dict(),
                    "dataset": train_data.info,
                    "optimizer": optimizer.state_dict(),
                    "rng": _rng_state(generator, device),
                },
            )
            log.info(
                "epoch %d/%d  curve train loss %.4f err %.2f%%  %.1fs",
                epoch, config.epochs, loss, 100 * error, row["time"],
            )  # fmt: skip
            if on_epoch is not None:
                on_epoch(epoch, row)
    return out


def _check_resume(
    config: CurveConfig, record: dict[str, Any], refs: dict[str, dict[str, str]], out: Path
) -> None:
    diffs = config.differences(CurveConfig.from_dict(record["config"]))
    for key in ("ckpt", "ckpt2"):
        if record[key].get("sha256") != refs[key]["sha256"]:
            diffs.append(f"{key} content differs from the one the curve was trained from")
    if diffs:
        raise InputError(
            f"{out} holds a curve of other settings ({'; '.join(diffs)}); rerun with the "
            "same settings to resume, or choose a new out",
            arg="out",
        )


def _epoch(
    model: torch.nn.Module,
    data: Any,
    start: dict[str, torch.Tensor],
    end: dict[str, torch.Tensor],
    bends: list[dict[str, torch.Tensor]],
    config: CurveConfig,
    generator: torch.Generator,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    augment: bool,
    progress: bool,
    epoch: int,
) -> tuple[float, float]:
    """One pass over `data` at t ~ U(0, 1) per batch; the mean loss and error."""
    from landscape.core.progress import progress_bar

    device = data.y.device
    order = torch.randperm(len(data), generator=generator).to(device)
    # Running statistics are updated in place by a train-mode forward: a scratch copy.
    scratch = {k: v.clone() for k, v in start.items() if k not in bends[0]}
    loss_sum, wrong, seen = 0.0, 0, 0
    bar = progress_bar(progress, total=steps, desc=f"curve epoch {epoch}/{config.epochs}",
                       unit="batch", leave=False, dynamic_ncols=True)  # fmt: skip
    with bar:
        for step in range(steps):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            xb, yb = data.x[idx], data.y[idx]
            if augment:
                xb = augment_batch(xb, padding=4, flip=True, generator=generator)
            xb = normalize(xb, data.mean, data.std)
            t = float(torch.rand((), generator=generator))
            state = curve_point(start, end, bends, config.curve, t)
            state.update(scratch)
            logits = functional_call(model, state, (xb,))
            loss = F.cross_entropy(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            wrong += int((logits.detach().argmax(1) != yb).sum())
            seen += len(idx)
            bar.update(1)
    return loss_sum / seen, wrong / seen
