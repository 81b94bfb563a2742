"""The mean loss an analysis differentiates: the built-in ``(x, y)`` loss, or a task.

Every curvature and sharpness analysis (`hessian_spectrum`, `spectral_density`,
`per_block_curvature`, `worst_case_sharpness`, `average_case_sharpness`,
`eigenvector_directions`, the curvature maps) takes its loss one way: ``loss="ce"`` on
``(x, y)`` images for classifiers, or ``task=`` -- a `landscape.Task`, or a bare
``loss_fn(model, batch)`` -- on any batches, exactly as `landscape.compute_surface` takes
them (a list of batches of any pytree, a `DataLoader`, a map-style `Dataset`, an ``(x, y)``
tuple of tensors cut into batches). An `Objective` is that choice, fixed: the network and
the data on its device, and the sample mean of the loss over them (batch means weighted by
batch size), which is what every analysis differentiates. A task's ``metrics_fn`` is not
used here: curvature is of the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from landscape.analysis.hessian import HVP, _eval_mode, hvp_fn, task_hvp_fn
from landscape.core.checkpoints import as_model
from landscape.core.device import resolve_device
from landscape.core.errors import InputError
from landscape.data import as_tensors, check_model_fits
from landscape.surface.task import Task, TaskModule, check_value, materialize

__all__ = ["Objective", "as_task", "objective"]

LossGrad = Callable[..., tuple[float, Tensor]]


def as_task(task: Any) -> Task | None:
    """A `Task` from what a caller gave as ``task=``: a `Task`, a ``loss_fn(model, batch)``
    function (its task), or None (the built-in loss). Anything else is an `InputError`."""
    if task is None or isinstance(task, Task):
        return task
    if callable(task):
        return Task(task)
    raise InputError(
        f"task must be a landscape.Task or a function loss_fn(model, batch) -> per-sample "
        f"losses; got {type(task).__name__} {task!r:.60}",
        arg="task",
    )


@dataclass(frozen=True)
class Objective:
    """The sample-mean loss of `model` over fixed data: built-in or a task's.

    Attributes:
        model: the network, on the data's device.
        x, y: the built-in loss's inputs and targets (None with a task).
        loss: the built-in loss's name (``"ce"``, ``"mse"``, ...).
        batch_size: samples per pass of the built-in loss.
        task: the task (None: the built-in loss).
        batches, sizes: the task's batches on the device, and each one's B.
    """

    model: nn.Module
    x: Tensor | None = None
    y: Tensor | None = None
    loss: str | Callable[[Tensor, Tensor], Tensor] = "ce"
    batch_size: int = 256
    task: Task | None = None
    batches: tuple[Any, ...] = ()
    sizes: tuple[int, ...] = ()

    @property
    def n(self) -> int:
        """The number of samples the mean is over."""
        return int(sum(self.sizes)) if self.task is not None else len(self.y)

    @property
    def units(self) -> int:
        """What the data can be split into: samples (built-in) or batches (a task)."""
        return len(self.batches) if self.task is not None else len(self.y)

    def hvp(self, wrt: Sequence[str], params: Mapping[str, Tensor] | None = None) -> HVP:
        """The Hessian-vector product over `wrt` at `params` (default: the model's)."""
        if self.task is None:
            return hvp_fn(
                self.model, self.x, self.y, params=params, batch_size=self.batch_size,
                loss=self.loss, wrt=wrt,
            )  # fmt: skip
        return task_hvp_fn(
            self.model, self.batches, self.task.loss_fn, sizes=self.sizes, wrt=wrt, params=params
        )

    def subset(self, keep: np.ndarray) -> Objective:
        """The same loss over some units (sample indices, or batch indices with a task)."""
        if self.task is None:
            idx = torch.from_numpy(np.asarray(keep, dtype=np.int64)).to(self.x.device)
            return replace(self, x=self.x[idx], y=self.y[idx])
        keep = [int(i) for i in keep]
        return replace(
            self,
            batches=tuple(self.batches[i] for i in keep),
            sizes=tuple(self.sizes[i] for i in keep),
        )

    def leave_one_out(self, parts: int) -> list[Objective]:
        """`parts` objectives, each without one of `parts` contiguous groups of the units
        (the delete-one-group jackknife); none for ``parts == 0``."""
        if not parts:
            return []
        if parts > self.units:
            what = "batches (a task's data is split by batch)" if self.task else "samples"
            raise InputError(
                f"jackknife {parts} exceeds the {self.units} {what}; lower jackknife",
                arg="jackknife",
            )
        everything = np.arange(self.units)
        return [self.subset(np.setdiff1d(everything, g)) for g in np.array_split(everything, parts)]

    def loss_grad(self, names: Sequence[str]) -> LossGrad:
        """``delta -> (mean loss, gradient)`` at ``theta* + delta`` over `names` (flat, in
        that order); ``grad=False`` skips the backward pass (the gradient is then zero)."""
        if self.task is None:
            from landscape.analysis.sharpness import loss_and_grad_fn  # it imports this

            return loss_and_grad_fn(
                self.model, self.x, self.y, names, loss=self.loss, batch_size=self.batch_size
            )
        return task_loss_and_grad_fn(
            self.model, self.batches, self.task.loss_fn, names, sizes=self.sizes
        )


def objective(
    model: nn.Module | str | Any,
    data: Any,
    *,
    task: Task | Callable[[nn.Module, Any], Tensor] | None = None,
    loss: str | Callable[[Tensor, Tensor], Tensor] = "ce",
    batch_size: int = 256,
    device: str | torch.device = "auto",
) -> Objective:
    """The network and its data, ready: the `Objective` of `task` (or of `loss`) on `data`.

    Args:
        model: a network, or a checkpoint (path or ``pretrained:NAME``).
        data: with no task, a `DataTensors` or ``(x, y)`` tensors; with a task, any batches
            as `landscape.compute_surface` takes them (fixed once, on the device).
        task: a `Task` or a ``loss_fn(model, batch)``; its return is checked at theta* on
            the first batch (`landscape.surface.task.check_value`).
        loss: the built-in loss, without a task.
        batch_size: samples per pass (a task: the size of the batches cut from tensors or a
            `Dataset`; a list of batches is taken as it is).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...

    Returns:
        The `Objective`.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}")
    task = as_task(task)
    device = resolve_device(device)
    model = as_model(model, device)
    if task is None:
        x, y = as_tensors(data, device)
        check_model_fits(model, x, y, what="the data")
        return Objective(model, x, y, loss, batch_size)
    on = next(model.parameters()).device
    fixed = materialize(data, split="train", device=on, batch_size=batch_size)
    check_task(model, task, fixed.batches[0], fixed.sizes[0])
    return Objective(
        model, task=task, batches=tuple(fixed.batches), sizes=tuple(fixed.sizes),
        batch_size=batch_size,
    )  # fmt: skip


def check_task(model: nn.Module, task: Task, batch: Any, size: int) -> None:
    """The task's loss at theta* on one batch: a tensor of shape (B,) or (), not NaN."""
    name = getattr(task.loss_fn, "__qualname__", "loss_fn")
    with torch.no_grad(), _eval_mode(model):
        value = check_value(name, task.loss_fn(model, batch), size, "at theta* on batch 0")
    if torch.isnan(value).any():
        raise InputError(
            f"{name} returned NaN at theta* on batch 0 (the unperturbed model); check the "
            "loss and the batch",
            arg="task",
        )


def task_loss_and_grad_fn(
    model: nn.Module,
    batches: Sequence[Any],
    loss_fn: Callable[[nn.Module, Any], Tensor],
    names: Sequence[str],
    *,
    sizes: Sequence[int],
) -> LossGrad:
    """`loss_and_grad_fn` of a task: the sample mean of ``loss_fn`` over `batches`."""
    module = TaskModule(model, Task(loss_fn))
    base = {n: p.detach() for n, p in model.named_parameters()}
    bufs = {f"model.{n}": b for n, b in model.named_buffers()}
    names = list(names)
    shapes = [base[n].shape for n in names]
    numels = [base[n].numel() for n in names]
    theta = torch.cat([base[n].reshape(-1) for n in names])
    fixed = {f"model.{n}": t for n, t in base.items() if n not in set(names)}
    total = sum(sizes)

    def loss_grad(delta: Tensor, grad: bool = True) -> tuple[float, Tensor]:
        point = (theta + delta.to(theta)).detach().requires_grad_(grad)
        pieces = point.split(numels)
        sub = {f"model.{n}": p.reshape(s) for n, p, s in zip(names, pieces, shapes, strict=True)}
        value_sum, g_sum = 0.0, torch.zeros_like(theta)
        with _eval_mode(model), torch.set_grad_enabled(grad):
            for batch, size in zip(batches, sizes, strict=True):
                losses, _ = functional_call(module, ({**fixed, **sub}, bufs), (batch,))
                value = (losses.mean() if losses.dim() else losses) * (size / total)
                if grad:
                    g_sum += torch.autograd.grad(value, point)[0]
                value_sum += float(value.detach())
        return value_sum, g_sum.to(delta)

    return loss_grad
