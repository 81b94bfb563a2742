"""landscape: loss-landscape visualization for PyTorch (Li et al. 2018, He et al. 2015).

The public API, for notebooks and scripts; everything takes plain keyword arguments::

    import landscape as ls

    loaded = ls.load_model("pretrained:resnet20")
    data = {"train": ls.load_split("embedded", "train", samples=500)}
    config = ls.SurfaceConfig(x=(-1, 1, 21), y=(-1, 1, 21))
    surface = ls.compute_surface(loaded.model, data, config, out="resnet20.h5")
    fig = ls.surface_figure([surface], kind="contour")

`__all__` lists the names by kind. One verb per direction: ``read_X`` returns what a
file holds and ``write_X`` writes a file (and returns its path); ``load_X`` builds a
ready object (a network on its device, a dataset as tensors) from a name or a file;
``plot_X`` draws on the Axes it is given and ``X_figure`` returns a new Figure.

Names are imported on first use, so ``import landscape`` stays fast (and imports no
torch); type checkers see the real objects. The command line is ``landscape COMMAND``
(or ``python -m landscape.COMMAND``); the library lives in the subpackages `surface`,
`io`, `analysis`, `viz`, `data`, `training` and `core`.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# `python -m landscape.COMMAND`: the first code of ours that runs, seconds before the
# command's own handlers exist; a signal meanwhile stops it in one line (standard library
# only: nothing heavy is imported here). Importing landscape as a library installs nothing.
from landscape.cli import early as _early  # noqa: E402

if _early.started_as_command():
    _early.install()

__all__ = [
    "__version__",
    # Computing surfaces
    "SurfaceConfig",
    "Task",
    "compute_surface",
    "run_surface",
    "run_seeds",
    "surface_directions",
    "random_direction",
    "interpolation_direction",
    # Files: read_X returns what a file holds, write_X writes one and returns its path
    "Surface",
    "read_surface",
    "surface_values",
    "read_directions",
    "read_per_sample",
    "write_vtk",
    "write_csv",
    "write_directions",
    "read_path",
    "ResponseSeries",
    "write_responses",
    "read_responses",
    "read_trajectory",
    "read_metrics",
    "write_density",
    "write_block_curvature",
    "write_sharpness",
    "read_curvature_result",
    # Figures (plot_X draws on the Axes it is given; X_figure returns a new Figure) and the viewer
    "surface_figure",
    "plot_comparison",
    "plot_contour",
    "plot_contourf",
    "plot_heatmap",
    "plot_surface3d",
    "plot_path",
    "mark_optimum",
    "plot_1d",
    "resolve_scale",
    "Scale",
    "STYLES",
    "FigureStyle",
    "plot_curvature_map",
    "curvature_map_figure",
    "hessian_spectrum_figure",
    "plot_density",
    "density_figure",
    "plot_block_curvature",
    "block_curvature_figure",
    "plot_layer_response_std",
    "plot_gradient_norms",
    "layer_response_figure",
    "gradient_norms_figure",
    "trajectory_figure",
    "plot_degradation",
    "degradation_figure",
    "write_viewer",
    "plotly_comparison",
    "viewer_data",
    # Surface metrics and their uncertainty
    "surface_metrics",
    "metrics_table",
    "measure",
    "bootstrap_metrics",
    "intervals_table",
    "comparison_lines",
    # Hessian curvature
    "hessian_spectrum",
    "HessianSpectrum",
    "surface_curvature_map",
    "CurvatureMap",
    "hvp_fn",
    "lanczos",
    "LanczosResult",
    "top_eigenvalues",
    "min_eigenvalue",
    "hutchinson_trace",
    "curvature_map",
    "eigenvector_directions",
    "weight_names",
    "LanczosWarnings",
    # Spectral density, curvature per block, sharpness
    "spectral_density",
    "SpectralDensity",
    "slq",
    "SLQResult",
    "density_curve",
    "wasserstein1",
    "parameter_groups",
    "select_parameters",
    "per_block_curvature",
    "BlockCurvature",
    "worst_case_sharpness",
    "average_case_sharpness",
    "SharpnessResult",
    # Training trajectories
    "trajectory_pca",
    "PCAResult",
    "Trajectory",
    "pca_directions",
    "path_grid",
    # Layer responses
    "layer_response_std",
    "gradient_norms",
    # Training
    "TrainConfig",
    "run_training",
    # Mode connectivity
    "CurveConfig",
    "train_curve",
    "evaluate_curve",
    "curve_plane",
    "read_curve",
    "barrier_intervals",
    # Data, models, devices, errors (load_X builds a ready object: a network, tensors)
    "load_split",
    "DataTensors",
    "DataSpec",
    "load_model",
    "register_model",
    "create_model",
    "resolve_checkpoint",
    "list_pretrained",
    "resolve_device",
    "InputError",
    # Language models: a small GPT, a public-domain text, its task (docs/examples)
    "gpt",
    "char_vocab",
    "text_batches",
    "causal_lm_loss",
    "causal_lm_metrics",
    "train_causal_lm",
]

# Public name -> (the module that defines it, its name there where the API renames it).
_API: dict[str, tuple[str, str | None]] = {
    "SurfaceConfig": ("landscape.surface.config", None),
    "compute_surface": ("landscape.surface.engine", None),
    "run_surface": ("landscape.surface.engine", "run"),
    "run_seeds": ("landscape.surface.engine", None),
    "surface_directions": ("landscape.surface.engine", None),
    "random_direction": ("landscape.surface.directions", None),
    "interpolation_direction": ("landscape.surface.directions", None),
    "Surface": ("landscape.io.surface_file", None),
    "read_surface": ("landscape.io.surfaces", None),
    "surface_values": ("landscape.io.surfaces", None),
    "read_directions": ("landscape.io.surface_file", None),
    "read_per_sample": ("landscape.io.surface_file", None),
    "write_vtk": ("landscape.io.export", None),
    "write_csv": ("landscape.io.export", None),
    "write_directions": ("landscape.io.trajectory", None),
    "read_path": ("landscape.io.trajectory", None),
    "ResponseSeries": ("landscape.io.responses", None),
    "write_responses": ("landscape.io.responses", None),
    "read_responses": ("landscape.io.responses", None),
    "read_trajectory": ("landscape.analysis.trajectory", None),
    "read_metrics": ("landscape.io.runs", None),
    "write_density": ("landscape.io.spectrum", None),
    "write_block_curvature": ("landscape.io.spectrum", None),
    "write_sharpness": ("landscape.io.spectrum", None),
    "read_curvature_result": ("landscape.io.spectrum", None),
    "surface_figure": ("landscape.viz.figures", None),
    "plot_comparison": ("landscape.viz.figures", None),
    "plot_contour": ("landscape.viz.figures", None),
    "plot_contourf": ("landscape.viz.figures", None),
    "plot_heatmap": ("landscape.viz.figures", None),
    "plot_surface3d": ("landscape.viz.figures", None),
    "plot_path": ("landscape.viz.figures", None),
    "mark_optimum": ("landscape.viz.figures", None),
    "plot_1d": ("landscape.viz.lines", None),
    "resolve_scale": ("landscape.viz.levels", None),
    "Scale": ("landscape.viz.levels", None),
    "STYLES": ("landscape.viz.style", None),
    "FigureStyle": ("landscape.viz.style", None),
    "plot_curvature_map": ("landscape.viz.analysis_figures", None),
    "curvature_map_figure": ("landscape.viz.analysis_figures", None),
    "hessian_spectrum_figure": ("landscape.viz.analysis_figures", None),
    "plot_density": ("landscape.viz.spectrum", None),
    "density_figure": ("landscape.viz.spectrum", None),
    "plot_block_curvature": ("landscape.viz.spectrum", None),
    "block_curvature_figure": ("landscape.viz.spectrum", None),
    "plot_layer_response_std": ("landscape.viz.analysis_figures", None),
    "plot_gradient_norms": ("landscape.viz.analysis_figures", None),
    "layer_response_figure": ("landscape.viz.analysis_figures", None),
    "gradient_norms_figure": ("landscape.viz.analysis_figures", None),
    "trajectory_figure": ("landscape.viz.analysis_figures", None),
    "plot_degradation": ("landscape.viz.curves", None),
    "degradation_figure": ("landscape.viz.curves", None),
    "write_viewer": ("landscape.viz.viewer", None),
    "plotly_comparison": ("landscape.viz.viewer", None),
    "viewer_data": ("landscape.viz.viewer", None),
    "surface_metrics": ("landscape.analysis.metrics", None),
    "metrics_table": ("landscape.analysis.metrics", None),
    "measure": ("landscape.analysis.uncertainty", None),
    "bootstrap_metrics": ("landscape.analysis.uncertainty", None),
    "intervals_table": ("landscape.analysis.uncertainty", None),
    "comparison_lines": ("landscape.analysis.uncertainty", None),
    "Task": ("landscape.surface.task", None),
    "hessian_spectrum": ("landscape.analysis.hessian", None),
    "HessianSpectrum": ("landscape.analysis.hessian", None),
    "surface_curvature_map": ("landscape.analysis.curvature", None),
    "CurvatureMap": ("landscape.analysis.curvature", None),
    "hvp_fn": ("landscape.analysis.hessian", None),
    "lanczos": ("landscape.analysis.hessian", None),
    "LanczosResult": ("landscape.analysis.hessian", None),
    "top_eigenvalues": ("landscape.analysis.hessian", None),
    "min_eigenvalue": ("landscape.analysis.hessian", None),
    "hutchinson_trace": ("landscape.analysis.hessian", None),
    "curvature_map": ("landscape.analysis.hessian", None),
    "eigenvector_directions": ("landscape.analysis.hessian", None),
    "weight_names": ("landscape.analysis.hessian", None),
    "LanczosWarnings": ("landscape.analysis.hessian", None),
    "spectral_density": ("landscape.analysis.spectrum", None),
    "SpectralDensity": ("landscape.analysis.spectrum", None),
    "slq": ("landscape.analysis.spectrum", None),
    "SLQResult": ("landscape.analysis.spectrum", None),
    "density_curve": ("landscape.analysis.spectrum", None),
    "wasserstein1": ("landscape.analysis.spectrum", None),
    "parameter_groups": ("landscape.analysis.spectrum", None),
    "select_parameters": ("landscape.analysis.spectrum", None),
    "per_block_curvature": ("landscape.analysis.spectrum", None),
    "BlockCurvature": ("landscape.analysis.spectrum", None),
    "worst_case_sharpness": ("landscape.analysis.sharpness", None),
    "average_case_sharpness": ("landscape.analysis.sharpness", None),
    "SharpnessResult": ("landscape.analysis.sharpness", None),
    "trajectory_pca": ("landscape.analysis.trajectory", None),
    "PCAResult": ("landscape.analysis.trajectory", None),
    "Trajectory": ("landscape.analysis.trajectory", None),
    "pca_directions": ("landscape.analysis.trajectory", None),
    "path_grid": ("landscape.analysis.trajectory", None),
    "layer_response_std": ("landscape.analysis.responses", None),
    "gradient_norms": ("landscape.analysis.responses", None),
    "TrainConfig": ("landscape.training", None),
    "run_training": ("landscape.training", None),
    "CurveConfig": ("landscape.training.curve", None),
    "train_curve": ("landscape.training.curve", None),
    "evaluate_curve": ("landscape.surface.curve", None),
    "curve_plane": ("landscape.surface.curve", None),
    "read_curve": ("landscape.io.curve", None),
    "barrier_intervals": ("landscape.analysis.connectivity", None),
    "load_split": ("landscape.data", None),
    "DataTensors": ("landscape.data", None),
    "DataSpec": ("landscape.data", None),
    "load_model": ("landscape.core.checkpoints", None),
    "register_model": ("landscape.models", None),
    "create_model": ("landscape.models", None),
    "resolve_checkpoint": ("landscape.core.checkpoints", None),
    "list_pretrained": ("landscape.core.checkpoints", None),
    "resolve_device": ("landscape.core.device", None),
    "InputError": ("landscape.core.errors", None),
    "gpt": ("landscape.models.gpt", None),
    "char_vocab": ("landscape.data.text", None),
    "text_batches": ("landscape.data.text", None),
    "causal_lm_loss": ("landscape.data.text", None),
    "causal_lm_metrics": ("landscape.data.text", None),
    "train_causal_lm": ("landscape.data.text", None),
}

if TYPE_CHECKING:  # what type checkers and IDEs see: the real objects, not Any
    from landscape.analysis.connectivity import barrier_intervals
    from landscape.analysis.curvature import CurvatureMap, surface_curvature_map
    from landscape.analysis.hessian import (
        HessianSpectrum,
        LanczosResult,
        LanczosWarnings,
        curvature_map,
        eigenvector_directions,
        hessian_spectrum,
        hutchinson_trace,
        hvp_fn,
        lanczos,
        min_eigenvalue,
        top_eigenvalues,
        weight_names,
    )
    from landscape.analysis.metrics import metrics_table, surface_metrics
    from landscape.analysis.responses import gradient_norms, layer_response_std
    from landscape.analysis.sharpness import (
        SharpnessResult,
        average_case_sharpness,
        worst_case_sharpness,
    )
    from landscape.analysis.spectrum import (
        BlockCurvature,
        SLQResult,
        SpectralDensity,
        density_curve,
        parameter_groups,
        per_block_curvature,
        select_parameters,
        slq,
        spectral_density,
        wasserstein1,
    )
    from landscape.analysis.trajectory import (
        PCAResult,
        Trajectory,
        path_grid,
        pca_directions,
        read_trajectory,
        trajectory_pca,
    )
    from landscape.analysis.uncertainty import (
        bootstrap_metrics,
        comparison_lines,
        intervals_table,
        measure,
    )
    from landscape.core.checkpoints import list_pretrained, load_model, resolve_checkpoint
    from landscape.core.device import resolve_device
    from landscape.core.errors import InputError
    from landscape.data import DataSpec, DataTensors, load_split
    from landscape.data.text import (
        causal_lm_loss,
        causal_lm_metrics,
        char_vocab,
        text_batches,
        train_causal_lm,
    )
    from landscape.io.curve import read_curve
    from landscape.io.export import write_csv, write_vtk
    from landscape.io.responses import ResponseSeries, read_responses, write_responses
    from landscape.io.runs import read_metrics
    from landscape.io.spectrum import (
        read_curvature_result,
        write_block_curvature,
        write_density,
        write_sharpness,
    )
    from landscape.io.surface_file import Surface, read_directions, read_per_sample
    from landscape.io.surfaces import read_surface, surface_values
    from landscape.io.trajectory import read_path, write_directions
    from landscape.models import create_model, register_model
    from landscape.models.gpt import gpt
    from landscape.surface.config import SurfaceConfig
    from landscape.surface.curve import curve_plane, evaluate_curve
    from landscape.surface.directions import interpolation_direction, random_direction
    from landscape.surface.engine import (
        compute_surface,
        run_seeds,
        surface_directions,
    )
    from landscape.surface.engine import (
        run as run_surface,
    )
    from landscape.surface.task import Task
    from landscape.training import TrainConfig, run_training
    from landscape.training.curve import CurveConfig, train_curve
    from landscape.viz.analysis_figures import (
        curvature_map_figure,
        gradient_norms_figure,
        hessian_spectrum_figure,
        layer_response_figure,
        plot_curvature_map,
        plot_gradient_norms,
        plot_layer_response_std,
        trajectory_figure,
    )
    from landscape.viz.curves import degradation_figure, plot_degradation
    from landscape.viz.figures import (
        mark_optimum,
        plot_comparison,
        plot_contour,
        plot_contourf,
        plot_heatmap,
        plot_path,
        plot_surface3d,
        surface_figure,
    )
    from landscape.viz.levels import Scale, resolve_scale
    from landscape.viz.lines import plot_1d
    from landscape.viz.spectrum import (
        block_curvature_figure,
        density_figure,
        plot_block_curvature,
        plot_density,
    )
    from landscape.viz.style import STYLES, FigureStyle
    from landscape.viz.viewer import plotly_comparison, viewer_data, write_viewer
# Earlier names, kept working for existing notebooks: each use warns with the new name.
_DEPRECATED = {
    "load_surface": "read_surface",
    "load_trajectory": "read_trajectory",
    "load_responses": "read_responses",
    "save_responses": "write_responses",
    "save_directions_file": "write_directions",
}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"landscape.{name} is deprecated; use landscape.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return __getattr__(new)
    if name not in _API:
        raise AttributeError(f"module 'landscape' has no attribute {name!r}")
    module, defined_as = _API[name]
    value = getattr(importlib.import_module(module), defined_as or name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
