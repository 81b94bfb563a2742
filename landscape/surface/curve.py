"""Curves between two minima (Garipov et al. 2018), and the loss along them.

A curve joins endpoint A (t = 0) and B (t = 1) through K trained bend points
theta_1..theta_K:

* ``bezier``: the Bezier curve of order K + 1 with control points A, theta_1..theta_K, B,
  ``w(t) = sum_i C(K+1, i) t^i (1-t)^(K+1-i) P_i``; for K = 1 the quadratic
  ``w(t) = (1-t)^2 A + 2t(1-t) theta + t^2 B`` (Garipov et al. 2018, Sec. 3.1);
* ``polychain``: the polygonal chain A -> theta_1 -> ... -> theta_K -> B, bend i at
  t = i / (K + 1).

Any network runs at w(t) through `torch.func.functional_call` (no curve layers). Bends
hold the parameters only; float buffers (BatchNorm running statistics) follow the straight
line ``(1-t) A + t B`` and are re-estimated at each t with ``bn="recompute"`` (Garipov's
``update_bn``), the default of `evaluate_curve`.

`evaluate_curve` writes the curve's 1-D surface file (x axis = t; the same format as
``landscape compute``, per-sample losses kept) and the straight line A -> B beside it,
computed by the very path of ``landscape compute --ckpt A --ckpt2 B --x 0:1:N``, so the
two are evaluated on the same samples and compared paired (`landscape.analysis.
connectivity`). `CurveEvaluator` implements the engine's evaluator interface, so
`fill_surface` and the torchrun `Team` drive it unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from landscape.core.checkpoints import load_model, resolve_checkpoint
from landscape.core.errors import InputError
from landscape.core.files import sha256
from landscape.data import DataSpec
from landscape.data.datasets import is_plugin
from landscape.io.curve import read_curve, write_bend
from landscape.io.surface_file import STORED_METRICS, Surface, SurfaceFile
from landscape.surface import distributed
from landscape.surface.config import SurfaceConfig
from landscape.surface.direction_policy import state_of
from landscape.surface.directions import interpolation_direction
from landscape.surface.evaluate import PointwiseEvaluator
from landscape.surface.grid import parse_axis

__all__ = [
    "CURVES",
    "CurveEvaluator",
    "check_bends",
    "curve_coefficients",
    "curve_point",
    "evaluate_curve",
    "bend_path",
    "curve_plane",
    "line_path",
    "plane_coordinates",
    "plane_path",
]

CURVES = ("bezier", "polychain")


def curve_coefficients(kind: str, bends: int, t: float) -> list[float]:
    """The weights of A, theta_1..theta_K and B in w(t) (K + 2 numbers summing to 1).

    Args:
        kind: ``bezier`` or ``polychain``.
        bends: K, the number of bend points (>= 1).
        t: the position on the curve, in [0, 1].

    Returns:
        ``[c_A, c_1, ..., c_K, c_B]`` with ``w(t) = c_A A + sum_i c_i theta_i + c_B B``.
    """
    if kind not in CURVES:
        raise InputError(f"curve must be one of {', '.join(CURVES)}; got {kind!r}", arg="curve")
    if bends < 1:
        raise InputError(f"bends must be a positive integer; got {bends!r}", arg="bends")
    t = float(t)
    n = bends + 1
    if kind == "bezier":
        return [math.comb(n, i) * t**i * (1 - t) ** (n - i) for i in range(n + 1)]
    coeffs = [0.0] * (n + 1)
    j = min(int(t * n), n - 1)  # the segment [j/n, (j+1)/n] holding t
    s = t * n - j
    coeffs[j], coeffs[j + 1] = 1.0 - s, s
    return coeffs


def curve_point(
    start: Mapping[str, Tensor],
    end: Mapping[str, Tensor],
    bends: Sequence[Mapping[str, Tensor]],
    kind: str,
    t: float,
) -> dict[str, Tensor]:
    """The full state (parameters and buffers) at w(t).

    Parameters (the keys of the bends) follow the curve; float buffers the straight line
    ``(1-t) A + t B``; integer buffers are A's. Differentiable in the bends.
    """
    coeffs = curve_coefficients(kind, len(bends), t)
    out: dict[str, Tensor] = {}
    for name, a in start.items():
        if name in bends[0]:
            v = coeffs[0] * a + coeffs[-1] * end[name]
            for c, bend in zip(coeffs[1:-1], bends, strict=True):
                v = v + c * bend[name]
            out[name] = v
        elif a.is_floating_point():
            out[name] = (1 - t) * a + t * end[name]
        else:
            out[name] = a
    return out


def check_bends(
    start: Mapping[str, Tensor],
    end: Mapping[str, Tensor],
    bends: Sequence[Mapping[str, Tensor]],
    parameters: Sequence[str],
) -> None:
    """Refuse endpoints of different networks, and bends that are not their parameters."""
    interpolation_direction(start, end)  # the one check that A and B are the same network
    for i, bend in enumerate(bends):
        if set(bend) != set(parameters) or any(bend[k].shape != start[k].shape for k in parameters):
            raise InputError(
                f"bend {i + 1} of the curve does not hold the parameters of the endpoints' "
                "network; give the endpoints the curve was trained between"
            )


class CurveEvaluator(PointwiseEvaluator):
    """The loss at w(t) for the engine: a 1-D grid whose x coordinate is t.

    Args:
        model: the network (copied; never modified).
        start, end: the full states of A and B on the device.
        bends: the K bend points (parameters by name) on the device.
        kind: ``bezier`` or ``polychain``.
        splits: split name -> EvalData on the device.
        **kwargs: of `PointwiseEvaluator` (batch_size, loss, bn, bn_data, per_sample, ...).
    """

    name = "curve"

    def __init__(
        self,
        model: nn.Module,
        start: Mapping[str, Tensor],
        end: Mapping[str, Tensor],
        bends: Sequence[Mapping[str, Tensor]],
        kind: str,
        splits: Mapping[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(model, start, {}, None, splits, **kwargs)
        self.end = dict(end)
        self.bends = [dict(b) for b in bends]
        self.kind = kind
        curve_coefficients(kind, len(self.bends), 0.0)  # checks kind and K

    def _point_forward(self, alpha: float, beta: float) -> Callable[[Tensor], Tensor]:
        state = curve_point(self.base, self.end, self.bends, self.kind, alpha)
        if self.bn == "recompute":
            state = self._recompute_bn(state)
        return lambda x: functional_call(self.model, state, (x,))


def plane_path(out: str | os.PathLike) -> Path:
    """The plane's file beside the curve's: ``curve.h5`` -> ``curve_plane.h5``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_plane{out.suffix}")


