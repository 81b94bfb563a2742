"""Files: every format the package reads or writes lives here.

`surfaces`: `read_surface`, the one reader of both surface formats, and `surface_values`;
`surface_file`: read, create, write and lock surface and directions files (the format's
own checked reader); `legacy`: read and convert files of the original code; `export`:
VTK and CSV; `trajectory`: PCA directions with their path; `responses`: layer-response
JSON; `curvature`: a curvature map stored in a surface file; `hessian`: the Hessian
result JSON. io imports neither the analyses nor the figures (tests/test_layout.py).
"""
