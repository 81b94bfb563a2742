"""Directions (Li et al. 2018, Sec. 4) against direct per-filter computations."""

from __future__ import annotations

import pytest
import torch

from landscape import models
from landscape.surface.directions import (
    check_direction,
    cosine,
    interpolation_direction,
    normalize_direction,
    orthogonalize,
    random_direction,
)


def _params(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.detach() for k, v in models.create_model("resnet20").named_parameters()}


def _direction(params, seed=0, **kw):
    return random_direction(params, generator=torch.Generator().manual_seed(seed), **kw)


def test_filter_normalization_per_filter() -> None:
    params = _params()
    d = _direction(params)
    for name, w in params.items():
        if w.dim() <= 1:
            continue
        for f in range(w.shape[0]):  # each output filter, one at a time
            assert float(d[name][f].norm()) == pytest.approx(float(w[f].norm()), rel=1e-5)


def test_layer_and_weight_normalization() -> None:
    params = _params()
    d = _direction(params, norm="layer")
    w = params["layer2.0.conv1.weight"]
    assert float(d["layer2.0.conv1.weight"].norm()) == pytest.approx(float(w.norm()), rel=1e-5)
    raw = torch.randn(3, 4)
    torch.testing.assert_close(normalize_direction(raw, 2 * raw, "weight"), 2 * raw * raw)
    assert normalize_direction(raw, raw, "none") is raw
    with pytest.raises(ValueError, match="norm must be one of"):
        normalize_direction(raw, raw, "bogus")


def test_ignored_parameters_have_exactly_zero_direction() -> None:
    params = _params()
    d = _direction(params)
    one_d = [k for k, w in params.items() if w.dim() <= 1]
    assert one_d and all(torch.count_nonzero(d[k]) == 0 for k in one_d)
    # ignore=none: random, with the parameter's norm; and the multi-dim tensors are unchanged
    d_all = _direction(params, ignore="none")
    for k in one_d:
        assert float(d_all[k].norm()) == pytest.approx(float(params[k].norm()), rel=1e-5)
    for k, w in params.items():
        if w.dim() > 1:
            assert torch.equal(d[k], d_all[k])


def test_running_statistics_never_moved() -> None:
    params = _params()
    assert not any("running" in k for k in _direction(params))


def test_same_seed_same_direction_different_seed_different() -> None:
    params = _params()
    a, b, c = _direction(params, seed=3), _direction(params, seed=3), _direction(params, seed=4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_orthogonalize_and_cosine() -> None:
    params = _params()
    g = torch.Generator().manual_seed(0)
    dx = random_direction(params, generator=g)
    dy = {k: v + 0.5 * dx[k] for k, v in random_direction(params, generator=g).items()}
    assert abs(cosine(dx, dy)) > 0.3
    dy_o = orthogonalize(dy, dx)
    assert abs(cosine(dx, dy_o)) < 1e-6
    norm = lambda d: sum(float((v.double() ** 2).sum()) for v in d.values()) ** 0.5  # noqa: E731
    assert norm(dy_o) == pytest.approx(norm(dy), rel=1e-6)


def test_interpolation_covers_parameters_and_bn_statistics() -> None:
    a = models.create_model("resnet20").state_dict()
    b = {k: v + 1 if v.is_floating_point() else v for k, v in a.items()}
    d = interpolation_direction(a, b)
    assert "bn1.running_mean" in d and "bn1.num_batches_tracked" not in d
    assert all(torch.allclose(v, torch.ones_like(v)) for v in d.values())
    with pytest.raises(ValueError, match="different networks"):
        interpolation_direction(a, {k: v for k, v in a.items() if k != "fc.bias"})


def test_check_direction_names_and_shapes() -> None:
    params = _params()
    with pytest.raises(ValueError, match="lacks: nope"):
        check_direction({"nope": torch.zeros(1)}, params, "direction x")
    with pytest.raises(ValueError, match=r"fc.bias has shape \(3,\)"):
        check_direction({"fc.bias": torch.zeros(3)}, params, "direction x")
