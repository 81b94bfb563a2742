"""Grid axes and the coarse-to-fine order."""

from __future__ import annotations

import numpy as np
import pytest

from landscape.surface.grid import Axis, coarse_to_fine, parse_axis


def test_parse_axis() -> None:
    assert parse_axis("-1:1:51") == Axis(-1.0, 1.0, 51)
    assert parse_axis("-2:-0.5:4").values().tolist() == [-2.0, -1.5, -1.0, -0.5]
    assert parse_axis("0.3:0.3:1").values().tolist() == [0.3]


@pytest.mark.parametrize("text", ["-1:1", "a:b:c", "1:-1:5", "-1:1:0", "-1:inf:3", "0:1:2.5"])
def test_parse_axis_errors(text: str) -> None:
    with pytest.raises(ValueError, match="^x"):
        parse_axis(text)


@pytest.mark.parametrize("shape", [(9,), (5, 5), (7, 4), (1, 6), (51, 51)])
def test_coarse_to_fine_is_a_permutation_coarse_first(shape) -> None:
    order = coarse_to_fine(shape)
    assert sorted(order.tolist()) == list(range(int(np.prod(shape))))
    idx = np.stack(np.unravel_index(order, shape), axis=1)
    # The coarsest lattice of stride s comes before anything off it.
    s = 4
    on = np.all(idx % s == 0, axis=1)
    first_off = np.argmin(on) if not on.all() else len(on)
    assert on[:first_off].all() and not on[first_off:].any()
    assert order[0] == 0  # (0, 0) divides by everything
