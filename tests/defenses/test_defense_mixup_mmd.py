"""Mixup + MMD (Li, Li & Ribeiro 2021): the MMD estimate and the mixup loss against
hand-worked values, and the two schedules' batch plans."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import DefenseContext
from mia_bench.defenses.mixup_mmd import MixupMMD, mixup_ce, mmd2_rbf
from mia_bench.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_mmd2_hand_worked():
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # K(x,x) = K(y,y) = 1, K(x,y) = exp(-2 / 2)
    assert mmd2_rbf(x, y).item() == pytest.approx(2 - 2 * math.exp(-1))
    x2, y2 = torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.zeros(2, 2)
    # mean K_XX = mean K_XY = (1 + e^-1/2) / 2, K_YY = 1
    assert mmd2_rbf(x2, y2).item() == pytest.approx((1 - math.exp(-0.5)) / 2, abs=1e-6)
    # two widths: the kernels add
    assert mmd2_rbf(x, y, (1.0, 2.0)).item() == pytest.approx(
        2 * 2 - 2 * (math.exp(-1) + math.exp(-2 / 8)), abs=1e-6
    )
    assert mmd2_rbf(x2, x2).item() == pytest.approx(0.0, abs=1e-7)


def test_mixup_ce_hand_worked():
    z = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    y, perm = torch.tensor([0, 1]), torch.tensor([1, 0])
    right, wrong = math.log(1 + math.exp(-2)), math.log(1 + math.exp(2))
    assert mixup_ce(z, y, perm, 0.7).item() == pytest.approx(0.7 * right + 0.3 * wrong)


def _defense(**kw):
    d = MixupMMD(3, 4, **kw)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 4, generator=g), torch.arange(40) % 3
    ctx = DefenseContext.from_tensors(
        train=(x[:20], y[:20]),
        reference=(x[20:], y[20:]),
        role="target",
        seed=0,
        device=torch.device("cpu"),
        preprocess=Preprocess("tabular"),
        teacher=lambda cfg: None,
        batch_size=8,
    )
    d.attach(ctx)
    model = nn.Linear(4, 3)
    parts = d.setup(model, None, (x[:20], y[:20]))
    return d, model, parts, x[:20], y[:20]


def test_joint_schedule_adds_the_mmd_of_label_matched_validation_outputs():
    d, model, parts, x, y = _defense(mixup_alpha=0.0, mmd_lambda=2.0)
    (idx, *_) = parts.batches(20, torch.Generator().manual_seed(0))
    logits = parts.model(x[idx])
    # mixup_alpha 0: lam = 1, the plain batch
    assert torch.allclose(logits, model(x[idx]))
    torch.manual_seed(0)
    rng_state = d._rng.bit_generator.state
    loss = d.loss(logits, y[idx], epoch=0)
    # redo the label-matched draw with the same generator state
    d._rng.bit_generator.state = rng_state
    ref_x, ref_y = d._ref
    pick = []
    for t in y[idx].tolist():
        pool = np.flatnonzero(ref_y.numpy() == t)
        pick.append(int(pool[d._rng.integers(len(pool))]))
    assert (ref_y[pick] == y[idx]).all()
    p_t = torch.softmax(model(x[idx]), 1)
    p_v = torch.softmax(model(ref_x[pick]), 1)
    expected = nn.functional.cross_entropy(model(x[idx]), y[idx]) + 2.0 * mmd2_rbf(p_t, p_v)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_alternating_schedule_adds_an_ordered_mmd_pass_when_the_gap_is_large():
    d, _, parts, _, _ = _defense(schedule="alternating")
    d.gap_threshold = -1.0  # always above: the second pass runs
    b = parts.batches(20, torch.Generator().manual_seed(0))
    assert len(b) == 6 and d._plan == ["mixup"] * 3 + ["mmd"] * 3
    assert torch.equal(torch.cat(b[3:]), torch.arange(20))
    d.gap_threshold = 101.0  # never reached: mixup only
    assert len(parts.batches(20, torch.Generator().manual_seed(0))) == 3
    j, _, pj, _, _ = _defense(schedule="joint")
    assert len(pj.batches(20, torch.Generator().manual_seed(0))) == 3


def test_mixup_forward_mixes_the_batch():
    d, model, parts, x, _ = _defense(mixup_alpha=1.0)
    d._plan, d._pos = ["mixup"], 0
    out = parts.model(x[:8])
    perm, lam = d._mix
    assert 0.0 < lam < 1.0
    assert torch.allclose(out, model(lam * x[:8] + (1 - lam) * x[:8][perm]), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"mmd_lambda": -1}, "defense.mmd_lambda"),
        ({"schedule": "both"}, "defense.schedule"),
        ({"sigmas": [0.0]}, "defense.sigmas"),
        ({"mixup_alpha": -0.1}, "defense.mixup_alpha"),
    ],
)
def test_bad_values_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        MixupMMD(3, 4, **kwargs)
    assert err.value.key == key
