"""HAMP (Chen & Pattabiraman 2024): soft labels, loss and output modification against
hand-worked values."""

import math

import pytest
import torch

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import DefenseContext
from mia_bench.defenses.hamp import (
    HAMP,
    hamp_loss,
    random_inputs,
    rank_replace,
    soft_label_top1,
    soft_labels,
)
from mia_bench.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_soft_label_top1_two_classes_hand_worked():
    # threshold 0.5 ln 2 = 0.34657; H(0.89) = 0.34651 < it, H(0.88) = 0.36692 >= it
    assert soft_label_top1(2, 0.5) == pytest.approx(0.88)


def _authors_loop(c, gamma, step=0.01):
    """The stepping of the authors' get_top1, transcribed: subtract, spread, test."""
    p = [0.0] * c
    p[1] = 1.0
    while True:
        p[1] -= step
        for j in range(c):
            if j != 1:
                p[j] += step / (c - 1)
        if -sum(v * math.log(v) for v in p if v > 0) >= gamma * math.log(c):
            return p[1]


@pytest.mark.parametrize("c, gamma", [(10, 0.95), (100, 0.5), (100, 0.8), (10, 0.6), (30, 0.5)])
def test_soft_label_top1_matches_the_authors_stepping(c, gamma):
    assert soft_label_top1(c, gamma) == pytest.approx(_authors_loop(c, gamma), abs=1e-9)


def test_soft_labels_rows():
    t = soft_labels(torch.tensor([2, 0]), 4, 0.7)
    assert torch.allclose(t, torch.tensor([[0.1, 0.1, 0.7, 0.1], [0.7, 0.1, 0.1, 0.1]]))


def test_hamp_loss_hand_worked():
    logits = torch.zeros(1, 2)
    soft = torch.tensor([[0.88, 0.12]])
    kl = 0.88 * math.log(0.88 / 0.5) + 0.12 * math.log(0.12 / 0.5)  # 0.32622
    h = math.log(2)
    assert hamp_loss(logits, soft, 0.1).item() == pytest.approx(kl - 0.1 * h, abs=1e-6)
    # the authors' code: F.kl_div's default mean over batch * classes, KL / C
    assert hamp_loss(logits, soft, 0.1, "elementwise").item() == pytest.approx(
        kl / 2 - 0.1 * h, abs=1e-6
    )


def test_rank_replace_keeps_the_ranking_with_the_pool_values():
    q = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]).log()
    pool = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]).log()
    out = rank_replace(q, pool).exp()
    assert torch.allclose(out, torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]))


def test_random_inputs_cover_the_domain():
    g = torch.Generator().manual_seed(0)
    img = random_inputs(torch.zeros(5, 3, 4, 4, dtype=torch.uint8), 50, g)
    assert img.dtype == torch.uint8 and img.shape == (50, 3, 4, 4) and img.max() > 200
    bits = random_inputs(torch.tensor([[0.0, 1.0], [1.0, 1.0]]), 200, g)
    assert set(bits.unique().tolist()) == {0.0, 1.0}
    cont = random_inputs(torch.tensor([[-2.0, 10.0], [3.0, 11.0]]), 500, g)
    assert cont[:, 0].min() >= -2 and cont[:, 0].max() <= 3 and cont[:, 1].min() >= 10


class _Identity(torch.nn.Module):
    def forward(self, x):
        return x


def test_postprocess_keeps_labels_repeats_answers_and_takes_pool_values():
    d = HAMP(5, 5, pool_size=64)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, 5, generator=gen)
    ctx = DefenseContext.from_tensors(
        train=(x, torch.zeros(100, dtype=torch.long)),
        reference=(x[:1], torch.zeros(1, dtype=torch.long)),
        role="target",
        seed=1,
        device=torch.device("cpu"),
        preprocess=Preprocess("tabular"),
        teacher=lambda cfg: None,
    )
    d.after_training(_Identity(), ctx)
    z = 10 * torch.randn(40, 5, generator=gen)
    out = d.postprocess(z)
    assert torch.equal(out.argmax(1), z.argmax(1))
    assert torch.equal(out.argsort(1), z.argsort(1))
    assert torch.equal(d.postprocess(z), out)
    # each answer is a permutation of one pool row
    pool_sorted = d.pool.sort(1).values
    out_sorted = out.sort(1).values
    assert all(any(torch.allclose(r, p) for p in pool_sorted) for r in out_sorted)


def test_output_modification_off_leaves_answers_and_white_box_signals():
    d = HAMP(5, 5, modify_output=False)
    z = torch.randn(3, 5)
    d.after_training(_Identity(), None)
    assert torch.equal(d.postprocess(z), z) and not d.blocks_signals


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"gamma": 1.5}, "defense.gamma"),
        ({"alpha": -1}, "defense.alpha"),
        ({"kl": "sum"}, "defense.kl"),
        ({"pool_size": 0}, "defense.pool_size"),
    ],
)
def test_bad_values_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        HAMP(10, 8, **kwargs)
    assert err.value.key == key