def bend_path(curve: str | os.PathLike) -> Path:
    """The bend's checkpoint beside the curve file: ``curve.pt`` -> ``curve_bend.pt``."""
    curve = Path(curve)
    return curve.with_name(f"{curve.stem}_bend.pt")


def plane_coordinates(kind: str, t: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a one-bend curve runs on the plane through A, B and its bend.

    The plane's point (alpha, beta) is ``A + alpha (B - A) + beta (theta - A)``, so w(t)
    is at ``(c_B(t), c_theta(t))``: ``(t^2, 2t(1-t))`` for the quadratic Bezier curve,
    ``(0, 2t)`` then ``(2t-1, 2-2t)`` for the polygonal chain.

    Args:
        kind: ``bezier`` or ``polychain``.
        t: positions on the curve, in [0, 1].

    Returns:
        ``(alpha, beta)``, float arrays of the length of `t`.
    """
    coeffs = np.array([curve_coefficients(kind, 1, float(v)) for v in np.atleast_1d(t)])
    return coeffs[:, 2], coeffs[:, 1]


def line_path(out: str | os.PathLike) -> Path:
    """The straight line's file beside the curve's: ``curve.h5`` -> ``curve_line.h5``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_line{out.suffix}")


def evaluate_curve(
    curve: str | os.PathLike,
    *,
    out: str | os.PathLike,
    points: int = 21,
    split: str | Sequence[str] = ("train", "test"),
    data: DataSpec | None = None,
    bn: str = "recompute",
    bn_samples: int = 2048,
    batch_size: int | None = None,
    device: str = "auto",
    line: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[Surface | None, Surface | None]:
    """The loss along a trained curve, and along the straight line A -> B, into two files.

    `out` is the curve's 1-D surface (alpha = t on ``0:1:points``), `line_path(out)` the
    line's (the file ``landscape compute --ckpt A --ckpt2 B --x 0:1:N`` writes). Both keep
    every sample's loss, for the paired bootstrap of the barrier. Rerun to resume; under
    ``torchrun`` the ranks share the points of each file.

    Args:
        curve: the curve file (`landscape.training.train_curve`, ``landscape connect``).
        out: the curve's surface file (.h5).
        points: evaluated values of t, evenly spaced on [0, 1] (at least 3).
        split: ``train``, ``test`` or both.
        data: the samples (default: the data the curve was trained on).
        bn: ``recompute`` (BatchNorm statistics re-estimated at every t, Garipov's
            ``update_bn``) or ``eval`` (the statistics interpolated from A to B).
        bn_samples: training samples of the re-estimation.
        batch_size: samples per forward pass (automatic when None).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        line: also evaluate the straight line.
        overwrite: replace existing files instead of resuming them.
        progress: show a progress bar.

    Returns:
        ``(curve surface, line surface)``; the line None when not asked for; both None on
        ranks other than 0.
    """
    if not isinstance(points, int) or isinstance(points, bool) or points < 3:
        raise InputError(f"points must be an integer >= 3; got {points!r}", arg="points")
    curve = Path(curve)
    record = read_curve(curve)
    ends = _endpoints(curve, record)
    config = _endpoints_config(
        ends, record, data, bn=bn, split=split, x=(0.0, 1.0, points), bn_samples=bn_samples,
        batch_size=batch_size, device=device, per_sample="on",
    )  # fmt: skip
    curve_info = {**_curve_info(curve, record), "line": line_path(out).name if line else None}
    return _run(config, record, curve_info, Path(out), line=line, overwrite=overwrite,
                progress=progress)  # fmt: skip


PLANE_AXIS = (-0.25, 1.25)  # A (0, 0), B (1, 0) and the bend (0, 1), with a margin
PLANE_PATH_POINTS = 101  # values of t of the curve recorded on the plane


def curve_plane(
    curve: str | os.PathLike,
    out: str | os.PathLike,
    *,
    points: int = 31,
    x: str | None = None,
    y: str | None = None,
    split: str | Sequence[str] = ("train", "test"),
    data: DataSpec | None = None,
    bn: str = "recompute",
    bn_samples: int = 2048,
    batch_size: int | None = None,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> Surface:
    """The 2-D surface on the plane through A, B and the bend of a one-bend curve, with
    the curve recorded on it (Garipov et al. 2018, Fig. 1).

    The bend is written as a checkpoint beside the curve (`bend_path`, its BatchNorm
    statistics the mean of A's and B's, so that with ``bn="eval"`` too the plane at the
    curve's points is the curve), and the plane is ``landscape compute --ckpt A --ckpt2 B
    --ckpt3 BEND``: point (alpha, beta) is ``A + alpha (B - A) + beta (theta - A)``. The
    file's provenance records ``"paths"``, the curve (`plane_coordinates` at 101 values of
    t) and the line A -> B, and ``"points"`` A, B and the bend, which ``landscape plot``
    and ``landscape view`` draw. Rerun to resume.

    Args:
        curve: the curve file (``landscape connect --out``), of one bend.
        out: the plane's surface file (.h5).
        points: grid points per axis of the default grid.
        x, y: the grid ``MIN:MAX:NUM`` (default ``-0.25:1.25:points`` each).
        split: ``train``, ``test`` or both.
        data: the samples (default: the data the curve was trained on).
        bn: ``recompute`` (BatchNorm statistics re-estimated at every point) or ``eval``.
        bn_samples: training samples of the re-estimation.
        batch_size: samples per forward pass (automatic when None).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        overwrite: replace an existing file instead of resuming it.
        progress: show a progress bar.

    Returns:
        The plane's surface.

    Raises:
        InputError: the curve has more than one bend (it is not planar), or bad settings.
    """
    if not isinstance(points, int) or isinstance(points, bool) or points < 2:
        raise InputError(f"points must be an integer >= 2; got {points!r}", arg="points")
    if distributed.launched():
        raise InputError("the curve's plane is computed in one process; run it without torchrun")
    curve = Path(curve)
    record = read_curve(curve)
    kind, bends = record["curve"], int(record["bends"])
    if bends != 1:
        raise InputError(
            f"the curve {str(curve)!r} has {bends} bends: only a curve of one bend lies in "
            "a plane (through A, B and the bend); train one with --bends 1"
        )
    ends = _endpoints(curve, record)
    default = f"{PLANE_AXIS[0]:g}:{PLANE_AXIS[1]:g}:{points}"
    info = _curve_info(curve, record)
    bend = _write_bend(curve, record, ends, info)
    config = _endpoints_config(
        ends, record, data, bn=bn, ckpt3=str(bend), split=split, x=x or default,
        y=y or default, bn_samples=bn_samples, batch_size=batch_size, device=device,
    )  # fmt: skip
    from landscape.surface.engine import _compute_one, load_inputs

    job = load_inputs(config)  # labelled with the network's name
    job = job._replace(
        config=dataclasses.replace(job.config, label=f"{job.config.label} {kind} curve plane")
    )
    t = np.linspace(0.0, 1.0, PLANE_PATH_POINTS)
    alpha, beta = plane_coordinates(kind, t)
    provenance = {
        **job.provenance,
        "curve": {**info, "bend_checkpoint": bend.name},
        "paths": {
            f"{kind} curve": {"alpha": alpha.tolist(), "beta": beta.tolist()},
            "line": {"alpha": [0.0, 1.0], "beta": [0.0, 0.0]},
        },
        "points": {"A": [0.0, 0.0], "B": [1.0, 0.0], "bend": [0.0, 1.0]},
    }
    return _compute_one(
        job.model,
        job.data,
        job.config,
        out=out,
        provenance=provenance,
        bn_data=job.bn_data,
        overwrite=overwrite,
        progress=progress,
    )


def _write_bend(
    curve: Path, record: Mapping[str, Any], ends: Sequence[str], info: Mapping[str, Any]
) -> Path:
    """The bend as a checkpoint of the endpoints' network: its parameters the bend's, its
    float buffers (BatchNorm statistics) the mean of A's and B's, so that the plane's
    buffers along the curve are the curve's, ``(1-t) A + t B``."""
    stored = record["config"]
    spec = {"model": stored.get("model"), "model_kwargs": stored.get("model_kwargs") or {}}
    a, b = load_model(ends[0], **spec), load_model(ends[1], **spec)
    start, end = state_of(a.model, torch.device("cpu")), state_of(b.model, torch.device("cpu"))
    theta = {k: v.to(start[k].dtype) for k, v in record["bend_states"][0].items()}
    parameters = [n for n, _ in a.model.named_parameters()]
    check_bends(start, end, [theta], parameters)
    state = {}
    for name in a.model.state_dict():
        v = start[name]
        if name in theta:
            state[name] = theta[name]
        else:
            state[name] = (v + end[name]) / 2 if v.is_floating_point() else v
    a.model.load_state_dict(state)
    return write_bend(
        bend_path(curve),
        a.model,
        model_name=a.model_name or str(spec["model"]),
        model_kwargs=a.model_kwargs,
        epoch=int(record["epoch"]),
        bend_of={"file": curve.name, "sha256": info["sha256"]},
    )


def _endpoints(curve: Path, record: Mapping[str, Any]) -> list[str]:
    """A and B as the curve file names them, refused where they changed since."""
    ends = []
    for key in ("ckpt", "ckpt2"):
        ref = record[key]
        path = resolve_checkpoint(ref["path"])
        if sha256(path) != ref["sha256"]:
            raise InputError(
                f"{ref['path']} changed since the curve {str(curve)!r} was trained (sha256 "
                "differs); give the endpoints it was trained between, or train it again"
            )
        ends.append(ref["path"])
    return ends


def _endpoints_config(
    ends: Sequence[str], record: Mapping[str, Any], data: DataSpec | None, *, bn: str, **settings
) -> SurfaceConfig:
    """A surface's settings between the curve's endpoints (A, B; `settings` add the grid,
    splits, a third model, ...) on the network and data the curve was trained with.
    BatchNorm recomputed at every point is evaluated pointwise."""
    stored = record["config"]
    return SurfaceConfig(
        ckpt=ends[0],
        ckpt2=ends[1],
        model=stored.get("model"),
        model_kwargs=stored.get("model_kwargs") or {},
        data=_curve_data(stored, data),
        bn=bn,
        strategy="pointwise" if bn == "recompute" else "auto",
        **settings,
    )


def _curve_data(stored: Mapping[str, Any], data: DataSpec | None) -> DataSpec:
    """`data`, or the data the curve was trained on (never a function a file names)."""
    if data is not None:
        return data
    if is_plugin(str(stored.get("dataset", ""))):
        raise InputError(
            f"the curve was trained on the dataset {stored['dataset']!r}, a function of "
            "your own; a file never names code to run - pass "
            f"data=DataSpec(dataset={stored['dataset']!r}) to use it",
            arg="data",
        )
    return DataSpec.from_config(stored)


def _curve_info(curve: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "file": str(curve),
        "sha256": sha256(curve),
        "kind": record["curve"],
        "bends": int(record["bends"]),
        "epoch": int(record["epoch"]),
    }


def _run(
    config: SurfaceConfig,
    record: Mapping[str, Any],
    curve_info: dict[str, Any],
    out: Path,
    *,
    line: bool,
    overwrite: bool,
    progress: bool,
) -> tuple[Surface | None, Surface | None]:
    """`landscape.surface.engine.run` for the line and the curve, in one process or as one
    torchrun rank (one `Team` for both files): the inputs are loaded once."""
    from landscape.core.device import resolve_device
    from landscape.surface.engine import _compute as compute_line
    from landscape.surface.engine import load_inputs

    launched = distributed.launched()
    if launched:
        team = distributed.Team.start(config.device, timeout=datetime.timedelta(minutes=30))
    else:
        team = distributed.Solo(resolve_device(config.device))
    try:
        job = team.agree(lambda: load_inputs(config, team.device))
        line_surface = None
        if line:  # exactly `landscape compute --ckpt A --ckpt2 B --x 0:1:N`
            # Labels name the network: figures of several pairs tell them apart.
            line_config = dataclasses.replace(job.config, label=f"{job.config.label} line")
            line_surface = compute_line(
                team,
                job.model,
                job.data,
                line_config,
                line_path(out),
                provenance=job.provenance,
                bn_data=job.bn_data,
                overwrite=overwrite,
                progress=progress,
            )
        label = f"{job.config.label} {record['curve']} curve"
        job = job._replace(config=dataclasses.replace(job.config, label=label))
        surface = _compute(team, job, record, curve_info, out, overwrite, progress)
    except KeyboardInterrupt:
        if not launched or team.rank == 0:
            raise
        raise distributed.QuietExit(130) from None
    if launched:
        team.close()
    return surface, line_surface


def _compute(
    team: distributed.Solo | distributed.Team,
    job: Any,
    record: Mapping[str, Any],
    curve_info: dict[str, Any],
    out: Path,
    overwrite: bool,
    progress: bool,
) -> Surface | None:
    """The engine's steps (`landscape.surface.engine._compute`) with a `CurveEvaluator`."""
    from landscape.surface.engine import _differences, fill_surface, prepare

    config = job.config
    device = team.device
    prepared = team.agree(
        lambda: prepare(job.model, job.data, config, device=device, bn_data=job.bn_data)
    )

    def states() -> tuple[dict[str, Tensor], dict[str, Tensor], list[dict[str, Tensor]]]:
        end_model = load_model(config.ckpt2, model=config.model, model_kwargs=config.model_kwargs)
        start, end = prepared.base, state_of(end_model.model, device)
        bends = [
            {k: v.to(device, start[k].dtype) for k, v in b.items()} for b in record["bend_states"]
        ]
        parameters = [n for n, _ in prepared.model.named_parameters()]
        check_bends(start, end, bends, parameters)
        return start, end, bends

    start, end, bends = team.agree(states)
    sizes = {s: len(prepared.splits[s].y) for s in config.split}
    provenance = {**job.provenance, **prepared.fingerprints, "curve": curve_info}
    with contextlib.ExitStack() as stack:

        def open_file() -> SurfaceFile:
            if out.exists() and not overwrite:
                handle = stack.enter_context(SurfaceFile(out))

                def differences(existing: Surface) -> list[str]:
                    diffs = _differences(config, existing, provenance)
                    stored = existing.provenance.get("curve")
                    if not isinstance(stored, dict) or stored.get("sha256") != curve_info["sha256"]:
                        diffs.append("the curve differs from the one the file was computed on")
                    return diffs

                handle.check_resume(differences, provenance)
                return handle
            handle = SurfaceFile.create(
                out,
                alpha=parse_axis(config.x, name="x").values(),
                beta=None,
                splits=config.split,
                per_sample=sizes,
                metrics=STORED_METRICS,
                directions={"x": interpolation_direction(start, end)},
                config=config.to_json(),
                provenance=provenance,
            )
            return stack.enter_context(handle)

        handle = team.agree(open_file if team.rank == 0 else None)
        per_sample = team.share(handle.per_sample if handle is not None else None)
        evaluator = team.agree(
            lambda: CurveEvaluator(
                prepared.model,
                start,
                end,
                bends,
                record["curve"],
                prepared.splits,
                batch_size=config.batch_size
                or min(128, max(len(s.y) for s in prepared.splits.values())),
                loss=config.loss,
                precision=config.precision,
                per_sample=per_sample,
                bn=config.bn,
                bn_data=prepared.bn_data,
            )
        )
        if handle is None:
            team.work(evaluator)
            return None
        fill_surface(handle, evaluator, progress=progress, helpers=team.helpers(evaluator))
        return handle.read()
