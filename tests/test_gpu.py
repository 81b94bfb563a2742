"""GPU checks (marked `gpu`; run by benchmarks/gpu_check.sh, skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import randomize_bn
from tinydata import tiny

from landscape import models
from landscape.surface.config import SurfaceConfig
from landscape.surface.directions import random_direction
from landscape.surface.engine import compute_surface, state_of
from landscape.surface.evaluate import EvalData, make_evaluator

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _setup(device: str, name: str = "resnet20"):
    torch.manual_seed(0)
    model = randomize_bn(models.create_model(name))
    state = state_of(model, torch.device(device))
    params = {k: v for k, v in state.items() if k in dict(model.named_parameters())}
    g = torch.Generator().manual_seed(0)
    dx = random_direction(params, generator=g)
    dy = random_direction(params, generator=g)
    x, y = tiny("train")
    x = x.repeat(8, 1, 4, 4)  # (384, 3, 32, 32)
    y = y.repeat(8)
    return model, state, dx, dy, {"train": EvalData(x.to(device), y.to(device))}


COORDS = np.stack(np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 4), indexing="ij"), -1)


def test_vmap_on_gpu_equals_pointwise_on_cpu_fp32() -> None:
    ref = make_evaluator(*_setup("cpu"), strategy="pointwise", batch_size=128)(
        COORDS.reshape(-1, 2)
    )
    got = make_evaluator(*_setup("cuda"), strategy="vmap", batch_size=128)(COORDS.reshape(-1, 2))
    np.testing.assert_allclose(got["train_loss"], ref["train_loss"], rtol=1e-5)


@pytest.mark.parametrize("precision,rtol", [("tf32", 1e-2), ("bf16", 5e-2)])
def test_fast_precisions_close_to_fp32(precision: str, rtol: float) -> None:
    args = _setup("cuda")
    ref = make_evaluator(*args, strategy="vmap")(COORDS.reshape(-1, 2))
    got = make_evaluator(*args, strategy="vmap", precision=precision)(COORDS.reshape(-1, 2))
    np.testing.assert_allclose(got["train_loss"], ref["train_loss"], rtol=rtol)


def test_real_out_of_memory_backs_off() -> None:
    """An absurd chunk of points overflows GPU memory; the evaluator must shrink and finish."""
    args = _setup("cuda", "resnet56")
    free, _ = torch.cuda.mem_get_info()
    per_point = 384 * 64 * 32 * 32 * 4 * 20  # ~ activations of one point, generously
    chunk = int(4 * free / per_point) + 1
    ev = make_evaluator(*args, strategy="vmap", batch_size=384, chunk_size=chunk)
    coords = np.zeros((chunk, 2))
    out = ev(coords)
    assert np.isfinite(out["train_loss"]).all() and ev.chunk_size < chunk


def test_compute_surface_on_cuda(tmp_path) -> None:
    model, *_ = _setup("cpu")
    data = {"train": tiny("train")}
    cpu = compute_surface(
        model,
        data,
        SurfaceConfig(x="-1:1:5", y="-1:1:5", device="cpu"),
        out=tmp_path / "c.h5",
        progress=False,
    )
    gpu = compute_surface(
        model,
        data,
        SurfaceConfig(x="-1:1:5", y="-1:1:5", device="cuda"),
        out=tmp_path / "g.h5",
        progress=False,
    )
    np.testing.assert_allclose(gpu.get("train", "loss"), cpu.get("train", "loss"), rtol=1e-5)
