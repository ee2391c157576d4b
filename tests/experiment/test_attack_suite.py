"""The attack suite end to end: white-box and reference-model attacks through the pipeline,
signals computed by need, several shadows pooled, metrics agreeing with sklearn."""

import json

import numpy as np
import pytest
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

import mia_bench.signals.compute as signals_mod
from mia_bench.attacks.threshold import ThresholdAttack
from mia_bench.config import validate
from mia_bench.defenses.none import NoDefense
from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline
from mia_bench.experiment.models import Models

ALL = "attack=[loss,confidence,entropy,m_entropy,nn,grad_x,grad_w,lira,rmia]"
RESULTS = {
    "loss",
    "confidence",
    "entropy",
    "m_entropy",
    "nn",
    "grad_x_l1",
    "grad_x_l2",
    "grad_w_l1",
    "grad_w_l2",
    "lira_online",
    "lira_offline",
    "rmia",
}


def _run(cfg, out):
    validate(cfg)
    return pipeline.run(cfg, out)


def _sizes(run_dir):
    """(target queries, shadow-0 queries, population) from the run's split.npz."""
    with np.load(run_dir / "split.npz") as z:
        target = len(z["target_train"]) + len(z["target_test"])
        shadow = len(z["shadow0_train"]) + len(z["shadow0_test"])
        parts = [z[k] for k in z.files if k != "reference"]
    return target, shadow, len(np.unique(np.concatenate(parts)))


def _tpr_at(member, scores, level):
    """Independent: sklearn's ROC with every threshold kept."""
    fpr, tpr, _ = roc_curve(member, scores, drop_intermediate=False)
    return float(tpr[fpr <= level + 1e-12].max())


def test_every_attack_end_to_end_agrees_with_sklearn(cfg_factory, tmp_path):
    res = _run(cfg_factory([ALL, "attack.lira.num_models=4"]), tmp_path / "r")
    disk = json.loads((tmp_path / "r" / "results.json").read_text())
    assert set(disk["attacks"]) == RESULTS
    z = np.load(tmp_path / "r" / "scores.npz")
    n_neg = int((~z["member"]).sum())
    for name, m in disk["attacks"].items():
        assert m["auc"] == pytest.approx(roc_auc_score(z["member"], z[name]), abs=1e-9), name
        assert m["tpr_at_1%fpr"] == pytest.approx(_tpr_at(z["member"], z[name], 0.01), abs=1e-12), (
            name
        )
        # fewer than 1000 non-members cannot resolve 0.1% FPR
        assert n_neg < 1000 and m["tpr_at_0.1%fpr"] is None
        assert 0 <= m["acc"] <= 1
    n_pop = _sizes(tmp_path / "r")[2]
    assert res["reference"] == {"num_models": 4, "population": n_pop, "defense": "same"}
    assert {f"reference{i}" for i in range(4)} <= set(res["models"])
    with np.load(tmp_path / "r" / "reference.npz") as ref:
        assert ref["keep"].shape == (4, n_pop) and (ref["keep"].sum(0) == 2).all()
    # an overfit target leaks to the white-box and reference attacks too
    for name in ("grad_w_l2", "lira_online", "rmia"):
        assert disk["attacks"][name]["auc"] > 0.6, name


def test_signals_only_when_needed_and_once_per_model(cfg_factory, tmp_path, monkeypatch):
    calls = []

    def counting(model, x, y, wrt, **kw):
        calls.append((id(model), wrt, len(x)))
        return real(model, x, y, wrt, **kw)

    real = signals_mod.per_sample_grad_norms
    monkeypatch.setattr(signals_mod, "per_sample_grad_norms", counting)
    res = _run(cfg_factory(["attack=[loss]"]), tmp_path / "a")
    assert calls == [] and res["reference"] is None
    assert set(res["models"]) == {"target", "shadow0"}  # no reference models trained

    _run(cfg_factory(["attack=[grad_x,grad_w]"]), tmp_path / "b")
    n_target, n_shadow, _ = _sizes(tmp_path / "b")
    # one call per (model, signal), each on all of that model's queries
    assert sorted((wrt, n) for _, wrt, n in calls) == sorted(
        [("inputs", n_target), ("inputs", n_shadow), ("params", n_target), ("params", n_shadow)]
    )
    assert len({m for m, _, _ in calls}) == 2


