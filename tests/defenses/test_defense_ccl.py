"""Convex-Concave Loss (Liu et al. 2024): both variants against hand-computed values and a naive
reference, gradients against finite differences, and the concavity that motivates it."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from defense_reference import ccl, numeric_grad

from mia_bench.defenses import build
from mia_bench.defenses.ccl import ConvexConcaveLoss
from mia_bench.errors import ConfigError


def loss(d, logits, targets):
    return float(d.loss(logits, targets, epoch=0))


def test_by_hand_on_a_uniform_prediction():
    # Two classes, logits (0, 0): p_y = 0.5, CE = ln 2.
    logits, targets = torch.zeros(1, 2, dtype=torch.float64), torch.tensor([0])
    ln2 = math.log(2)
    # CCEL, alpha 0.5, beta 1: 0.5 ln 2 - 0.5 e^0.5 = 0.346574 - 0.824361 = -0.477787
    d = ConvexConcaveLoss(2, 4, variant="ccel", alpha=0.5, beta=1.0)
    assert loss(d, logits, targets) == pytest.approx(0.5 * ln2 - 0.5 * math.exp(0.5), rel=1e-12)
    assert loss(d, logits, targets) == pytest.approx(-0.477787, abs=1e-6)
    # CCQL: 0.5 ln 2 - 0.5 (0.5 + 0.125) = 0.346574 - 0.3125 = 0.034074
    d = ConvexConcaveLoss(2, 4, variant="ccql", alpha=0.5, beta=1.0)
    assert loss(d, logits, targets) == pytest.approx(0.034074, abs=1e-6)
    # beta scales the whole objective
    d = ConvexConcaveLoss(2, 4, variant="ccql", alpha=0.5, beta=0.05)
    assert loss(d, logits, targets) == pytest.approx(0.05 * 0.034074, abs=1e-7)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(7, 5, generator=g, dtype=torch.float64) * 3, torch.tensor(
        [0, 1, 2, 3, 4, 0, 2]
    )


@pytest.mark.parametrize("variant", ["ccel", "ccql"])
@pytest.mark.parametrize("alpha, beta", [(0.5, 0.05), (0.2, 1.0), (0.9, 2.0)])
def test_matches_naive_reference_and_its_gradient(batch, variant, alpha, beta):
    logits, targets = batch
    d = ConvexConcaveLoss(5, 4, variant=variant, alpha=alpha, beta=beta)
    want = ccl(logits.numpy(), targets.numpy(), variant, alpha, beta)
    assert loss(d, logits, targets) == pytest.approx(want, rel=1e-12)
    x = logits.clone().requires_grad_(True)
    d.loss(x, targets, epoch=0).backward()
    fd = numeric_grad(lambda z: ccl(z, targets.numpy(), variant, alpha, beta), logits.numpy())
    np.testing.assert_allclose(x.grad.numpy(), fd, atol=1e-8)


@pytest.mark.parametrize("variant", ["ccel", "ccql"])
def test_alpha_one_is_scaled_cross_entropy(batch, variant):
    logits, targets = batch
    d = ConvexConcaveLoss(5, 4, variant=variant, alpha=1.0, beta=0.3)
    assert loss(d, logits, targets) == pytest.approx(0.3 * float(F.cross_entropy(logits, targets)))


@pytest.mark.parametrize("variant", ["ccel", "ccql"])
def test_concave_term_is_decreasing_and_concave_in_p_y(variant):
    # The paper's family F: f' < 0 and f'' < 0 on [0, 1] (slides "Add concave term").
    d = ConvexConcaveLoss(2, 4, variant=variant)
    p = np.linspace(0.0, 1.0, 101)
    f = d.concave(torch.tensor(p)).numpy()
    assert (np.diff(f) < 0).all() and (np.diff(f, 2) < 0).all()


def test_epoch_does_not_matter(batch):
    logits, targets = batch
    d = ConvexConcaveLoss(5, 4)
    assert d.loss(logits, targets, epoch=0) == d.loss(logits, targets, epoch=7)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"alpha": 0.0}, "defense.alpha"),
        ({"alpha": 1.5}, "defense.alpha"),
        ({"alpha": -0.1}, "defense.alpha"),
        ({"beta": 0.0}, "defense.beta"),
        ({"beta": -1.0}, "defense.beta"),
        ({"variant": "ccxl"}, "defense.variant"),
    ],
)
def test_invalid_values_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        ConvexConcaveLoss(5, 4, **kwargs)
    assert err.value.key == key


def test_built_from_config():
    d = build(
        {
            "name": "ccl",
            "_target_": "mia_bench.defenses.ccl.ConvexConcaveLoss",
            "variant": "ccql",
            "alpha": 0.5,
            "beta": 0.05,
        },
        num_classes=5,
        feature_dim=4,
    )
    assert d.describe() == {"name": "ccl", "variant": "ccql", "alpha": 0.5, "beta": 0.05}
