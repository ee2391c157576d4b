"""Quantile-regression MIA (Bertran et al. 2023): the pinball loss and hinge score against
hand-worked values, the fitted quantile against numpy's, and the decision rule's false-positive
rate on fresh non-members."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from mia_bench.attacks.quantile import QuantileRegression, gaussian_nll, hinge_score, pinball_loss
from mia_bench.errors import ConfigError
from mia_bench.signals.compute import Signals

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pinball_loss_hand_worked():
    s = torch.tensor([2.0, 0.0, 1.0])
    q = torch.tensor([1.0, 1.0, 1.0])
    # tau = 0.9: under by 1 -> 0.9; over by 1 -> 0.1; exact -> 0; mean 1/3
    assert pinball_loss(q, s, 0.9).item() == pytest.approx((0.9 + 0.1 + 0.0) / 3)
    # tau = 0.99 (alpha = 1%): 0.99 and 0.01
    assert pinball_loss(q[:2], s[:2], 0.99).item() == pytest.approx(0.5)
    assert pinball_loss(torch.tensor([3.0]), torch.tensor([0.5]), 0.75).item() == pytest.approx(
        0.25 * 2.5
    )


def test_pinball_minimiser_over_constants_is_the_empirical_quantile():
    s = torch.arange(100, dtype=torch.float64)
    grid = torch.linspace(0, 99, 991, dtype=torch.float64)
    losses = torch.stack([pinball_loss(c.expand(100), s, 0.9) for c in grid])
    best = grid[losses.argmin()].item()
    # any c in [89, 90] minimises it: 90 samples lie at or below 89, 10 at or above 90
    assert 89.0 <= best <= 90.0


def test_gaussian_nll_hand_worked():
    mu, log_sd, s = torch.tensor([1.0]), torch.tensor([np.log(2.0)]), torch.tensor([3.0])
    # log 2 + (2 / 2)^2 / 2
    assert gaussian_nll(mu, log_sd, s).item() == pytest.approx(np.log(2.0) + 0.5)


def test_hinge_score_hand_worked():
    z = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]])
    assert hinge_score(z, np.array([0, 0])).tolist() == [1.0, -5.0]
    assert hinge_score(z, np.array([2, 1])).tolist() == [-1.0, 5.0]


def _signals(x, s, member):
    """Signals whose hinge score for label 0 is exactly s (logits [s, 0])."""
    logits = np.stack([s, np.zeros_like(s)], 1).astype(np.float32)
    return Signals(
        logits, np.zeros(len(s), int), np.asarray(member, bool), {"inputs": x.astype(np.float32)}
    )


def _attack(**kw):
    a = QuantileRegression(use_label=False, **kw)
    a.name = "quantile"
    return a


def test_constant_features_fit_the_empirical_quantile_and_decide_above_it():
    pub_s = np.arange(100, dtype=np.float64)
    public = _signals(np.zeros((100, 1)), pub_s, np.zeros(100))
    a = _attack(alpha=0.1, hidden=[], lr=0.05, epochs=300, batch_size=100, val_fraction=0.0)
    target = _signals(np.zeros((4, 1)), np.array([95.0, 91.0, 85.0, 10.0]), [1, 1, 0, 0])
    target.public = public
    margin = a.score(target)["quantile"]
    q = 95.0 - margin[0]
    assert 88.5 <= q <= 90.5  # the 0.9 quantile of 0..99
    assert margin == pytest.approx(np.array([95.0, 91.0, 85.0, 10.0]) - q, abs=1e-4)
    assert a.predict(target)["quantile"].tolist() == [True, True, False, False]


@pytest.mark.parametrize("loss", ["pinball", "gaussian"])
def test_conditional_quantile_gives_the_target_false_positive_rate(loss):
    rng = np.random.default_rng(0)

    def draw(n):
        x = rng.uniform(-1, 1, (n, 1))
        # the score's scale and centre depend on x: a global threshold cannot fit this
        return x, 4 * x[:, 0] + (1 + x[:, 0] ** 2) * rng.standard_normal(n)

    xp, sp = draw(6000)
    a = _attack(alpha=0.05, loss=loss, hidden=[32], lr=0.01, epochs=40, batch_size=256)
    xq, sq = draw(4000)
    target = _signals(xq, sq, np.zeros(4000))
    target.public = _signals(xp, sp, np.zeros(6000))
    fpr = a.predict(target)["quantile"].mean()
    assert 0.03 <= fpr <= 0.07
    # and the quantile follows x: at x = 0.5 the true 0.95 quantile is 2 + 1.25 * 1.645
    margin = a.score(target)["quantile"]
    q = sq - margin
    near = np.abs(xq[:, 0] - 0.5) < 0.05
    assert np.median(q[near]) == pytest.approx(2 + 1.25 * norm.ppf(0.95), abs=0.35)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"alpha": 0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"loss": "mse"}, "loss"),
        ({"epochs": 0}, "epochs"),
        ({"hidden": [0]}, "hidden"),
    ],
)
def test_bad_settings_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        QuantileRegression(**kwargs)
    assert err.value.key == key


def test_a_split_without_public_data_is_refused_before_training(cfg_factory, tmp_path, monkeypatch):
    from mia_bench.experiment import run as pipeline

    cfg = cfg_factory(["attack=[quantile]", "split=ccl"])
    exp = pipeline.Experiment(cfg, tmp_path / "run")
    trained = []
    monkeypatch.setattr(
        "mia_bench.experiment.models.train_model", lambda *a, **k: trained.append(1)
    )
    with pytest.raises(ConfigError) as err:
        exp.prepare()
    assert err.value.key == "split" and "quantile" in err.value.message and not trained