class GradBlockingDefense(NoDefense):
    """Stands in for a test-time defense (MemGuard) whose outputs have no gradients to give."""

    name = "blocking"
    blocks_signals = frozenset({"grad_w"})


def test_defense_that_blocks_gradients_makes_grad_attacks_not_applicable(
    cfg_factory, tmp_path, monkeypatch
):
    calls = []
    real = signals_mod.per_sample_grad_norms

    def counting(*args, **kw):
        calls.append(args[3])
        return real(*args, **kw)

    monkeypatch.setattr(signals_mod, "per_sample_grad_norms", counting)
    cfg = cfg_factory(["attack=[loss,grad_x,grad_w]"])
    cfg.defense = {"name": "blocking", "_target_": f"{__name__}.GradBlockingDefense"}
    res = _run(cfg, tmp_path / "r")
    for name in ("grad_w_l1", "grad_w_l2"):
        assert (
            res["attacks"][name]["auc"] is None
            and "grad_w" in res["attacks"][name]["not_applicable"]
        )
    assert res["attacks"]["grad_x_l2"]["auc"] > 0.5 and res["attacks"]["loss"]["auc"] > 0.5
    # the blocked signal is never computed; the other one is, for the target and the shadow
    assert sorted(calls) == ["inputs", "inputs"]


class HalfCE(NoDefense):
    """A different training objective, to tell which models were trained with the defense."""

    name = "half_ce"

    def loss(self, logits, targets, *, epoch, features=None):
        return 0.5 * F.cross_entropy(logits, targets)


@pytest.mark.parametrize("shadow_defense,expected", [("same", "half_ce"), ("none", "none")])
def test_reference_models_follow_the_shadow_defense(
    cfg_factory, tmp_path, monkeypatch, shadow_defense, expected
):
    cfg = cfg_factory(
        ["attack=[lira]", "attack.lira.num_models=2", f"shadow.defense={shadow_defense}"]
    )
    cfg.defense = {"name": "half_ce", "_target_": f"{__name__}.HalfCE"}
    seen = {}
    real = Models.train

    def spy(self, role, defense_cfg, train_idx, test_idx):
        seen[role] = defense_cfg.name
        return real(self, role, defense_cfg, train_idx, test_idx)

    monkeypatch.setattr(Models, "train", spy)
    _run(cfg, tmp_path / "r")
    assert seen["target"] == "half_ce"
    assert seen["reference0"] == seen["reference1"] == seen["shadow0"] == expected


def test_early_stopping_checkpoints_rewind_the_reference_models(cfg_factory, tmp_path):
    """With a defense that keeps snapshots, every checkpoint is attacked with reference models
    of the same epoch (trained with the same defense), as the shadows are."""
    over = ["defense=early_stopping", "defense.epochs=[2,8]", "attack=[loss,lira]"]
    res = _run(cfg_factory([*over, "attack.lira.num_models=2"]), tmp_path / "r")
    early, final = res["checkpoints"]["2"]["attacks"], res["checkpoints"]["8"]["attacks"]
    assert final == res["attacks"]
    assert early["lira_online"]["auc"] != final["lira_online"]["auc"]
    # recomputing the early checkpoint by hand: every model at epoch 2 gives the same numbers
    short = [
        "defense=early_stopping",
        "defense.epochs=[2]",
        "trainer.epochs=2",
        "attack=[loss,lira]",
    ]
    alone = _run(cfg_factory([*short, "attack.lira.num_models=2", "cache=false"]), tmp_path / "s")
    assert alone["attacks"]["lira_online"] == early["lira_online"]


