"""`trainer.lr_schedule`: a piecewise-constant learning rate by epoch range, its checks, and
the same schedule in the one-by-one and the stacked trainers."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from mia_bench.config import lr_schedule
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.none import NoDefense
from mia_bench.errors import ConfigError
from mia_bench.models.mlp import MLP
from mia_bench.train.core import make_scheduler
from mia_bench.train.loop import train_model, trainer_identity
from mia_bench.train.stacked import train_stacked

# A one-epoch warm-up, then two ranges: 0.01 | 0.1 0.1 | 0.02 0.02 0.02.
WARMUP = [
    {"start": 0, "end": 1, "lr": 0.01},
    {"start": 1, "end": 3, "lr": 0.1},
    {"start": 3, "end": 6, "lr": 0.02},
]


def _trainer(**kw):
    base = {
        "epochs": 6,
        "batch_size": 16,
        "lr": 0.5,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "milestones": [2],
        "gamma": 0.1,
        "lr_schedule": WARMUP,
    }
    return OmegaConf.create({**base, **kw})


def _lrs(cfg) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = make_scheduler(opt, cfg)
    out = []
    for _ in range(cfg.epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_piecewise_rates_by_hand_whatever_the_base_lr():
    want = [0.01, 0.1, 0.1, 0.02, 0.02, 0.02]
    assert _lrs(_trainer()) == pytest.approx(want)
    assert _lrs(_trainer(lr=1e-4)) == pytest.approx(want)


def test_unset_keeps_milestones_and_gamma():
    # lr 0.5, x0.1 at epoch 2
    assert _lrs(_trainer(lr_schedule=None)) == pytest.approx([0.5, 0.5, 0.05, 0.05, 0.05, 0.05])


def test_unset_schedule_leaves_the_model_cache_key_as_before():
    with_null = trainer_identity(_trainer(lr_schedule=None))
    without = trainer_identity(OmegaConf.create({k: v for k, v in with_null.items()}))
    assert with_null == without and "lr_schedule" not in with_null
    assert trainer_identity(_trainer())["lr_schedule"][0] == {"start": 0, "end": 1, "lr": 0.01}


@pytest.mark.parametrize(
    "value, epochs, says",
    [
        ([{"start": 1, "end": 6, "lr": 0.1}], 6, "starting at 0"),
        ([{"start": 0, "end": 2, "lr": 0.1}, {"start": 3, "end": 6, "lr": 0.1}], 6, "at 2"),
        ([{"start": 0, "end": 4, "lr": 0.1}, {"start": 2, "end": 6, "lr": 0.1}], 6, "at 4"),
        ([{"start": 0, "end": 0, "lr": 0.1}], 6, "start < end"),
        ([{"start": 0, "end": 4, "lr": 0.1}], 6, "extend the last"),
        ([{"start": 0, "end": 6, "lr": 0.0}], 6, "finite number > 0"),
        ([{"start": 0, "end": 6, "lr": float("nan")}], 6, "finite number > 0"),
        ([{"start": 0, "end": 6, "lr": float("inf")}], 6, "finite number > 0"),
        ([{"start": 0, "end": 6, "lr": True}], 6, "finite number > 0"),
        ([{"start": 0.0, "end": 6, "lr": 0.1}], 6, "contiguous"),
        ([{"start": 0, "lr": 0.1}], 6, "list of"),
        ([], 6, "at least one"),
        (0.1, 6, "list of"),
    ],
)
def test_bad_schedules_name_the_key(value, epochs, says):
    with pytest.raises(ConfigError, match=says) as err:
        lr_schedule(value, epochs)
    assert err.value.key == "trainer.lr_schedule"


def test_ranges_past_the_last_epoch_are_allowed():
    assert lr_schedule(WARMUP, 2) == [(0, 1, 0.01), (1, 3, 0.1), (3, 6, 0.02)]
    assert lr_schedule(None, 5) is None


def test_cli_refuses_a_gap_before_training(cfg_factory):
    from mia_bench.config import validate

    cfg = cfg_factory(
        [
            "trainer.epochs=3",
            "trainer.lr_schedule=[{start:0,end:1,lr:0.1},{start:2,end:3,lr:0.1}]",
        ]
    )
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert err.value.key == "trainer.lr_schedule"


def test_stacked_and_one_by_one_follow_the_same_schedule():
    cfg = _trainer(stack=2, epochs=4)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    data = [
        (torch.randn(32, 5, generator=g), torch.randint(0, 3, (32,), generator=g)) for g in gens
    ]
    pre = Preprocess("tabular")
    models = []
    for s in (11, 22):
        torch.manual_seed(s)
        models.append(MLP((5,), 3, hidden=(8,)))
    alone = [MLP((5,), 3, hidden=(8,)) for _ in models]
    for a, m in zip(alone, models):
        a.load_state_dict(m.state_dict())
    for a, (x, y), s in zip(alone, data, (11, 22)):
        train_model(
            a,
            NoDefense(3, 8),
            x,
            y,
            cfg,
            preprocess=pre,
            seed=s,
            device=torch.device("cpu"),
            progress=False,
        )
    train_stacked(
        models,
        [NoDefense(3, 8), NoDefense(3, 8)],
        data,
        cfg,
        seeds=[11, 22],
        preprocess=pre,
        device=torch.device("cpu"),
        progress=False,
    )
    for a, m in zip(alone, models):
        for k, v in a.state_dict().items():
            torch.testing.assert_close(m.state_dict()[k], v, atol=1e-5, rtol=0)
    # and the schedule mattered: milestones/gamma instead give other weights
    torch.manual_seed(11)
    other = MLP((5,), 3, hidden=(8,))
    train_model(
        other,
        NoDefense(3, 8),
        *data[0],
        _trainer(epochs=4, lr_schedule=None),
        preprocess=pre,
        seed=11,
        device=torch.device("cpu"),
        progress=False,
    )
    last = [list(m.parameters())[-1] for m in (other, alone[0])]
    assert not torch.allclose(*last)
