"""The engine: f(alpha, beta) = L(theta* + alpha*dx + beta*dy) on a grid.

`config`: the job's settings; `directions`: random, filter-normalized and interpolation
directions; `grid`: axes and the coarse-to-fine order; `evaluate`: batched loss and
accuracy at many points; `points`: the hand-out of pending points; `engine`: the
top-down flow (load, prepare, open or resume the file, evaluate, write);
`distributed`: the torchrun strategy the engine uses to share points among ranks.
"""