def test_reference_models_are_cached_and_shared(cfg_factory, tmp_path):
    a = _run(cfg_factory(["attack=[lira,rmia]", "attack.lira.num_models=2"]), tmp_path / "a")
    assert not a["models"]["reference0"]["cache_hit"]
    # rmia alone, same count: the very same reference models, from the cache
    b = _run(cfg_factory(["attack=[rmia]", "attack.rmia.num_models=2"]), tmp_path / "b")
    assert b["models"]["reference0"]["cache_hit"] and b["models"]["reference1"]["cache_hit"]
    assert b["attacks"]["rmia"] == a["attacks"]["rmia"]


def test_reference_model_counts_must_agree(cfg_factory):
    cfg = cfg_factory(
        ["attack=[lira,rmia]", "attack.lira.num_models=4", "attack.rmia.num_models=6"]
    )
    with pytest.raises(ConfigError) as err:
        pipeline.Experiment(cfg, "unused").prepare()
    assert err.value.key == "attack.rmia.num_models"
    # by default rmia follows lira's count
    cfg = cfg_factory(["attack=[lira,rmia]", "attack.lira.num_models=6"])
    assert cfg.attack.rmia.num_models == 6


@pytest.mark.parametrize(
    "override,key",
    [
        ("attack.lira.num_models=3", "attack.lira.num_models"),
        ("attack.lira.variance=median", "attack.lira.variance"),
        ("attack.rmia.a=2", "attack.rmia.a"),
        ("attack.grad_w.signal=grad_q", "attack.grad_w.signal"),
    ],
)
def test_bad_attack_settings_name_the_key(cfg_factory, override, key):
    cfg = cfg_factory(["attack=[lira,rmia,grad_w]", override])
    with pytest.raises(ConfigError) as err:
        pipeline.Experiment(cfg, "unused").prepare()
    assert err.value.key == key


def test_three_shadows_are_pooled(cfg_factory, tmp_path, monkeypatch):
    seen = []
    real = ThresholdAttack.fit

    def spy(self, shadow):
        seen.append([(len(s), int(s.member.sum())) for s in shadow])
        return real(self, shadow)

    monkeypatch.setattr(ThresholdAttack, "fit", spy)
    res = _run(
        cfg_factory(["shadow.count=3", "attack=[loss,nn,grad_x,lira]", "attack.lira.num_models=2"]),
        tmp_path / "r",
    )
    assert res["shadow"]["count"] == 3
    assert {"shadow0", "shadow1", "shadow2"} <= set(res["models"])
    # each shadow trains on a random half of the shadow pool; the loss attack fits its
    # thresholds on all three shadows' signals
    _, pool, n_pop = _sizes(tmp_path / "r")
    assert seen == [[(pool, pool // 2)] * 3]
    assert set(res["attacks"]) == {
        "loss",
        "nn",
        "grad_x_l1",
        "grad_x_l2",
        "lira_online",
        "lira_offline",
    }
    # the reference population is the target's queries and the shadow pool
    assert res["reference"]["population"] == n_pop == _sizes(tmp_path / "r")[0] + pool


def test_reference_models_can_be_trained_stacked(cfg_factory, tmp_path, monkeypatch):
    """Every reference model trains on exactly half the population, so a group of them
    stacks (equal training-set sizes) instead of falling back to one after another."""
    import mia_bench.train.stacked as stacked

    reasons = []
    real = stacked.unstackable_reason

    def spy(models, defenses, datasets):
        reasons.append((len(models), real(models, defenses, datasets)))
        return reasons[-1][1]

    monkeypatch.setattr(stacked, "unstackable_reason", spy)
    _run(
        cfg_factory(["attack=[lira]", "attack.lira.num_models=2", "trainer.stack=2"]),
        tmp_path / "r",
    )
    assert (2, None) in reasons
