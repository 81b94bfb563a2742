"""landscape: loss-landscape visualization for PyTorch (Li et al. 2018, He et al. 2015).

The public API, for notebooks and scripts; everything takes plain keyword arguments::

    import landscape as ls

    loaded = ls.load_model("pretrained:resnet20")
    data = {"train": ls.load_split("embedded", "train", samples=500)}
    config = ls.SurfaceConfig(x=(-1, 1, 21), y=(-1, 1, 21))
    surface = ls.compute_surface(loaded.model, data, config, out="resnet20.h5")
    fig = ls.surface_figure([surface], kind="contour")

Names are imported on first use, so ``import landscape`` stays fast. The command line
is ``landscape COMMAND`` (or ``python -m landscape.COMMAND``); the library lives in
the subpackages `surface`, `io`, `analysis`, `viz`, `data`, `training` and `core`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# Public name -> the module that defines it.
_API = {
    # computing surfaces
    "SurfaceConfig": "landscape.surface.config",
    "compute_surface": "landscape.surface.engine",
    "run_surface": "landscape.surface.engine",
    "surface_directions": "landscape.surface.engine",
    "random_direction": "landscape.surface.directions",
    "interpolation_direction": "landscape.surface.directions",
    # reading and writing surface files
    "Surface": "landscape.io.surface_file",
    "read_surface": "landscape.io.surface_file",
    "read_directions": "landscape.io.surface_file",
    "load_surface": "landscape.io.legacy",
    "write_vtk": "landscape.io.export",
    "write_csv": "landscape.io.export",
    # figures and the viewer
    "surface_figure": "landscape.viz.figures",
    "plot_comparison": "landscape.viz.figures",
    "plot_contour": "landscape.viz.figures",
    "plot_contourf": "landscape.viz.figures",
    "plot_heatmap": "landscape.viz.figures",
    "plot_surface3d": "landscape.viz.figures",
    "plot_1d": "landscape.viz.figures",
    "plot_path": "landscape.viz.figures",
    "mark_optimum": "landscape.viz.figures",
    "resolve_scale": "landscape.viz.figures",
    "STYLES": "landscape.viz.figures",
    "plot_curvature_map": "landscape.viz.analysis_figures",
    "plot_layer_response_std": "landscape.viz.analysis_figures",
    "plot_gradient_norms": "landscape.viz.analysis_figures",
    "plot_degradation": "landscape.viz.curves",
    "degradation_figure": "landscape.viz.curves",
    "write_viewer": "landscape.viz.viewer",
    "plotly_comparison": "landscape.viz.viewer",
    "viewer_data": "landscape.viz.viewer",
    # analyses
    "surface_metrics": "landscape.analysis.metrics",
    "measure": "landscape.analysis.uncertainty",
    "bootstrap_metrics": "landscape.analysis.uncertainty",
    "intervals_table": "landscape.analysis.uncertainty",
    "comparison_lines": "landscape.analysis.uncertainty",
    "read_per_sample": "landscape.io.surface_file",
    "run_seeds": "landscape.surface.engine",
    "metrics_table": "landscape.analysis.metrics",
    "hessian_spectrum": "landscape.analysis.hessian",
    "HessianSpectrum": "landscape.analysis.hessian",
    "hvp_fn": "landscape.analysis.hessian",
    "lanczos": "landscape.analysis.hessian",
    "top_eigenvalues": "landscape.analysis.hessian",
    "min_eigenvalue": "landscape.analysis.hessian",
    "hutchinson_trace": "landscape.analysis.hessian",
    "curvature_map": "landscape.analysis.hessian",
    "eigenvector_directions": "landscape.analysis.hessian",
    "weight_names": "landscape.analysis.hessian",
    "LanczosWarnings": "landscape.analysis.hessian",
    "surface_curvature_map": "landscape.analysis.curvature",
    "trajectory_pca": "landscape.analysis.trajectory",
    "PCAResult": "landscape.analysis.trajectory",
    "load_trajectory": "landscape.analysis.trajectory",
    "pca_directions": "landscape.analysis.trajectory",
    "path_grid": "landscape.analysis.trajectory",
    "save_directions_file": "landscape.analysis.trajectory",
    "read_path": "landscape.analysis.trajectory",
    "layer_response_std": "landscape.analysis.responses",
    "gradient_norms": "landscape.analysis.responses",
    "save_responses": "landscape.analysis.responses",
    "load_responses": "landscape.analysis.responses",
    "read_metrics": "landscape.analysis.curves",
    # training
    "TrainConfig": "landscape.training",
    "run_training": "landscape.training",
    # data, models, devices
    "load_split": "landscape.data",
    "DataTensors": "landscape.data",
    "load_model": "landscape.core.checkpoints",
    "register_model": "landscape.models",
    "create_model": "landscape.models",
    "resolve_checkpoint": "landscape.core.checkpoints",
    "list_pretrained": "landscape.core.checkpoints",
    "resolve_device": "landscape.core.device",
    "InputError": "landscape.core.errors",
}
# Where the API's name differs from the defining module's.
_RENAMED = {"run_surface": "run", "load_surface": "load_any_surface", "run_training": "train"}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'landscape' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
