"""Every defense config runs end to end; the pipeline's hooks for defenses (teachers through the
cache, early-stopping checkpoints, inapplicable attacks, trainer replacements) behave."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mia_bench.attacks.threshold import ThresholdAttack
from mia_bench.config import validate
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses import build as build_defense
from mia_bench.defenses.base import Defense, TrainingParts
from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline
from mia_bench.train.loop import train_model

DEFENSES = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "defense").glob("*.yaml")
)
SMALL = [
    "dataset.n_samples=1000",
    "trainer.epochs=2",
    "trainer.milestones=[1]",
    "attack=[loss,nn]",
    "attack.nn.epochs=3",
]
# Per-defense settings that only make the run fit the two epochs / the time of a unit test.
FIT = {
    "early_stopping": ["defense.epochs=[1,2]"],
    "memguard": ["defense.steps=20", "defense.surrogate_epochs=10"],
    "adv_reg": ["defense.hidden=[32,16]"],
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(cfg, out):
    validate(cfg)
    return pipeline.run(cfg, out)


class FakeGradAttack(ThresholdAttack):
    """Stands in for a white-box attack: it asks for input gradients (a defense answering only
    through `postprocess`, MemGuard, cannot give them)."""

    needs = frozenset({"grad_x"})

    def result_names(self):
        return [f"{self.name}_l1", f"{self.name}_l2"]

    def score(self, target):
        s = super().score(target)[self.name]
        return {n: s for n in self.result_names()}

    def predict(self, target):
        p = super().predict(target)[self.name]
        return {n: p for n in self.result_names()}


@pytest.mark.parametrize("name", DEFENSES)
def test_every_defense_config_runs(cfg_factory, tmp_path, name):
    cfg = cfg_factory([f"defense={name}", *SMALL, *FIT.get(name, [])])
    fake = {"_target_": f"{__name__}.FakeGradAttack", "metric": "loss"}
    OmegaConf.update(cfg, "attack.grad_x", fake, force_add=True)
    res = _run(cfg, tmp_path / "r")
    disk = json.loads((tmp_path / "r" / "results.json").read_text())
    assert disk["defense"]["name"] == res["config"]["defense"]["name"]
    assert set(disk["attacks"]) == {"loss", "nn", "grad_x_l1", "grad_x_l2"}
    blocked = "grad_x" in build_defense(cfg.defense, 10, 128).blocks_signals
    for name_, m in disk["attacks"].items():
        if blocked and name_.startswith("grad_x"):
            assert m["auc"] is None and "grad_x" in m["not_applicable"]
        else:
            assert 0.0 <= m["auc"] <= 1.0 and "not_applicable" not in m
    assert 0.0 <= disk["target"]["test_acc"] <= 1.0
    if blocked:
        assert "not applicable" in (tmp_path / "r" / "summary.md").read_text()
    if name == "dp_sgd":
        assert disk["defense"]["epsilon"] > 0 and disk["defense"]["steps"] > 0
    if name in ("distillation", "dmp"):
        assert {"target.teacher", "shadow0.teacher"} <= set(disk["models"])


def test_memguard_blocks_white_box_signals():
    cfg = OmegaConf.create({"name": "memguard", "_target_": "mia_bench.defenses.memguard.MemGuard"})
    assert {"grad_x", "grad_w"} <= build_defense(cfg, 10, 128).blocks_signals


def test_teacher_comes_from_the_cache_and_does_not_shift_the_student(cfg_factory, tmp_path):
    """dmp trains the teachers; distillation then loads them (cache hits). A student whose
    teacher was loaded equals one whose teacher was trained in the same run (cache off), so
    the teacher's training leaves the student's random stream alone."""
    small = [*(o for o in SMALL if not o.startswith("attack")), "attack=[loss]"]
    _run(cfg_factory(["defense=dmp", *small]), tmp_path / "dmp")
    hit = _run(cfg_factory(["defense=distillation", *small]), tmp_path / "hit")
    assert hit["models"]["target.teacher"]["cache_hit"] and not hit["models"]["target"]["cache_hit"]
    fresh = _run(cfg_factory(["defense=distillation", "cache=false", *small]), tmp_path / "fresh")
    assert not fresh["models"]["target.teacher"]["cache_hit"]
    assert hit["target"] == fresh["target"] and hit["attacks"] == fresh["attacks"]


def test_early_stopping_checkpoints(cfg_factory, tmp_path):
    over = ["defense=early_stopping", "defense.epochs=[1,3]", *SMALL, "trainer.epochs=4"]
    res = _run(cfg_factory(over), tmp_path / "r")
    cps = res["checkpoints"]
    assert list(cps) == ["1", "3"] and cps["1"]["epoch"] == 1
    # the last checkpoint is the final model: the main keys
    assert cps["3"]["target"] == res["target"] and cps["3"]["attacks"] == res["attacks"]
    assert cps["1"]["target"] != cps["3"]["target"]
    assert set(cps["1"]["attacks"]) == {"loss", "nn"}
    # training stopped after epoch 3
    assert len(json.loads((tmp_path / "r" / "results.json").read_text())["checkpoints"]) == 2
    assert "checkpoints (attack AUC per epoch)" in (tmp_path / "r" / "summary.md").read_text()
    # epoch 1 is what a 1-epoch early-stopping run gives as its final model (same schedule)
    one = _run(cfg_factory([*over[:1], "defense.epochs=[1]", *over[2:]]), tmp_path / "one")
    assert one["target"] == cps["1"]["target"] and one["attacks"] == cps["1"]["attacks"]


def test_early_stopping_epochs_past_the_trainer_are_refused(cfg_factory):
    cfg = cfg_factory(["defense=early_stopping", "defense.epochs=[5,50]", "trainer.epochs=10"])
    with pytest.raises(ConfigError) as err:
        pipeline.Experiment(cfg, "unused").prepare()
    assert err.value.key == "defense.epochs"


class ReplacingDefense(Defense):
    """Trains on its own data with its own batches, through a wrapper: the trainer must use all."""

    name = "replacing"

    def __init__(self, x, y):
        super().__init__(2, 2)
        self.data, self.calls, self.seen = (x, y), [], []

    def setup(self, model, optimizer, train_data):
        wrapper = torch.nn.Sequential(model)

        def batches(n, gen):
            self.calls.append(n)
            return [torch.arange(n)]

        return TrainingParts(model=wrapper, data=self.data, batches=batches)

    def loss(self, logits, targets, *, epoch, features=None):
        self.seen.append(targets.clone())
        return torch.nn.functional.cross_entropy(logits, targets)


def test_trainer_uses_what_setup_returns_and_keeps_snapshots():
    cfg = OmegaConf.create(
        {
            "epochs": 5,
            "batch_size": 2,
            "lr": 0.1,
            "momentum": 0.0,
            "weight_decay": 0.0,
            "milestones": [9],
            "gamma": 0.1,
        }
    )
    x_own, y_own = torch.randn(3, 2), torch.tensor([1, 1, 0])
    d = ReplacingDefense(x_own, y_own)
    model = torch.nn.Linear(2, 2)
    log = train_model(
        model,
        d,
        torch.randn(10, 2),
        torch.zeros(10, dtype=torch.long),
        cfg,
        preprocess=Preprocess("tabular"),
        seed=0,
        device=torch.device("cpu"),
        progress=False,
        snapshot_epochs=[1, 3],
    )
    assert d.calls == [3, 3, 3]  # stopped after epoch 3; 3 samples of its own data
    assert all(torch.equal(t, y_own) for t in d.seen)
    assert len(log.epoch_loss) == 3 and sorted(log.snapshots) == [1, 3]
    final = model.state_dict()
    assert all(torch.equal(final[k], log.snapshots[3][k]) for k in final)
    assert not torch.equal(final["weight"], log.snapshots[1]["weight"])


def test_dp_sgd_on_cnn_states_groupnorm_in_results(cfg_factory, tmp_path):
    over = [
        "dataset=digits",
        "model=small_cnn",
        "model.channels=[8,16]",
        "defense=dp_sgd",
        "trainer.epochs=1",
        "attack=[loss]",
    ]
    res = _run(cfg_factory(over), tmp_path / "r")
    assert any("GroupNorm" in r for r in res["defense"]["replaced_modules"])
    assert math.isfinite(res["defense"]["epsilon"])
    assert np.isfinite(res["attacks"]["loss"]["auc"])


def test_memguard_budget_sweep_trains_the_target_once(cfg_factory, tmp_path):
    over = ["defense=memguard", *SMALL, "attack=[loss]", *FIT["memguard"]]
    over = [o for o in over if not o.startswith("attack.nn")]
    a = _run(cfg_factory([*over, "defense.budget=0"]), tmp_path / "a")
    b = _run(cfg_factory([*over, "defense.budget=2.0"]), tmp_path / "b")
    assert not a["models"]["target"]["cache_hit"] and b["models"]["target"]["cache_hit"]
    # same trained model, same labels; a larger budget moves answers, so the loss AUC changes
    assert a["target"]["test_acc"] == b["target"]["test_acc"]
    assert a["attacks"]["loss"]["auc"] != b["attacks"]["loss"]["auc"]


@pytest.mark.parametrize("name", ["early_stopping", "dmp", "label_smoothing"])
def test_stacked_shadows_keep_the_defense_hooks(cfg_factory, tmp_path, name):
    """With `trainer.stack`, defenses that need the per-model hooks (snapshots, teachers) are
    trained one by one; the others go through the stacked group; all give results."""
    over = [f"defense={name}", *SMALL, "attack=[loss]", "shadow.count=2", "trainer.stack=2"]
    over = [o for o in over if not o.startswith("attack.nn")] + FIT.get(name, [])
    res = _run(cfg_factory(over), tmp_path / "r")
    assert {"shadow0", "shadow1"} <= set(res["models"])
    if name == "early_stopping":
        assert list(res["checkpoints"]) == ["1", "2"]
    if name == "dmp":
        assert {"shadow0.teacher", "shadow1.teacher"} <= set(res["models"])
