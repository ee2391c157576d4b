"""SELENA (Tang et al. 2022): the leave-out assignment, Split-AI's adaptive soft labels and the
distillation loss against hand-worked values; the sub-models in a run's results."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mia_bench.config import validate
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import DefenseContext
from mia_bench.defenses.selena import SELENA, adaptive_soft_labels, leave_out, soft_kl
from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


def test_leave_out_excludes_exactly_l_models_per_sample_uniformly():
    out = leave_out(5000, 25, 10, seed=0)
    assert (out.sum(1) == 10).all()
    # each model is left out for about L / K = 40% of the samples
    assert np.allclose(out.mean(0), 0.4, atol=0.03)
    assert not np.array_equal(out, leave_out(5000, 25, 10, seed=1))


def test_adaptive_soft_labels_hand_worked():
    # 3 models, 2 samples, 2 classes
    probs = torch.tensor(
        [[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.6, 0.4]], [[0.3, 0.7], [1.0, 0.0]]]
    )
    out = np.array([[True, False, True], [False, True, False]])
    soft = adaptive_soft_labels(probs, out)
    # sample 0: mean of models 0 and 2; sample 1: model 1 only
    assert torch.allclose(soft, torch.tensor([[0.6, 0.4], [0.6, 0.4]]))


def test_soft_kl_hand_worked():
    logits = torch.zeros(1, 2)
    soft = torch.tensor([[0.6, 0.4]])
    kl = 0.6 * math.log(0.6 / 0.5) + 0.4 * math.log(0.4 / 0.5)
    assert soft_kl(logits, soft).item() == pytest.approx(kl, abs=1e-6)
    assert soft_kl(torch.tensor([[0.0, -1e9]]), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_setup_trains_k_submodels_on_their_subsets_and_averages_the_left_out_ones():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 4, generator=g), torch.arange(30) % 3
    made = {}

    def teacher(cfg, subset=None, name="teacher"):
        torch.manual_seed(len(made))
        made[name] = np.asarray(subset)
        return nn.Linear(4, 3)

    ctx = DefenseContext.from_tensors(
        train=(x, y),
        reference=(x[:1], y[:1]),
        role="target",
        seed=7,
        device=torch.device("cpu"),
        preprocess=Preprocess("tabular"),
        teacher=teacher,
    )
    d = SELENA(3, 4, k=4, l=1)
    d.attach(ctx)
    parts = d.setup(nn.Linear(4, 3), None, (x, y))
    assert sorted(made) == [f"selena{j}" for j in range(4)]
    out = leave_out(30, 4, 1, 7)
    for j in range(4):
        assert np.array_equal(made[f"selena{j}"], np.flatnonzero(~out[:, j]))
    # with L = 1 each soft label is the softmax of the one model that did not see the sample
    models = []
    for j in range(4):
        torch.manual_seed(j)
        models.append(nn.Linear(4, 3))
    expected = torch.stack(
        [torch.softmax(models[int(np.flatnonzero(out[i])[0])](x[i]), 0) for i in range(30)]
    )
    assert torch.allclose(parts.data[1], expected, atol=1e-6)
    assert torch.equal(parts.data[0], x)


def test_run_records_the_submodels_and_the_cost(cfg_factory, tmp_path):
    cfg = cfg_factory(
        [
            "defense=selena",
            "defense.k=3",
            "defense.l=1",
            "dataset.n_samples=600",
            "trainer.epochs=2",
            "trainer.milestones=[1]",
            "attack=[loss]",
        ]
    )
    validate(cfg)
    res = pipeline.run(cfg, tmp_path / "run")
    assert res["defense"]["models_trained"] == 4
    assert {f"target.selena{j}" for j in range(3)} <= set(res["models"])
    assert {f"shadow0.selena{j}" for j in range(3)} <= set(res["models"])


@pytest.mark.parametrize(
    "kwargs, key",
    [({"k": 1}, "defense.k"), ({"l": 0}, "defense.l"), ({"k": 4, "l": 4}, "defense.l")],
)
def test_bad_values_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        SELENA(3, 4, **kwargs)
    assert err.value.key == key
