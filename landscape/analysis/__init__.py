"""What explains a surface: metrics, Hessian curvature, trajectories, layer responses,
training curves."""
