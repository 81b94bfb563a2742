"""Grid axes and the coarse-to-fine order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from landscape.surface.grid import (
    Axis,
    axis_levels,
    coarse_to_fine,
    finest_complete,
    grid_origin,
    parse_axis,
)


def test_parse_axis() -> None:
    assert parse_axis("-1:1:51") == Axis(-1.0, 1.0, 51)
    assert parse_axis("-2:-0.5:4").values().tolist() == [-2.0, -1.5, -1.0, -0.5]
    assert parse_axis("0.3:0.3:1").values().tolist() == [0.3]


@pytest.mark.parametrize("text", ["-1:1", "a:b:c", "1:-1:5", "-1:1:0", "-1:inf:3", "0:1:2.5"])
def test_parse_axis_errors(text: str) -> None:
    with pytest.raises(ValueError, match="^x"):
        parse_axis(text)


# Grids: Li et al.'s 51x51 on [-1, 1], an even non-square one not centred on 0, the seed
# files' 15x15, odd/even/1-D/degenerate shapes, and a range that does not contain 0.
GRIDS = [
    ((-1, 1, 51), (-1, 1, 51)),
    ((-0.5, 1.5, 50), (-0.5, 1.5, 40)),
    ((-1, 1, 15), (-1, 1, 15)),
    ((-1, 1, 5), (0, 2, 3)),
    ((-1, 1, 7), (-1, 1, 4)),
    ((0.5, 1, 6), (-3, -1, 9)),
    ((-1, 1, 1), (-1, 1, 6)),
    ((-1, 1, 2), (-1, 1, 2)),
    ((-2, 1, 9), None),
]


def _axes(x, y):
    alpha = np.linspace(*x)
    return alpha, None if y is None else np.linspace(*y)


def _naive_origin(alpha, beta):
    """θ*'s indices by brute force: the grid point nearest (0, 0)."""
    if beta is None:
        return (min(range(len(alpha)), key=lambda i: abs(alpha[i])),)
    points = [(i, j) for i in range(len(alpha)) for j in range(len(beta))]
    return min(points, key=lambda p: alpha[p[0]] ** 2 + beta[p[1]] ** 2)


@pytest.mark.parametrize(("x", "y"), GRIDS)
def test_coarse_to_fine_starts_at_theta_star_and_the_corners(x, y) -> None:
    alpha, beta = _axes(x, y)
    shape = (len(alpha),) if beta is None else (len(alpha), len(beta))
    origin = grid_origin(alpha, beta)
    assert origin == _naive_origin(alpha, beta)
    order = coarse_to_fine(shape, origin)
    # every point exactly once
    assert sorted(order.tolist()) == list(range(int(np.prod(shape))))
    points = [tuple(int(v) for v in p) for p in zip(*np.unravel_index(order, shape), strict=True)]
    corners = set(itertools.product(*[{0, n - 1} for n in shape]))
    first = {origin} | corners
    assert set(points[: len(first)]) == first
    assert points[0] == origin


