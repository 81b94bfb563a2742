"""landscape: loss-landscape visualization for PyTorch (Li et al. 2018, He et al. 2015)."""

__version__ = "0.1.0"
