"""DP-SGD through Opacus: per-sample clipping, the recorded epsilon, GroupNorm, determinism."""

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import DefenseContext
from mia_bench.defenses.dp_sgd import DPSGD
from mia_bench.models.cnn import SmallCNN
from mia_bench.train.loop import train_model


def _cfg(batch_size, epochs=1, lr=1.0):
    return OmegaConf.create(
        {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "momentum": 0.0,
            "weight_decay": 0.0,
            "milestones": [100],
            "gamma": 0.1,
        }
    )


def _ctx(batch_size, seed=0):
    return DefenseContext.from_tensors(
        role="target",
        seed=seed,
        device=torch.device("cpu"),
        preprocess=Preprocess("tabular"),
        train=(torch.zeros(0), torch.zeros(0)),
        reference=(torch.zeros(0), torch.zeros(0)),
        teacher=lambda cfg: None,
        batch_size=batch_size,
    )


def _train(defense, model, x, y, cfg, seed=0):
    defense.attach(_ctx(int(cfg.batch_size), seed))
    model = defense.wrap_model(model)
    train_model(
        model,
        defense,
        x,
        y,
        cfg,
        preprocess=Preprocess("tabular"),
        seed=seed,
        device=torch.device("cpu"),
        progress=False,
    )
    return model


def test_each_per_sample_gradient_is_clipped_to_c():
    """One full-batch step without noise, lr 1: the update is -(1/B) sum_i clip_C(g_i), which we
    recompute with a naive per-sample loop; most raw per-sample norms exceed C, so clipping is
    what the comparison checks."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    x, y = 5 * torch.randn(8, 4), torch.randint(0, 3, (8,))
    c = 0.5
    before = [p.detach().clone() for p in model.parameters()]

    raw_norms, clipped = [], []
    for i in range(8):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        g = [p.grad.detach().clone() for p in model.parameters()]
        norm = torch.sqrt(sum((t**2).sum() for t in g))
        raw_norms.append(norm.item())
        factor = min(1.0, c / (norm.item() + 1e-6))  # Opacus's clip factor
        clipped.append([t * factor for t in g])
    clipped_norms = [math.sqrt(sum((t**2).sum().item() for t in gi)) for gi in clipped]
    assert sum(n > c for n in raw_norms) >= 4
    assert max(clipped_norms) <= c + 1e-6
    expected = [b - sum(gi[k] for gi in clipped) / 8 for k, b in enumerate(before)]

    d = DPSGD(3, 4, noise_multiplier=0.0, max_grad_norm=c, poisson_sampling=False)
    trained = _train(d, model, x, y, _cfg(batch_size=8))
    for got, want in zip(trained.parameters(), expected):
        assert torch.allclose(got.detach(), want, atol=1e-6)
    assert d.describe()["epsilon"] is None  # no noise: no finite guarantee
    assert d.describe()["steps"] == 1


def test_epsilon_matches_the_rdp_formula_of_the_gaussian_mechanism():
    """q = 1 (full batches): the subsampled Gaussian is the plain Gaussian mechanism, whose RDP
    at order a after T steps is T a / (2 sigma^2) (Mironov 2017, Prop. 7). Opacus converts RDP
    to (eps, delta) with eps = rdp - (log delta + log a) / (a - 1) + log((a - 1) / a)
    (Balle et al. 2020), minimised over its default orders."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    sigma, delta, steps = 1.5, 1e-5, 3
    d = DPSGD(3, 4, noise_multiplier=sigma, max_grad_norm=1.0, delta=delta)
    _train(d, nn.Sequential(nn.Linear(4, 3)), x, y, _cfg(batch_size=16, epochs=steps, lr=0.1))
    orders = [1 + i / 10.0 for i in range(1, 100)] + list(range(12, 64))
    want = min(
        steps * a / (2 * sigma**2)
        - (math.log(delta) + math.log(a)) / (a - 1)
        + math.log((a - 1) / a)
        for a in orders
    )
    desc = d.describe()
    assert desc["steps"] == steps and desc["sample_rate"] == 1.0
    assert desc["epsilon"] == pytest.approx(want, rel=1e-6)
    # more noise, less epsilon; saved with the state (what the model cache stores)
    state = d.state_dict()
    d2 = DPSGD(3, 4, noise_multiplier=sigma, max_grad_norm=1.0, delta=delta)
    d2.load_state_dict(state)
    assert d2.describe()["epsilon"] == desc["epsilon"]


def test_batchnorm_becomes_groupnorm_and_is_reported():
    d = DPSGD(10, 32)
    model = d.wrap_model(SmallCNN((1, 8, 8), 10, channels=(16, 32)))
    kinds = {type(m).__name__ for m in model.modules()}
    assert "GroupNorm" in kinds and not any("BatchNorm" in k for k in kinds)
    assert len(d.describe()["replaced_modules"]) == 2
    assert all("BatchNorm2d -> GroupNorm" in r for r in d.describe()["replaced_modules"])


def test_noisy_training_is_repeatable_and_the_seed_matters():
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))

    def run(seed):
        torch.manual_seed(0)
        d = DPSGD(3, 4, noise_multiplier=1.0, max_grad_norm=1.0)
        m = _train(
            d, nn.Sequential(nn.Linear(4, 3)), x, y, _cfg(batch_size=16, epochs=2, lr=0.1), seed
        )
        assert not any(mod._forward_hooks or mod._backward_hooks for mod in m.modules())
        return torch.cat([p.detach().flatten() for p in m.parameters()]), d

    a, da = run(0)
    b, _ = run(0)
    c, _ = run(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Poisson sampling: 4 expected steps per epoch (q = 1/4), all taken (no empty batch)
    assert da.describe()["sample_rate"] == 0.25 and da.describe()["steps"] == 8
    assert da._gsm == []  # Opacus hooks removed after training
    assert not any(k.startswith("_gsm") for k in da.state_dict())