@pytest.mark.parametrize(("x", "y"), GRIDS)
def test_every_prefix_that_completes_a_level_is_a_sub_grid_of_the_whole_range(x, y) -> None:
    """Each level's sub-grid spans the whole range and holds θ* and all coarser levels;
    the order finishes level k before it starts level k + 1; and the finest complete
    sub-grid of any prefix (what the figures and the viewer draw) is one of them."""
    alpha, beta = _axes(x, y)
    shape = (len(alpha),) if beta is None else (len(alpha), len(beta))
    origin = grid_origin(alpha, beta)
    levels = axis_levels(shape, origin)
    order = coarse_to_fine(shape, origin)
    top = max(int(lv.max()) for lv in levels)
    assert all(int(lv.max()) <= top for lv in levels)
    seen = 0
    for k in range(top + 1):
        index = [np.flatnonzero(lv <= k) for lv in levels]
        for idx, n, o in zip(index, shape, origin, strict=True):
            assert idx[0] == 0 and idx[-1] == n - 1 and o in idx  # whole range, θ*
        if k:
            before = [np.flatnonzero(lv <= k - 1) for lv in levels]
            assert all(set(b) <= set(i) for b, i in zip(before, index, strict=True))
        size = int(np.prod([len(i) for i in index]))
        # the first `size` points are exactly this level's sub-grid
        sub = np.zeros(shape, dtype=bool)
        sub[np.ix_(*index)] = True
        assert set(order[:size].tolist()) == set(np.flatnonzero(sub).tolist()), k
        assert size >= seen
        seen = size
    assert seen == int(np.prod(shape))
    if beta is not None:
        for n in (1, 5, 9, 25, len(order) // 2, len(order) - 1, len(order)):
            done = np.zeros(shape, dtype=bool)
            done.flat[order[:n]] = True
            got = finest_complete(done, alpha, beta)
            if got is None:
                continue
            assert done[np.ix_(*got)].all()
            assert all(
                o in g and g[0] == 0 and g[-1] == m - 1
                for g, o, m in zip(got, origin, shape, strict=True)
            )
        assert finest_complete(np.zeros(shape, dtype=bool), alpha, beta) is None


def test_levels_of_li_et_al_grid_are_near_uniform() -> None:
    """51x51 on [-1, 1]: θ* (index 25) is point 1, and the sub-grids are 3, 5, 9, 17...
    points per axis, gaps differing by at most one step (the old order reached θ* at
    point 1,639)."""
    (lv, _) = axis_levels((51, 51), (25, 25))
    sizes = [int((lv <= k).sum()) for k in range(5)]
    assert sizes == [3, 5, 9, 17, 35]
    for k in range(5):
        gaps = np.diff(np.flatnonzero(lv <= k))
        assert gaps.max() - gaps.min() <= 1, (k, gaps)
    assert coarse_to_fine((51, 51), (25, 25))[0] == 25 * 51 + 25


def test_default_origin_is_the_middle() -> None:
    np.testing.assert_array_equal(coarse_to_fine((7, 5)), coarse_to_fine((7, 5), (3, 2)))
    with pytest.raises(ValueError, match="origin"):
        coarse_to_fine((7, 5), (7, 0))


@pytest.mark.child
@pytest.mark.child
@pytest.mark.parametrize(
    ("x", "y"), [("-1:1:51", "-1:1:51"), ("-0.5:1.5:50", "-0.5:1.5:40")], ids=["51x51", "50x40"]
)
def test_a_compute_killed_after_25_points_holds_theta_star_and_the_corners(
    tmp_path, tiny_ckpt, x, y
) -> None:
    """SIGKILLed once 25 points are on disk (2,601 and 2,000 points: it cannot finish
    first), the file holds θ* and the four corners, and its finest complete sub-grid (what
    the figures and the viewer draw) spans the whole range around θ*."""
    from procs import HANG, compute_args, kill_when, surface_points

    from landscape import compute
    from landscape.io.surface_file import read_surface

    out = tmp_path / "s.h5"
    argv = compute_args(tiny_ckpt, out, "--x", x, "--y", y)
    kill_when(compute.main, argv, tmp_path, lambda: surface_points(out) >= 25, within=HANG)
    s = read_surface(out)
    assert 25 <= s.computed.sum() < s.computed.size
    i, j = grid_origin(s.alpha, s.beta)
    assert abs(s.alpha[i]) == np.abs(s.alpha).min() and abs(s.beta[j]) == np.abs(s.beta).min()
    n, m = s.shape
    for p in [(i, j), (0, 0), (0, m - 1), (n - 1, 0), (n - 1, m - 1)]:
        assert s.computed[p] and np.isfinite(s.get()[p]), p
    ia, ib = finest_complete(s.computed, s.alpha, s.beta)
    assert {0, i, n - 1} <= set(ia.tolist()) and {0, j, m - 1} <= set(ib.tolist())


@pytest.mark.child
def test_the_viewer_draws_the_same_sub_grid_as_the_figures() -> None:
    """viewer.js's `shown` (run by Node where installed) picks the same finest complete
    sub-grid as `finest_complete`, from the levels the page is given (`grid_levels`)."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js to run viewer.js's function")
    src = (Path(__file__).parents[1] / "landscape/viz/viewer_assets/viewer.js").read_text()
    shown = src[src.index("  function shown(s, r)") : src.index("  function draw3d(")]
    for x, y in [((-1, 1, 51), (-1, 1, 51)), ((-0.5, 1.5, 50), (-0.5, 1.5, 40))]:
        alpha, beta = _axes(x, y)
        shape = (len(alpha), len(beta))
        origin = grid_origin(alpha, beta)
        order = coarse_to_fine(shape, origin)
        cases, want = [], []
        for n in (3, 9, 30, 200, len(order) - 1, len(order)):
            done = np.zeros(shape, dtype=bool)
            done.flat[order[:n]] = True
            index = finest_complete(done, alpha, beta)
            if index is None:
                index = (np.arange(shape[0]), np.arange(shape[1]))
            want.append([alpha[index[0]].tolist(), beta[index[1]].tolist()])
            rows = [[1.0 if done[i, j] else None for i in range(shape[0])] for j in range(shape[1])]
            s = {
                "alpha": alpha.tolist(),
                "beta": beta.tolist(),
                "done": int(done.sum()),
                "total": done.size,
                "grid_levels": [lv.tolist() for lv in axis_levels(shape, origin)],
            }
            cases.append([s, rows])
        script = (
            shown
            + f"\nvar cases = {json.dumps(cases)};\n"
            + "console.log(JSON.stringify(cases.map(function (c) {"
            + " var p = shown(c[0], c[1]); return [p.x, p.y]; })));"
        )
        out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == want
