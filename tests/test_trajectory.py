"""PCA of training trajectories against a direct SVD; loading runs; the directions file."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.analysis import trajectory
from landscape.io.surface_file import read_directions
from landscape.io.trajectory import read_path, write_directions
from landscape.models import CheckpointError, save_checkpoint


def _states(n_states: int = 6, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "conv.weight": torch.randn(3, 2, 2, generator=g),
            "conv.bias": torch.randn(3, generator=g),
            "fc.weight": torch.randn(4, 3, generator=g),
            "bn.running_mean": torch.randn(3, generator=g),
            "bn.num_batches_tracked": torch.tensor(5),
        }
        for _ in range(n_states)
    ]


def _matrix(states, final, names):
    return np.stack(
        [
            np.concatenate([(s[n].double() - final[n].double()).reshape(-1).numpy() for n in names])
            for s in states
        ]
    )


def _flat(direction, names):
    return np.concatenate([direction[n].double().reshape(-1).numpy() for n in names])


@pytest.mark.parametrize("center", [False, True])
def test_pca_matches_direct_svd(center):
    states = _states()
    final = states[-1]
    names = ["conv.weight", "fc.weight"]  # 1-D tensors and buffers are left out by default
    res = trajectory.pca_directions(states, final, center=center)
    assert res.names == names
    d = _matrix(states, final, names)  # (T, P)
    dc = d - d.mean(axis=0) if center else d
    _, s, vt = np.linalg.svd(dc, full_matrices=False)
    np.testing.assert_allclose(res.singular_values, s, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.explained_variance_ratio, (s**2 / (s**2).sum())[:2], rtol=1e-7)
    for k, axis in enumerate(("x", "y")):
        v = _flat(res.directions[axis], names)
        assert abs(abs(v @ vt[k]) - 1) < 1e-5  # same axis up to sign (float32 storage)
        assert not res.directions[axis]["conv.bias"].any()
        assert "bn.running_mean" not in res.directions[axis]
        np.testing.assert_allclose(res.coords[:, k], d @ v, rtol=1e-5, atol=1e-5)
    x, y = _flat(res.directions["x"], names), _flat(res.directions["y"], names)
    assert abs(x @ y) < 1e-6
    resid = d - np.outer(d @ x, x) - np.outer(d @ y, y)
    np.testing.assert_allclose(res.off_plane_distance, np.linalg.norm(resid, axis=1), atol=1e-5)
    np.testing.assert_allclose(res.distance, np.linalg.norm(d, axis=1), rtol=1e-9)
    assert res.coords[-1] == pytest.approx([0, 0]) and res.off_plane_distance[-1] == 0


def test_straight_line_path_lies_on_one_axis():
    g = torch.Generator().manual_seed(0)
    final = {"w": torch.randn(5, 4, generator=g), "b": torch.randn(4, generator=g)}
    step = {"w": torch.randn(5, 4, generator=g), "b": torch.randn(4, generator=g)}
    ts = [3.0, 2.0, 1.5, 0.5, 0.0]
    states = [{n: final[n] + t * step[n] for n in final} for t in ts]
    res = trajectory.pca_directions(states, final)
    np.testing.assert_allclose(res.coords[:, 1], 0, atol=1e-5)
    np.testing.assert_allclose(res.coords[:, 0], np.array(ts) * float(step["w"].norm()), rtol=1e-5)
    np.testing.assert_allclose(res.off_plane_distance, 0, atol=1e-3)
    assert res.explained_variance_ratio == pytest.approx([1.0, 0.0], abs=1e-9)
    y = res.directions["y"]["w"].double()
    x = res.directions["x"]["w"].double()
    assert float(y.norm()) == pytest.approx(1.0, rel=1e-5) and abs(float((x * y).sum())) < 1e-5


def test_path_grid_holds_the_path_and_the_final_point():
    coords = np.array([[3.0, -1.0], [2.0, 0.5], [0.4, 0.2], [0.0, 0.0]])
    x, y = trajectory.path_grid(coords, num=21)
    (x0, x1, nx), (y0, y1, ny) = (tuple(map(float, s.split(":"))) for s in (x, y))
    assert nx == ny == 21
    assert x0 < 0 < 3 < x1 and y0 < -1 and 0.5 < y1
    assert x1 - x0 == pytest.approx(3 * 1.4, rel=1e-2)
    # A straight path (beta = 0 throughout) still gets a beta range: half the alpha width.
    _, y = trajectory.path_grid(np.array([[2.0, 0.0], [0.0, 0.0]]))
    y0, y1, _ = map(float, y.split(":"))
    assert y1 == pytest.approx(-y0) and y1 - y0 == pytest.approx(0.5 * 2 * 1.4, rel=1e-2)
    with pytest.raises(ValueError, match="coords"):
        trajectory.path_grid(np.zeros(3))


def test_save_and_read_directions_file(tmp_path):
    states = _states(4)
    res = trajectory.pca_directions(states, states[-1], epochs=[0, 1, 2, 3])
    path = tmp_path / "pca.h5"
    write_directions(path, res, config={"run": "x"})
    dirs = read_directions(path)
    assert set(dirs) == {"x", "y"}
    torch.testing.assert_close(dirs["x"]["fc.weight"], res.directions["x"]["fc.weight"])
    alpha, beta, epochs = read_path(path)
    np.testing.assert_array_equal(alpha, res.coords[:, 0])
    np.testing.assert_array_equal(beta, res.coords[:, 1])
    np.testing.assert_array_equal(epochs, [0, 1, 2, 3])


def test_read_path_none_without_path(tmp_path):
    import h5py

    path = tmp_path / "plain.h5"
    with h5py.File(path, "w"):
        pass
    assert read_path(path) is None


def test_read_trajectory_sorts_by_epoch_and_puts_final_last(tmp_path):
    torch.manual_seed(0)
    models = [nn.Linear(3, 2) for _ in range(4)]
    for epoch in (2, 0, 1):  # written out of order
        save_checkpoint(
            tmp_path / f"epoch_{epoch:03d}.pt", models[epoch], model_name="lin", epoch=epoch
        )
    save_checkpoint(tmp_path / "final.pt", models[3], model_name="lin", epoch=2)
    traj = trajectory.read_trajectory(tmp_path)
    assert traj.epochs == [0, 1, 2]
    assert traj.paths[-1].name == "final.pt"  # replaces epoch_002.pt, same epoch
    torch.testing.assert_close(traj.final["weight"], models[3].weight.detach())
    torch.testing.assert_close(traj.states[0]["weight"], models[0].weight.detach())
    # A list of files (a bare state_dict's epoch comes from its name).
    torch.save(models[1].state_dict(), tmp_path / "ckpt_7.pt")
    traj = trajectory.read_trajectory([tmp_path / "ckpt_7.pt", tmp_path / "epoch_000.pt"])
    assert traj.epochs == [0, 7]
    with pytest.raises(CheckpointError, match="at least 2"):
        trajectory.read_trajectory([tmp_path / "epoch_000.pt"])
    with pytest.raises(CheckpointError, match="does not exist"):
        trajectory.read_trajectory(tmp_path / "missing")


def test_plot_path():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landscape.viz.figures import plot_path

    fig, ax = plt.subplots()
    line = plot_path(
        ax, np.array([1.0, 0.5, 0.0]), np.array([0.2, 0.1, 0.0]), epochs=[0, 1, 2], annotate_every=1
    )
    assert list(line.get_xdata()) == [1.0, 0.5, 0.0]
    assert len(ax.texts) == 3
    plt.close(fig)


# ------------------------------------------------- paths that cannot be analysed (issue #35)


def test_pca_refuses_nan_states_other_networks_and_a_path_without_variance():
    from landscape.core.errors import InputError

    states = _states(4)
    nan = [dict(s) for s in states]
    nan[1]["fc.weight"] = torch.full((4, 3), float("nan"))
    with pytest.raises(InputError, match=r"epoch 1 holds NaN or inf in 'fc.weight'"):
        trajectory.pca_directions(nan, nan[-1], epochs=[0, 1, 2, 3])
    other = [dict(s) for s in states]
    del other[0]["conv.bias"]  # another network: a tensor fewer
    with pytest.raises(InputError, match=r"states\[0\] is another network.*'conv.bias'"):
        trajectory.pca_directions(other, other[-1])
    other = [dict(s) for s in states]
    other[2]["fc.weight"] = torch.zeros(5, 3)  # another network: another shape
    with pytest.raises(InputError, match=r"another network.*\(5, 3\)"):
        trajectory.pca_directions(other, other[-1])
    same = [states[0]] * 3
    for center in (False, True):
        with pytest.raises(InputError, match="no variance"):
            trajectory.pca_directions(same, same[-1], center=center)
    with pytest.raises(InputError, match="coords holds NaN"):
        trajectory.path_grid(np.array([[np.nan, 1.0], [0.0, 0.0]]))


def test_trajectory_refuses_nan_checkpoints_other_networks_and_identical_checkpoints(tmp_path):
    from helpers import make_checkpoint

    from landscape import models

    good = [make_checkpoint(tmp_path / f"epoch_{i:03d}.pt", seed=i) for i in range(2)]
    model = models.create_model("resnet20")
    with torch.no_grad():
        model.fc.weight[0, 0] = float("inf")
    save_checkpoint(tmp_path / "inf.pt", model, epoch=2)
    plain = make_checkpoint(tmp_path / "plain.pt", name="plain20")
    with pytest.raises(CheckpointError, match=r"inf.pt' holds NaN or inf in 'fc.weight'"):
        trajectory.trajectory_pca([*good, tmp_path / "inf.pt"])
    for path in ([good[0], plain], [plain, good[0]]):
        with pytest.raises(CheckpointError, match=r"is another network: it (lacks|has) '"):
            trajectory.trajectory_pca(path)
    out = tmp_path / "dirs.h5"
    with pytest.raises(ValueError, match="no variance"):
        trajectory.trajectory_pca([good[0], good[0], good[0]], out=out)
    assert not out.exists()
