"""Training with a checkpoint per epoch: the path that PCA trajectories need.

The default recipe is the CIFAR one of He et al. 2015, Sec. 4.2: SGD with momentum
0.9, batch 128, learning rate 0.1 divided by 10 at 50% and 75% of training
(32k and 48k of 64k iterations = epochs 82 and 123 of 164), random 32x32 crops
of the image padded by 4 pixels and horizontal flips. Weight decay is 5e-4 as
in Li et al. 2018 (He et al. use 1e-4; ``weight_decay=1e-4``). Cosine and
one-cycle (Smith & Topin 2017) schedules are options.

Everything happens on whole tensors: the training split is one ``uint8``
tensor on the device; each batch is gathered, augmented (crop + flip by one
index gather) and normalized there. All randomness (shuffling, augmentation,
initialization) comes from generators seeded by ``TrainConfig.seed`` whose
states are stored in every checkpoint, so an interrupted run resumes to
bit-identical weights on a CPU.

Files in ``out``:

    config.json       the TrainConfig
    epoch_000.pt      the initialization; epoch_EEE.pt after every epoch
                      (thinned by save_every; the latest is always kept)
    final.pt          the weights after the last epoch
    metrics.csv       per epoch: train/test loss and error, lr, time
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from landscape.core.device import resolve_device
from landscape.core.errors import InputError
from landscape.core.fields import option
from landscape.core.files import atomic_write_text, exclusive_lock
from landscape.data import DataTensors, check_model_fits, normalize
from landscape.data.spec import DataSpec, accepts_data_fields, from_flat
from landscape.models import create_model, load_state_dict_strict, read_checkpoint, save_checkpoint
from landscape.models.checkpoint import CheckpointError

__all__ = [
    "CHANNELS_LAST",
    "METRIC_FIELDS",
    "TRAIN_PRECISIONS",
    "SCHEDULES",
    "TrainConfig",
    "TrainConfigError",
    "augment_batch",
    "evaluate",
    "lr_factor",
    "run_training",
]

log = logging.getLogger(__name__)

SCHEDULES = ("step", "cosine", "onecycle", "constant")
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")
CHANNELS_LAST = ("auto", "on", "off")
METRIC_FIELDS = (
    "epoch",
    "train_loss",
    "train_error",
    "test_loss",
    "test_error",
    "lr",
    "time",
    "elapsed",
)
# Settings that change how fast a run goes or where files are, not what it computes:
# they may differ when a run is resumed.
RUNTIME_FIELDS = (
    "out",
    "data_root",
    "download",
    "save_every",
    "eval_batch_size",
    "precision",
    "channels_last",
)
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pt$")


class TrainConfigError(InputError):
    """Bad training settings, or settings that differ from the run already in ``out``."""


@accepts_data_fields
@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; stored as ``config.json`` and in each checkpoint.

    Attributes:
        model: registry name or ``module.path:function``.
        model_kwargs: extra builder arguments (``num_classes`` comes from the data).
        out: output folder.
        data: the training data (`DataSpec`: dataset, data_root, download, samples,
            subset, data_seed; those six may also be given as keywords of their own);
            its `samples` limits the training split.
        test_samples: test samples evaluated after every epoch (all when None),
            chosen by the same `subset` rule and `data_seed`.
        epochs, batch_size, lr, momentum, nesterov, weight_decay: SGD.
        schedule: ``step`` (x `gamma` at each fraction in `milestones` of the
            epochs), ``cosine`` (to 0 per iteration), ``onecycle`` (up from
            ``lr / onecycle_div`` over the first `onecycle_pct` of the iterations,
            then cosine down to ``lr / (onecycle_div * 1e4)``) or ``constant``.
        warmup_epochs: linear warm-up (step, cosine, constant), may be fractional.
        label_smoothing: of the training loss (evaluation losses use none).
        augment, crop_padding, flip: random crop of the zero-padded image and
            horizontal flip, for image datasets (a user's dataset is used as given).
        seed: initialization, shuffling and augmentation.
        save_every: keep ``epoch_EEE.pt`` only for multiples of it (plus 0, the
            last and the latest).
        eval_batch_size: samples per forward pass in evaluation.
        precision: ``auto`` (bf16 autocast on a GPU that supports it and on a CPU
            with AMX, where it measured faster; else fp32), ``fp32`` or ``bf16``.
        channels_last: ``auto`` (on for CUDA and CPU, where it measured faster), ``on``, ``off``.
    """

    model: str = option("network name or module.path:function", default="resnet56")
    model_kwargs: dict[str, Any] = option(
        "builder arguments", default_factory=dict, metavar="JSON", type="json_object"
    )
    out: str = option(
        "output folder (runs/MODEL when absent)", default="runs/resnet56", cli_default=None
    )
    data: DataSpec = field(default_factory=DataSpec)
    test_samples: int | None = option(
        "test samples evaluated per epoch (all when absent); --samples limits the train split",
        group="data",
        metavar="N",
        type="positive_int",
    )
    epochs: int = option(
        "as He et al. 2015", group="optimization", default=164, type="positive_int"
    )
    batch_size: int = option(
        "samples per step", group="optimization", default=128, type="positive_int"
    )
    lr: float = option(
        "base (onecycle: peak) learning rate", group="optimization", default=0.1, type="float"
    )
    momentum: float = option("SGD momentum", group="optimization", default=0.9, type="float")
    nesterov: bool = option(
        "Nesterov momentum", group="optimization", default=False, action="store_true"
    )
    weight_decay: float = option(
        "L2 on every parameter", group="optimization", default=5e-4, type="float"
    )
    schedule: str = option(
        "step: x gamma at the milestones; cosine; onecycle; constant",
        group="optimization",
        default="step",
        choices=SCHEDULES,
    )
    milestones: tuple[float, ...] = option(
        "step schedule: fractions of the epochs where lr is multiplied by --gamma",
        group="optimization",
        default=(0.5, 0.75),
        metavar="F,F",
        type="fractions",
    )
    gamma: float = option("step schedule factor", group="optimization", default=0.1, type="float")
    warmup_epochs: float = option(
        "linear warm-up epochs (not onecycle)", group="optimization", default=0.0, type="float"
    )
    onecycle_pct: float = option(
        "onecycle: rising fraction", group="optimization", default=0.3, type="float"
    )
    onecycle_div: float = option(
        "onecycle: starting lr = lr / DIV",
        group="optimization",
        default=25.0,
        type="float",
        metavar="DIV",
    )
    label_smoothing: float = option(
        "of the training loss", group="optimization", default=0.0, type="float"
    )
    augment: bool = option(
        "no random crops or flips",
        group="augmentation (image datasets only)",
        default=True,
        flag="--no-augment",
        action="store_false",
    )
    crop_padding: int = option(
        "zero padding of the random crops",
        group="augmentation (image datasets only)",
        default=4,
        type="int",
    )
    flip: bool = option(
        "no random horizontal flips",
        group="augmentation (image datasets only)",
        default=True,
        flag="--no-flip",
        action="store_false",
    )
    seed: int = option(
        "seed of init, shuffling, augmentation", group="optimization", default=0, type="seed"
    )
    save_every: int = option(
        "keep every K-th epoch checkpoint", group="run", default=1, metavar="K", type="positive_int"
    )
    eval_batch_size: int = option(
        "samples per forward pass", group="run", default=500, type="positive_int"
    )
    precision: str = option(
        "auto: bf16 autocast on a GPU and on a CPU with AMX, else fp32",
        group="run",
        default="auto",
        choices=TRAIN_PRECISIONS,
    )
    channels_last: str = option(
        "memory format (auto: on; measured faster on GPU and CPU)",
        group="run",
        default="auto",
        choices=CHANNELS_LAST,
    )

    def __post_init__(self) -> None:
        if isinstance(self.out, os.PathLike):
            object.__setattr__(self, "out", os.fspath(self.out))
        for name in ("model", "out", "schedule", "precision", "channels_last"):
            if not isinstance(getattr(self, name), str):
                value = getattr(self, name)
                raise TypeError(
                    f"TrainConfig.{name} must be str, got {type(value).__name__} {value!r}"
                    + (
                        " (name the network: 'resnet20' or 'module.path:function')"
                        if name == "model"
                        else ""
                    )
                )
        if not isinstance(self.model_kwargs, dict):
            raise TypeError(
                f"TrainConfig.model_kwargs must be a dict, got {type(self.model_kwargs).__name__}"
            )
        # JSON round trips give lists; keep the dataclass hash- and compare-friendly.
        object.__setattr__(self, "milestones", tuple(float(m) for m in self.milestones))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        checks = [
            ("epochs", self.epochs >= 1, "a positive integer"),
            ("batch_size", self.batch_size >= 1, "a positive integer"),
            ("lr", 0 < self.lr < math.inf, "a positive finite number"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("weight_decay", 0 <= self.weight_decay < math.inf, "non-negative and finite"),
            ("schedule", self.schedule in SCHEDULES, f"one of {SCHEDULES}"),
            (
                "milestones",
                all(0 < m < 1 for m in self.milestones)
                and list(self.milestones) == sorted(set(self.milestones)),
                "increasing fractions in (0, 1), e.g. 0.5,0.75",
            ),
            ("gamma", 0 < self.gamma < math.inf, "a positive finite number"),
            ("warmup_epochs", 0 <= self.warmup_epochs <= self.epochs, "in [0, epochs]"),
            ("onecycle_pct", 0 < self.onecycle_pct < 1, "in (0, 1)"),
            ("onecycle_div", 1 <= self.onecycle_div < math.inf, ">= 1 and finite"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            # Bounded before anything is allocated (a padded batch is made every step).
            ("crop_padding", 0 <= self.crop_padding <= 1024, "in 0..1024"),
            ("save_every", self.save_every >= 1, "a positive integer"),
            ("eval_batch_size", self.eval_batch_size >= 1, "a positive integer"),
            ("precision", self.precision in TRAIN_PRECISIONS, f"one of {TRAIN_PRECISIONS}"),
            ("channels_last", self.channels_last in CHANNELS_LAST, f"one of {CHANNELS_LAST}"),
            ("test_samples", self.test_samples is None or self.test_samples >= 1, "positive"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise TrainConfigError(
                    f"{name} must be {rule}, got {getattr(self, name)!r}", arg=name
                )

    def to_dict(self) -> dict[str, Any]:
        """The settings as ``config.json`` stores them: flat, the data record's included."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "data"}
        d["milestones"] = list(self.milestones)
        d["model_kwargs"] = dict(self.model_kwargs)
        return {**self.data.to_json(), "download": self.data.download, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The record `to_dict` wrote (settings it does not know ignored)."""
        return from_flat(cls, d)

    def differences(self, other: TrainConfig) -> list[str]:
        """``name: other -> self`` for every setting that changes the results."""
        a, b = other.to_dict(), self.to_dict()
        return [
            f"{k}: {a[k]!r} -> {b[k]!r}" for k in b if k not in RUNTIME_FIELDS and a.get(k) != b[k]
        ]


# ------------------------------------------------------------------ pieces


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate of iteration `step` (0-based) as a multiple of ``config.lr``."""
    total = config.epochs * steps_per_epoch
    t = min(step, total) / total
    if config.schedule == "onecycle":
        # Smith & Topin 2017, with cosine phases as torch.optim.lr_scheduler.OneCycleLR.
        start, end = 1.0 / config.onecycle_div, 1.0 / (config.onecycle_div * 1e4)
        peak = config.onecycle_pct
        if t < peak:
            return start + (1.0 - start) * (1 - math.cos(math.pi * t / peak)) / 2
        return end + (1.0 - end) * (1 + math.cos(math.pi * (t - peak) / (1 - peak))) / 2
    if config.schedule == "step":
        epoch = step // steps_per_epoch
        passed = sum(epoch >= int(m * config.epochs + 0.5) for m in config.milestones)
        factor = config.gamma**passed
    elif config.schedule == "cosine":
        factor = (1 + math.cos(math.pi * t)) / 2
    else:
        factor = 1.0
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        factor *= (step + 1) / warmup
    return factor


def augment_batch(
    x: torch.Tensor, *, padding: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Random crops of the zero-padded images and random horizontal flips, in one gather.

    The same as torchvision's ``RandomCrop(size, padding)`` then
    ``RandomHorizontalFlip()`` per image. Random numbers are drawn on the CPU from
    `generator`, so the stream is the same on every device. x: (B, C, H, W).
    """
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5
    if not flip:
        flips.zero_()
    dev = x.device
    ar_h, ar_w = torch.arange(h), torch.arange(w)
    rows = offsets[0, :, None] + ar_h  # (B, H)
    cols = torch.where(flips[:, None], w - 1 - ar_w, ar_w) + offsets[1, :, None]  # (B, W)
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    return padded[
        torch.arange(b, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows.to(dev)[:, None, :, None],
        cols.to(dev)[:, None, None, :],
    ]  # (B, C, H, W)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: DataTensors,
    *,
    batch_size: int = 500,
    amp: bool = False,
    channels_last: bool = False,
) -> tuple[float, float]:
    """Mean cross-entropy and error rate (fraction) of `model` on `data`, in eval mode.

    `data` should already be on the model's device; batches are normalized there.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    wrong = torch.zeros((), dtype=torch.int64, device=device)
    try:
        for start in range(0, len(data), batch_size):
            xb = _prepare(data.x[start : start + batch_size], data, channels_last)
            yb = data.y[start : start + batch_size]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").double()
            wrong += (logits.argmax(1) != yb).sum()
    finally:
        model.train(was_training)
    n = max(len(data), 1)
    return float(loss_sum) / n, int(wrong) / n


def _prepare(x: torch.Tensor, data: DataTensors, channels_last: bool) -> torch.Tensor:
    x = normalize(x, data.mean, data.std)
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _use_amp(config: TrainConfig, device: torch.device) -> bool:
    if config.precision != "auto":
        return config.precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # CPUs with AMX tiles run bf16 convolutions natively: resnet20, batch 128,
    # channels_last, one SGD step: 0.30 s bf16 vs 0.51 s fp32 (1 thread, CPU time,
    # median of 10) on the development CPU. Without AMX, bf16 is emulated and slower.
    return device.type == "cpu" and _cpu_has_amx()


def _cpu_has_amx() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def _use_channels_last(config: TrainConfig, device: torch.device) -> bool:
    if config.channels_last == "auto":
        # resnet20, batch 128, one SGD step on the development CPU (Xeon with AMX):
        # 2 threads, wall, best of 15: 0.179 s channels_last vs 0.225 s contiguous;
        # 1 thread, CPU time, median of 10: fp32 0.51 vs 0.65 s, bf16 0.30 vs 0.36 s.
        return device.type in ("cuda", "cpu")
    return config.channels_last == "on"


@contextmanager
def _own_rng(device: torch.device) -> Iterator[None]:
    """Use the global torch RNG (model init, a user's dropout) without leaking changes."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def _rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator, device: torch.device):
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ------------------------------------------------------------------ files


def _epoch_path(out: Path, epoch: int) -> Path:
    return out / f"epoch_{epoch:03d}.pt"


def _latest_checkpoint(out: Path) -> Path | None:
    found = [(int(m[1]), p) for p in out.glob("epoch_*.pt") if (m := _EPOCH_FILE.match(p.name))]
    return max(found)[1] if found else None


def _write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_FIELDS})
    atomic_write_text(path, buf.getvalue())


def _check_existing(config: TrainConfig, out: Path) -> None:
    """Refuse to continue a run in `out` that was made with other settings."""
    latest = _latest_checkpoint(out)
    if latest is None:
        return  # nothing trained yet (at most a config.json of a run that failed to start)
    try:
        stored = read_checkpoint(latest).get("train_config")
    except CheckpointError as e:
        raise TrainConfigError(
            f"{e}; delete {latest.name} to resume from the checkpoint before it, "
            "or choose a new out",
            arg="out",
        ) from e
    if not isinstance(stored, dict):
        raise TrainConfigError(
            f"{latest} has no training settings to resume from; choose a new out", arg="out"
        )
    diffs = config.differences(TrainConfig.from_dict(stored))
    if diffs:
        raise TrainConfigError(
            f"{out} holds a run with other settings ({'; '.join(diffs)}); "
            "rerun with the same settings to resume, or choose a new out",
            arg="out",
        )


def _check_outputs(model: nn.Module, data: DataTensors) -> None:
    """Refuse inputs the model rejects, and a model with fewer outputs than the data has
    classes, before any training."""
    x = normalize(data.x[:1], data.mean, data.std)
    n_out = check_model_fits(model, x, data.y[:0], what="the training data")
    if n_out < data.num_classes:
        raise TrainConfigError(
            f"the model has {n_out} classes but the dataset has {data.num_classes}; "
            "drop num_classes from model_kwargs (it comes from the data)",
            arg="model_kwargs",
        )


# ------------------------------------------------------------------ the loop


def run_training(
    config: TrainConfig,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Path:
    """Train ``config.model`` and write checkpoints and metrics to ``config.out``.

    Rerun with the same `config` to resume from the latest checkpoint (a
    finished run returns at once).

    Args:
        config: all settings.
        device: ``None``/``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:N"``.
        progress: show a tqdm bar per epoch.

    Returns:
        The path of ``final.pt``.

    Raises:
        TrainConfigError: bad settings, or ``out`` holds a run with other settings.
        landscape.data.datasets.DataError: the data cannot be loaded.
    """
    device = resolve_device(device)
    out = Path(config.out)
    final = out / "final.pt"
    if out.exists() and not out.is_dir():
        raise TrainConfigError(
            f"out {str(out)!r} is a file; a run is a folder of checkpoints - choose a folder",
            arg="out",
        )
    _check_existing(config, out)

    train_data = config.data.load("train")
    test_data = dataclasses.replace(config.data, samples=config.test_samples).load("test")
    # Whole splits on the device once; batches are gathered there.
    train_dev, test_dev = train_data.to(device), test_data.to(device)
    augment = config.augment and train_data.mean is not None and train_data.x.dim() == 4
    amp, channels_last = _use_amp(config, device), _use_channels_last(config, device)

    model_kwargs = {"num_classes": train_data.num_classes, **config.model_kwargs}
    if train_data.in_channels != 3 and "in_channels" not in model_kwargs:
        model_kwargs["in_channels"] = train_data.in_channels
    with _own_rng(device), contextlib.ExitStack() as stack:
        torch.manual_seed(config.seed)
        try:
            model = create_model(config.model, **model_kwargs)
        except (ValueError, TypeError) as e:
            raise TrainConfigError(f"cannot build model {config.model!r}: {e}") from e
        _check_outputs(model, train_data)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        steps_per_epoch = _steps_per_epoch(len(train_data), config.batch_size)
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(config, step, steps_per_epoch)
        )
        generator = torch.Generator().manual_seed(config.seed)
        history: list[dict[str, float]] = []
        start_epoch = 0

        busy = f"{out} is being trained by another process; wait for it or choose another out"
        stack.enter_context(exclusive_lock(out / ".lock", busy, arg="out"))
        latest = _latest_checkpoint(out)
        if latest is not None:
            # On the CPU: RNG states must stay there; load_state_dict moves the rest.
            ckpt = read_checkpoint(latest, map_location="cpu")
            try:
                load_state_dict_strict(model, ckpt["state_dict"])
                optimizer.load_state_dict(ckpt["optimizer"])
                scheduler.load_state_dict(ckpt["scheduler"])
                _set_rng_state(ckpt["rng"], generator, device)
            except KeyError as e:
                raise TrainConfigError(
                    f"{latest} lacks {e} needed to resume; delete it or choose a new out",
                    arg="out",
                ) from e
            history = [dict(r) for r in ckpt.get("history", [])]
            start_epoch = int(ckpt["epoch"])
            if start_epoch >= config.epochs and final.is_file():
                log.info("%s is complete (%d epochs)", out, start_epoch)
                return final
            log.info("resuming %s from epoch %d", out, start_epoch)

        run = _Run(
            config=config,
            out=out,
            model=model,
            model_kwargs=model_kwargs,
            optimizer=optimizer,
            scheduler=scheduler,
            generator=generator,
            device=device,
            dataset_info={**train_data.info, "test": test_data.info},
            history=history,
        )
        if latest is None:
            text = json.dumps(config.to_dict(), indent=2) + "\n"
            atomic_write_text(out / "config.json", text)
            torch.manual_seed(config.seed + 1)  # a user's model may draw (dropout)
            test_loss, test_error = evaluate(
                model,
                test_dev,
                batch_size=config.eval_batch_size,
                amp=amp,
                channels_last=channels_last,
            )
            lr0 = config.lr * lr_factor(config, 0, steps_per_epoch)
            row = _row(0, None, None, test_loss, test_error, lr0)
            run.save(0, row, time_spent=0.0)

        for epoch in range(start_epoch + 1, config.epochs + 1):
            t0 = time.perf_counter()
            train_loss, train_error, lr = _train_epoch(
                run,
                train_dev,
                epoch=epoch,
                steps_per_epoch=steps_per_epoch,
                augment=augment,
                amp=amp,
                channels_last=channels_last,
                progress=progress,
            )
            test_loss, test_error = evaluate(
                model,
                test_dev,
                batch_size=config.eval_batch_size,
                amp=amp,
                channels_last=channels_last,
            )
            if not math.isfinite(train_loss):  # diverged: stop, keep the epochs before it
                raise TrainConfigError(
                    f"the training loss became {train_loss} in epoch {epoch}: the run diverged "
                    f"(lr {config.lr}); lower lr or add warmup_epochs - the checkpoints "
                    "before this epoch are kept",
                    arg=("lr", "warmup_epochs"),
                )
            row = _row(epoch, train_loss, train_error, test_loss, test_error, lr)
            row = run.save(epoch, row, time_spent=time.perf_counter() - t0)
            log.info(
                "epoch %d/%d  train loss %.4f err %.2f%%  test loss %.4f err %.2f%%  "
                "lr %.4g  %.1fs",
                epoch,
                config.epochs,
                train_loss,
                100 * train_error,
                test_loss,
                100 * test_error,
                lr,
                row["time"],
            )
        run.save_final()
    return final


def _steps_per_epoch(n: int, batch_size: int) -> int:
    # A last batch of one sample is dropped: BatchNorm cannot train on it.
    return n // batch_size + (1 if n % batch_size > 1 else 0)


def _row(
    epoch: int,
    train_loss: float | None,
    train_error: float | None,
    test_loss: float,
    test_error: float,
    lr: float,
) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_error": train_error,
        "test_loss": test_loss,
        "test_error": test_error,
        "lr": lr,
    }


def _train_epoch(
    run: _Run,
    data: DataTensors,
    *,
    epoch: int,
    steps_per_epoch: int,
    augment: bool,
    amp: bool,
    channels_last: bool,
    progress: bool,
) -> tuple[float, float, float]:
    """One pass over `data`; the mean training loss and error over its batches, and the lr."""
    from landscape.core.progress import progress_bar

    config, model, optimizer = run.config, run.model, run.optimizer
    device = run.device
    model.train()
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    order = torch.randperm(len(data), generator=run.generator).to(device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    wrong = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    lr = optimizer.param_groups[0]["lr"]
    bar = progress_bar(
        progress,
        total=steps_per_epoch,
        desc=f"epoch {epoch}/{config.epochs}",
        unit="batch",
        leave=False,
        dynamic_ncols=True,
    )
    with bar:
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            xb, yb = data.x[idx], data.y[idx]
            if augment:
                xb = augment_batch(
                    xb, padding=config.crop_padding, flip=config.flip, generator=run.generator
                )
            xb = _prepare(xb, data, channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(xb)
            loss = criterion(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            run.scheduler.step()
            loss_sum += loss.detach().double() * len(idx)
            wrong += (logits.detach().argmax(1) != yb).sum()
            seen += len(idx)
            bar.update(1)
            if progress and (step % 20 == 0 or step == steps_per_epoch - 1):
                bar.set_postfix(loss=f"{float(loss_sum) / seen:.4f}", lr=f"{lr:.4g}")
    return float(loss_sum) / seen, int(wrong) / seen, lr


@dataclass
class _Run:
    """The live state of one training run and how it is saved."""

    config: TrainConfig
    out: Path
    model: nn.Module
    model_kwargs: dict[str, Any]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    device: torch.device
    dataset_info: dict[str, Any]
    history: list[dict[str, Any]]

    def save(self, epoch: int, row: dict[str, Any], *, time_spent: float) -> dict[str, Any]:
        """Write the checkpoint of `epoch` and the metrics file; the completed row."""
        elapsed = (self.history[-1]["elapsed"] if self.history else 0.0) + time_spent
        row = {**row, "time": round(time_spent, 3), "elapsed": round(elapsed, 3)}
        self.history = [r for r in self.history if r["epoch"] < epoch] + [row]
        self._save(_epoch_path(self.out, epoch), epoch, row)
        # Thin the path: keep 0, multiples of save_every and the last epoch; the
        # latest stays until the next one is written, so resuming always works.
        previous = epoch - 1
        if previous > 0 and previous % self.config.save_every != 0:
            _epoch_path(self.out, previous).unlink(missing_ok=True)
        _write_metrics(self.out / "metrics.csv", self.history)
        return row

    def save_final(self) -> None:
        row = self.history[-1]
        self._save(self.out / "final.pt", int(row["epoch"]), row)

    def _save(self, path: Path, epoch: int, row: dict[str, Any]) -> None:
        save_checkpoint(
            path,
            self.model,
            model_name=self.config.model,
            model_kwargs=self.model_kwargs,
            epoch=epoch,
            metrics=row,
            dataset=self.dataset_info,
            extra={
                "train_config": self.config.to_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": _rng_state(self.generator, self.device),
                "history": self.history,
            },
        )
