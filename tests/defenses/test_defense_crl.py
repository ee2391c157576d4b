"""Center-based Relaxed Learning (Fang & Kim 2024): the normalisation, every case of
ImpRelaxLoss and of the relaxed center loss against a naive reference, the split of gradients
between model and centers (Algorithm 1 lines 24-25, and the authors' code), the epoch parity, and the centers' own optimiser."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT
from defense_reference import imp_relax_loss, numeric_grad, relaxed_center_loss
from omegaconf import OmegaConf

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses import build
from mia_bench.defenses.crl import CenterRelaxedLearning, normalise
from mia_bench.errors import ConfigError
from mia_bench.models.mlp import MLP
from mia_bench.train.loop import train_model

C, D = 3, 4


def test_normalise_by_hand():
    # ||(3, 4)|| = 5; tau 0.5: divide by 1 + 2.5 = 3.5
    z = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    torch.testing.assert_close(normalise(z, 0.5), torch.tensor([[3 / 3.5, 4 / 3.5], [0.0, 0.0]]))
    torch.testing.assert_close(normalise(z, 0.0), z)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(5, C, generator=g, dtype=torch.float64) * 2
    feats = torch.randn(5, D, generator=g, dtype=torch.float64)
    centers = torch.randn(C, D, generator=g, dtype=torch.float64)
    return logits, feats, centers, torch.tensor([0, 1, 2, 1, 0])


def make(centers, **kw):
    d = CenterRelaxedLearning(C, D, **kw).double()
    with torch.no_grad():
        d.centers.copy_(centers)
    return d


def lce(logits, targets, tau):
    return float(F.cross_entropy(normalise(logits, tau), targets))


def dist(feats, centers, targets, tau):
    q, c = normalise(feats, tau), normalise(centers, tau)[targets]
    return float((q - c).square().sum(1).sum() / (2 * len(targets)))


@pytest.mark.parametrize("epoch", [0, 1, 2, 3])
@pytest.mark.parametrize("side", ["above", "below"])
@pytest.mark.parametrize("tau, upper", [(0.0, 1.0), (0.3, 1.0), (0.3, 0.4)])
def test_imp_relax_loss_every_case(batch, epoch, side, tau, upper):
    logits, _, centers, targets = batch
    L = lce(logits, targets, tau)
    alpha = L - 0.2 if side == "above" else L + 0.2
    d = make(centers, alpha_rce=alpha, tau_rce=tau, upper=upper)
    got = float(d.imp_relax_loss(logits, targets, epoch))
    want = imp_relax_loss(logits.numpy(), targets.numpy(), alpha, tau, epoch, upper)
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("epoch", [0, 1, 2, 3])
@pytest.mark.parametrize("side", ["above", "below"])
@pytest.mark.parametrize("tau, upper_rcl", [(0.0, 1.0), (0.5, 1.0), (0.5, 0.3)])
def test_relaxed_center_loss_every_case(batch, epoch, side, tau, upper_rcl):
    logits, feats, centers, targets = batch
    Dv = dist(feats, centers, targets, tau)
    alpha = Dv - 0.05 if side == "above" else Dv + 0.05
    d = make(centers, alpha_rcl=alpha, tau_rcl=tau, upper_rcl=upper_rcl)
    got = d.relaxed_center_loss(feats, d.centers, logits, targets, epoch).item()
    want = relaxed_center_loss(
        feats.numpy(),
        centers.numpy(),
        logits.numpy(),
        targets.numpy(),
        alpha,
        tau,
        epoch,
        upper_rcl,
    )
    assert got == pytest.approx(want, rel=1e-12)


def test_center_loss_cases_by_hand():
    # One sample of class 0, q = (1, 0), c_0 = (0, 0), tau 0: d = 1, D = 1 / 2 = 0.5.
    feats = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    logits = torch.tensor([[0.0, 0.0]], dtype=torch.float64)  # p_y = 0.5
    targets = torch.tensor([0])
    d = CenterRelaxedLearning(2, 2, alpha_rcl=0.2).double()
    with torch.no_grad():
        d.centers.zero_()
    rcl = lambda epoch: d.relaxed_center_loss(feats, d.centers, logits, targets, epoch).item()  # noqa: E731
    assert rcl(0) == pytest.approx(0.3)  # |0.5 - 0.2|
    assert rcl(1) == pytest.approx(0.5)  # D > alpha_rcl: D
    d.alpha_rcl = 0.8
    assert rcl(0) == pytest.approx(0.3)  # |0.5 - 0.8|
    # odd epoch, D <= alpha_rcl: flattening. Center (1, 0.5): d = 0.25, D = 0.125, ||q||^2 = 1;
    # w = min(p_y, upper_rcl) = min(0.5, 0.2) = 0.2: [0.2 * 0.25 + 0.8 * 1] / 2 = 0.425
    with torch.no_grad():
        d.centers[0] = torch.tensor([1.0, 0.5])
    d.upper_rcl = 0.2
    assert rcl(1) == pytest.approx(0.425)
    d.upper_rcl = 1.0  # w = 0.5: [0.5 * 0.25 + 0.5 * 1] / 2 = 0.3125
    assert rcl(1) == pytest.approx(0.3125)


@pytest.mark.parametrize("centers_update", ["paper", "code"])
@pytest.mark.parametrize("epoch", [0, 1])
def test_total_loss_and_gradient_split(batch, epoch, centers_update):
    logits, feats, centers, targets = batch
    # alphas above the current values: flattening on Algorithm 1's odd epochs (the trainer's
    # even ones), ascent on its even epochs
    kw = dict(
        alpha_rce=lce(logits, targets, 0.2) + 0.3,
        tau_rce=0.2,
        alpha_rcl=dist(feats, centers, targets, 0.1) + 0.1,
        tau_rcl=0.1,
        lam=0.7,
        stop_gradient=True,
        centers_update=centers_update,
    )
    d = make(centers, **kw)
    g, q = logits.clone().requires_grad_(True), feats.clone().requires_grad_(True)
    total = d.loss(g, targets, epoch=epoch, features=q)
    y = targets.numpy()
    step = epoch + 1  # Algorithm 1 counts epochs from 1

    def rce(x):
        return imp_relax_loss(x, y, kw["alpha_rce"], 0.2, step)

    def rcl(f, c, lg):
        return relaxed_center_loss(f, c, lg, y, kw["alpha_rcl"], 0.1, step)

    assert total.item() == pytest.approx(
        rce(logits.numpy()) + 0.7 * rcl(feats.numpy(), centers.numpy(), logits.numpy()), rel=1e-12
    )
    total.backward()
    # features: lam * dL_rcl/dq, numerically
    fd_q = numeric_grad(lambda f: 0.7 * rcl(f, centers.numpy(), logits.numpy()), feats.numpy())
    np.testing.assert_allclose(q.grad.numpy(), fd_q, atol=1e-7)
    # centers: dL_rcl/dc itself in the paper (Algorithm 1 line 24); lam * dL_rcl/dc in the
    # authors' code, which back-propagates the whole loss
    fd_c = numeric_grad(lambda c: rcl(feats.numpy(), c, logits.numpy()), centers.numpy())
    scale = 1.0 if centers_update == "paper" else 0.7
    np.testing.assert_allclose(d.centers.grad.numpy(), scale * fd_c, atol=1e-7)
    if step % 2 == 0:
        # logits get only the ImpRelaxLoss gradient (p_y weights are constants)
        fd_g = numeric_grad(rce, logits.numpy())
        np.testing.assert_allclose(g.grad.numpy(), fd_g, atol=1e-7)


def test_epoch_parity_two_epochs_by_hand():
    # CRL's Algorithm 1 counts epochs from 1, so the trainer's epoch 0 is CRL's odd epoch 1.
    # Logits (2, 0) and (0, 2) with labels 0 and 1, tau_rce 0: p_y = e^2 / (e^2 + 1) for both,
    # L_lce = -log p_y = log(1 + e^-2) = 0.126928 < alpha_rce = 0.5.
    # Trainer epoch 0 (Algorithm 1's epoch 1, odd, L <= alpha): flattening, a CE against the
    # soft label (p_y, 1 - p_y) = the binary entropy of p_y = 0.365334.
    # Trainer epoch 1 (Algorithm 1's epoch 2, even): |L - alpha| = 0.373072.
    # lam = 0 isolates L_rce.
    import math

    p = math.exp(2) / (math.exp(2) + 1)
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    l_ce = -math.log(p)
    assert entropy == pytest.approx(0.365334, abs=1e-6)
    assert abs(l_ce - 0.5) == pytest.approx(0.373072, abs=1e-6)
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    targets = torch.tensor([0, 1])
    d = CenterRelaxedLearning(2, 3, alpha_rce=0.5, tau_rce=0.0, lam=0.0).double()
    feats = torch.zeros(2, 3, dtype=torch.float64)
    assert d.loss(logits, targets, epoch=0, features=feats).item() == pytest.approx(entropy)
    assert d.loss(logits, targets, epoch=1, features=feats).item() == pytest.approx(abs(l_ce - 0.5))


def test_defaults_follow_the_authors_code():
    d = build(OmegaConf.load(ROOT / "conf/defense/crl.yaml"), num_classes=3, feature_dim=4)
    assert d.centers_update == "code" and d.stop_gradient is False
    (opt,) = d.extra_optimizers()
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.001, 0.9, 5e-4)
    (plain,) = make(torch.zeros(C, D), centers_update="paper").extra_optimizers()
    assert (plain.param_groups[0]["momentum"], plain.param_groups[0]["weight_decay"]) == (0, 0)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_flattening_gradient_with_and_without_stop_gradient(batch, stop_gradient):
    logits, feats, centers, targets = batch
    y = targets.numpy()
    kw = dict(
        alpha_rce=lce(logits, targets, 0.2) + 0.3,
        tau_rce=0.2,
        alpha_rcl=dist(feats, centers, targets, 0.0) + 0.1,
        lam=0.7,
    )
    d = make(centers, stop_gradient=stop_gradient, **kw)
    g = logits.clone().requires_grad_(True)
    d.loss(g, targets, epoch=0, features=feats).backward()  # Algorithm 1's epoch 1

    def total(x, label_logits):  # both terms in their flattening case on this odd epoch
        return imp_relax_loss(x, y, kw["alpha_rce"], 0.2, 1, label_logits=label_logits) + 0.7 * (
            relaxed_center_loss(
                feats.numpy(), centers.numpy(), label_logits, y, kw["alpha_rcl"], 0.0, 1
            )
        )

    held = numeric_grad(lambda x: total(x, logits.numpy()), logits.numpy())  # soft label fixed
    free = numeric_grad(lambda x: total(x, x), logits.numpy())  # soft label follows the logits
    np.testing.assert_allclose(g.grad.numpy(), held if stop_gradient else free, atol=1e-7)
    assert not np.allclose(held, free, atol=1e-4)


def test_even_epoch_below_alpha_ascends_on_normalised_ce(batch):
    logits, feats, centers, targets = batch
    L = lce(logits, targets, 0.2)
    d = make(centers, alpha_rce=L + 0.5, tau_rce=0.2, lam=0.0)
    g = logits.clone().requires_grad_(True)
    d.loss(g, targets, epoch=1, features=feats).backward()  # Algorithm 1's epoch 2
    assert lce(logits - 0.1 * g.grad, targets, 0.2) > L


@pytest.mark.parametrize("centers_update", ["paper", "code"])
def test_centers_follow_l_rcl_with_lam_zero_only_in_the_paper(batch, centers_update):
    logits, feats, centers, targets = batch
    d = make(centers, lam=0.0, centers_update=centers_update)
    d.loss(logits, targets, epoch=0, features=feats.requires_grad_(True)).backward()
    moved = d.centers.grad is not None and d.centers.grad.abs().sum() > 0
    assert moved == (centers_update == "paper")
    assert feats.grad is None or feats.grad.abs().sum() == 0


def test_needs_features_and_centers_shape():
    d = build(OmegaConf.load(ROOT / "conf/defense/crl.yaml"), num_classes=10, feature_dim=128)
    assert d.needs_features
    assert isinstance(d.centers, torch.nn.Parameter) and d.centers.shape == (10, 128)
    (opt,) = d.extra_optimizers()
    assert opt.param_groups[0]["params"] == [d.centers]
    assert opt.param_groups[0]["lr"] == d.lr_centers
    with pytest.raises(ValueError, match="features"):
        d.loss(torch.zeros(2, 10), torch.tensor([0, 1]), epoch=0)


def test_centers_move_during_training_by_their_own_optimiser():
    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    model = MLP((6,), 3, hidden=(8,))
    d = CenterRelaxedLearning(3, model.feature_dim, lr_centers=0.5)
    before = d.centers.detach().clone()
    cfg = OmegaConf.create(
        {
            "epochs": 2,
            "batch_size": 16,
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 0.0,
            "milestones": [],
            "gamma": 0.1,
        }
    )
    prep = Preprocess("tabular")
    train_model(
        model, d, x, y, cfg, preprocess=prep, seed=0, device=torch.device("cpu"), progress=False
    )
    moved = (d.centers.detach() - before).norm()
    assert moved > 1e-3
    # the model's optimiser does not hold the centers: with lr_centers tiny they stay put
    d2 = CenterRelaxedLearning(3, model.feature_dim, lr_centers=1e-12)
    before2 = d2.centers.detach().clone()
    train_model(
        model, d2, x, y, cfg, preprocess=prep, seed=0, device=torch.device("cpu"), progress=False
    )
    assert (d2.centers.detach() - before2).norm() < 1e-9


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"lam": -0.1}, "defense.lam"),
        ({"tau_rce": -1.0}, "defense.tau_rce"),
        ({"tau_rcl": -1.0}, "defense.tau_rcl"),
        ({"alpha_rce": 0.0}, "defense.alpha_rce"),
        ({"alpha_rcl": -0.5}, "defense.alpha_rcl"),
        ({"upper": 1.2}, "defense.upper"),
        ({"upper_rcl": 0.0}, "defense.upper_rcl"),
        ({"lr_centers": 0.0}, "defense.lr_centers"),
        ({"stop_gradient": "yes"}, "defense.stop_gradient"),
        ({"centers_update": "both"}, "defense.centers_update"),
        ({"centers_momentum": 1.5}, "defense.centers_momentum"),
        ({"centers_weight_decay": -1.0}, "defense.centers_weight_decay"),
    ],
)
def test_invalid_values_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        CenterRelaxedLearning(C, D, **kwargs)
    assert err.value.key == key
