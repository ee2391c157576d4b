"""RelaxLoss (Chen et al. 2022, Algorithm 1 and App. B.3): every branch against a naive
reference (tests/defense_reference.py) or a hand-computed value, and the gradient directions."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from defense_reference import numeric_grad, relaxloss

from mia_bench.defenses import build
from mia_bench.defenses.relaxloss import RelaxLoss
from mia_bench.errors import ConfigError

C = 4


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, C, generator=g, dtype=torch.float64) * 2
    targets = torch.tensor([0, 1, 2, 3, 1, 0])
    return logits, targets


def mean_ce(logits, targets):
    return float(F.cross_entropy(logits, targets))


def value(defense, logits, targets, epoch):
    return float(defense.loss(logits, targets, epoch=epoch))


def grad(defense, logits, targets, epoch):
    x = logits.clone().requires_grad_(True)
    defense.loss(x, targets, epoch=epoch).backward()
    return x.grad


@pytest.mark.parametrize("form", ["paper", "image"])
@pytest.mark.parametrize("epoch", [0, 1, 2, 3, 6, 7])
@pytest.mark.parametrize("side", ["above", "below"])
def test_every_branch_matches_naive_reference(batch, form, epoch, side):
    logits, targets = batch
    L = mean_ce(logits, targets)
    alpha = L - 0.3 if side == "above" else L + 0.3
    d = RelaxLoss(C, 8, alpha=alpha, form=form)
    want = relaxloss(logits.numpy(), targets.numpy(), alpha, epoch, form=form)
    assert value(d, logits, targets, epoch) == pytest.approx(want, rel=1e-12)


def test_branches_by_hand(batch):
    logits, targets = batch
    L = mean_ce(logits, targets)
    d = RelaxLoss(C, 8, alpha=L + 0.25)
    # even epochs, below alpha: |L - alpha| = 0.25; epoch 0 is even (epochs count from 0)
    assert value(d, logits, targets, 0) == pytest.approx(0.25)
    assert value(d, logits, targets, 2) == pytest.approx(0.25)
    # odd epochs, below alpha: flattening, which is not |L - alpha|
    assert value(d, logits, targets, 1) != pytest.approx(0.25)
    d = RelaxLoss(C, 8, alpha=L - 0.25)
    assert value(d, logits, targets, 0) == pytest.approx(0.25)  # above alpha: L - alpha
    assert value(d, logits, targets, 1) == pytest.approx(L)  # odd, above alpha: plain CE


def test_loss_equal_to_alpha_flattens_on_odd_epochs(batch):
    logits, targets = batch
    L = F.cross_entropy(logits, targets).item()
    d = RelaxLoss(C, 8, alpha=L)
    flat = relaxloss(logits.numpy(), targets.numpy(), L + 1.0, 1)  # surely in the flattening case
    assert value(d, logits, targets, 1) == pytest.approx(flat, rel=1e-12)


def test_upper_caps_soft_label_by_hand():
    # logits (2, 0, 0), y = 0: p_0 = e^2 / (e^2 + 2) = 0.787, capped at 0.3, so
    # t = (0.3, 0.35, 0.35); log p_0 = 2 - log(e^2 + 2), log p_1 = log p_2 = -log(e^2 + 2);
    # soft CE = 0.3 * (log(e^2 + 2) - 2) + 0.7 * log(e^2 + 2) = log(e^2 + 2) - 0.6.
    logits = torch.tensor([[2.0, 0.0, 0.0]], dtype=torch.float64)
    targets = torch.tensor([0])
    d = RelaxLoss(3, 8, alpha=5.0, upper=0.3, form="tabular")
    assert value(d, logits, targets, 1) == pytest.approx(math.log(math.e**2 + 2) - 0.6, rel=1e-12)
    # without the cap t = (p_0, (1 - p_0)/2, (1 - p_0)/2): the soft CE equals H(p) here
    p = torch.softmax(logits, 1)[0].numpy()
    entropy = -float((p * np.log(p)).sum())
    assert value(RelaxLoss(3, 8, alpha=5.0), logits, targets, 1) == pytest.approx(
        entropy, rel=1e-12
    )


def test_even_epoch_below_alpha_is_gradient_ascent(batch):
    logits, targets = batch
    L = mean_ce(logits, targets)
    for alpha, direction in [(L + 0.5, +1), (L - 0.5, -1)]:
        g = grad(RelaxLoss(C, 8, alpha=alpha), logits, targets, epoch=0)
        stepped = mean_ce(logits - 0.1 * g, targets)
        assert direction * (stepped - L) > 0  # ascent raises the CE, descent lowers it
        # exactly minus / plus the CE gradient: (p - onehot) / B
        ce_grad = (torch.softmax(logits, 1) - F.one_hot(targets, C)) / len(targets)
        torch.testing.assert_close(g, -direction * ce_grad)


def test_paper_form_soft_label_gets_no_gradient(batch):
    logits, targets = batch
    d = RelaxLoss(C, 8, alpha=mean_ce(logits, targets) + 1.0, upper=0.6)
    g = grad(d, logits, targets, epoch=1)
    # with t constant, d/dg of -sum_c t_c log p_c is p - t (t sums to 1); mean over B
    p = torch.softmax(logits, 1)
    p_y = p.gather(1, targets[:, None]).clamp(max=0.6)
    t = torch.where(F.one_hot(targets, C).bool(), p_y, (1 - p_y) / (C - 1))
    torch.testing.assert_close(g, (p - t) / len(targets))
    # ... which is not the gradient of the same formula with t following the logits
    fd = numeric_grad(
        lambda x: relaxloss(x, targets.numpy(), d.alpha, 1, upper=0.6), logits.numpy()
    )
    assert not np.allclose(g.numpy(), fd, atol=1e-4)


def test_image_form_soft_label_is_not_detached(batch):
    logits, targets = batch
    assert (logits.argmax(1) != targets).any() and (logits.argmax(1) == targets).any()
    alpha = mean_ce(logits, targets) + 1.0
    g = grad(RelaxLoss(C, 8, alpha=alpha, form="image"), logits, targets, epoch=1)
    fd = numeric_grad(
        lambda x: relaxloss(x, targets.numpy(), alpha, 1, form="image"), logits.numpy()
    )
    np.testing.assert_allclose(g.numpy(), fd, atol=1e-7)


@pytest.mark.parametrize("stop_gradient", [None, True])
def test_tabular_form_gradient_as_the_authors_code_or_held(batch, stop_gradient):
    # The authors' non-image criterion computes t from softmax(g) and does not detach it: its
    # gradient is the finite difference of the formula with t following the logits.
    logits, targets = batch
    p_y = torch.softmax(logits, 1).gather(1, targets[:, None])
    assert (p_y < 0.55).any()  # some soft labels move with the logits (cap 0.6 not reached)
    alpha = mean_ce(logits, targets) + 1.0
    d = RelaxLoss(C, 8, alpha=alpha, upper=0.6, form="tabular", stop_gradient=stop_gradient)
    g = grad(d, logits, targets, epoch=1)
    fd = numeric_grad(lambda x: relaxloss(x, targets.numpy(), alpha, 1, upper=0.6), logits.numpy())
    if stop_gradient is None:
        assert d.stop_gradient is False
        np.testing.assert_allclose(g.numpy(), fd, atol=1e-7)
    else:
        assert not np.allclose(g.numpy(), fd, atol=1e-4)


def test_image_form_on_correct_samples_is_pure_ascent():
    logits = torch.tensor([[3.0, 0.0, -1.0], [0.5, 2.0, 0.0]], dtype=torch.float64)
    targets = torch.tensor([0, 1])  # both predicted correctly
    L = mean_ce(logits, targets)
    d = RelaxLoss(3, 8, alpha=L + 1.0, form="image")
    assert value(d, logits, targets, 1) == pytest.approx(-L)
    g = grad(d, logits, targets, 1)
    torch.testing.assert_close(g, -(torch.softmax(logits, 1) - F.one_hot(targets, 3)) / 2)
    assert mean_ce(logits - 0.1 * g, targets) > L


def test_odd_epoch_above_alpha_is_plain_descent(batch):
    logits, targets = batch
    g = grad(RelaxLoss(C, 8, alpha=0.01), logits, targets, epoch=1)
    torch.testing.assert_close(g, (torch.softmax(logits, 1) - F.one_hot(targets, C)) / len(targets))


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"alpha": 0.0}, "defense.alpha"),
        ({"alpha": -1.0}, "defense.alpha"),
        ({"alpha": "big"}, "defense.alpha"),
        ({"upper": 0.0}, "defense.upper"),
        ({"upper": 1.5}, "defense.upper"),
        ({"form": "audio"}, "defense.form"),
        ({"form": "tabular"}, "defense.upper"),  # tabular needs upper < 1
    ],
)
def test_invalid_values_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        RelaxLoss(C, 8, **kwargs)
    assert err.value.key == key


def test_built_from_config():
    d = build(
        {
            "name": "relaxloss",
            "_target_": "mia_bench.defenses.relaxloss.RelaxLoss",
            "alpha": 0.5,
            "upper": 0.3,
            "form": "tabular",
        },
        num_classes=C,
        feature_dim=8,
    )
    assert d.describe() == {
        "name": "relaxloss",
        "alpha": 0.5,
        "upper": 0.3,
        "form": "tabular",
        "stop_gradient": False,
    }
    assert not d.needs_features
