"""Drawing: matplotlib figures of surfaces and analyses, and the Plotly HTML viewer.

Plot functions draw on what they are given (an Axes or a Figure they return).
"""
