"""Drawing: matplotlib figures of surfaces and analyses, and the Plotly HTML viewer.

`levels`: the contour-level rule (shared by the figures and the viewer's page); `style`:
named styles, colour maps and labels; `figures`: 2-D panels and `surface_figure`;
`lines`: 1-D surfaces; `analysis_figures`: the analyses' panels and figures (Hessian,
curvature map, trajectory, responses); `curves`: training curves; `viewer` and `live`:
the interactive page and its live server. Plot functions draw on what they are given
(an Axes); ``*_figure`` functions return a new Figure.
"""
