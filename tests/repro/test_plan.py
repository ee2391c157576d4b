"""mia_bench.repro.plan: the training volume of a target, counted the way the model cache trains."""

from __future__ import annotations

import json

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mia_bench.repro import plan


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_forward_flops_of_the_default_mlp_by_hand():
    # 40-256-128-10: 2 FLOPs per multiply-add, 40*256 + 256*128 + 128*10 = 44,288 of them.
    mlp = json.dumps(OmegaConf.to_container(_cfg().model))
    assert plan.forward_flops(mlp, (40,), 10) == 2 * (40 * 256 + 256 * 128 + 128 * 10)


def test_non_adaptive_rows_share_the_undefended_shadow():
    vol = plan.Volume()
    exp = "+experiment=relaxloss_purchase100_mlp"
    plan.add_job(vol, _cfg(exp, "defense=none"))
    # Purchase100: 40% of 197,324 = 78,929 samples halved: 39,464 shadow, 39,465 target
    # (RelaxLoss Table 3), 120 epochs each.
    assert len(vol.models) == 2 and vol.sample_epochs == (39464 + 39465) * 120
    plan.add_job(vol, _cfg(exp, "defense=relaxloss"))
    assert vol.jobs == 2 and len(vol.models) == 3  # one new target, the same shadow
    plan.add_job(vol, _cfg(exp, "defense=relaxloss", "shadow.defense=same"))
    assert len(vol.models) == 4  # the adaptive attacker's shadow is a model of its own
    per_sample = 3 * plan.forward_flops(
        json.dumps(OmegaConf.to_container(_cfg(exp).model, resolve=True), sort_keys=True),
        (600,),
        100,
    )
    assert vol.flops == pytest.approx(per_sample * vol.sample_epochs)


def test_early_stopping_trains_to_its_last_checkpoint_and_distillation_adds_a_teacher():
    vol = plan.Volume()
    plan.add_job(vol, _cfg("defense=early_stopping", "defense.epochs=[5,10]", "shadow.count=1"))
    # synthetic default: 2,000 target-train samples for 10 of 60 epochs; the same-defense
    # shadow (2,000 samples) too.
    assert vol.sample_epochs == 2000 * 10 + 2000 * 10
    vol = plan.Volume()
    plan.add_job(vol, _cfg("defense=distillation"))
    assert len(vol.models) == 4  # target, shadow, and a teacher for each


def test_volume_by_setting_and_hours_at_measured_rates(tmp_path):
    vol = plan.Volume()
    exp = "+experiment=relaxloss_purchase100_mlp"
    plan.add_job(vol, _cfg(exp, "defense=none"))
    plan.add_job(vol, _cfg(exp, "defense=relaxloss"))
    # one speed setting (the Purchase MLP at batch 128) holds every model of both jobs
    ((setting, n),) = vol.by_setting.items()
    assert setting.key == "mlp_purchase|600|100|b128"
    assert n == vol.sample_epochs == (39465 + 39464 + 39465) * 120
    # at 1,000 samples per second the volume takes n / 1000 / 3600 hours
    assert vol.hours({setting.key: 1000.0}) == pytest.approx(n / 1000 / 3600)
    assert vol.hours({"other|1|1|b1": 1000.0}) is None  # an unmeasured setting: no guess
    # the settings file round-trips into the rates format the bench writes
    path = tmp_path / "settings.json"
    plan.write_settings(str(path), vol.by_setting)
    (row,) = json.loads(path.read_text())
    assert row["key"] == setting.key and row["shape"] == [600] and row["batch_size"] == 128
    assert row["sample_epochs"] == n and row["model"]["name"] == "mlp_purchase"
    report = tmp_path / "rates.json"
    report.write_text(
        json.dumps({"device": "X", "rates": [{"key": setting.key, "images_per_s": 5}]})
    )
    assert plan.read_rates(str(report)) == ("X", {setting.key: 5.0})


def test_plan_refuses_an_unknown_target(capsys):
    with pytest.raises(SystemExit):
        plan.main(["table-nonexistent"])
    assert "unknown target" in capsys.readouterr().err


def test_a_query_time_sweep_trains_one_model_as_the_cache_does():
    # MemGuard's budget acts after training (Defense.query_time_params): the cache keys every
    # budget to the same target and shadow, so the plan counts them once.
    vol = plan.Volume()
    for budget in ("0", "0.5"):
        plan.add_job(vol, _cfg("defense=memguard", f"defense.budget={budget}", "shadow.count=1"))
    assert vol.jobs == 2 and len(vol.models) == 2


def test_extra_overrides_and_first_seeds_only(monkeypatch):
    from mia_bench.repro.targets import TARGETS, Sweep, Target

    tiny = Target(
        name="tiny",
        title="",
        kind="layout",
        sweeps=(
            Sweep("all", ("dataset=fashion_mnist", "model=small_cnn", "trainer.epochs=6")),
            Sweep("first", ("dataset=fashion_mnist", "trainer.epochs=6"), max_seeds=1),
        ),
    )
    monkeypatch.setitem(TARGETS, "tiny", tiny)
    base = plan.volume("tiny", "0,1,2")
    assert base.jobs == 3 + 1
    # Fashion-MNIST: 70,000 images, five folds of 14,000; target and shadow train on one fold.
    small = plan.volume("tiny", "0,1,2", ["trainer.epochs=3"])
    assert small.sample_epochs * 2 == base.sample_epochs
    assert base.sample_epochs == 4 * 2 * 14000 * 6


def test_selena_adds_its_k_submodels_on_their_share_of_the_data():
    vol = plan.Volume()
    plan.add_job(vol, _cfg("defense=selena", "defense.k=5", "defense.l=2", "shadow.count=1"))
    # target and same-defense shadow (2,000 samples each, 60 epochs), each with 5 sub-models
    # on (5 - 2) / 5 of its 2,000 samples
    assert len(vol.models) == 2 + 2 * 5
    assert vol.sample_epochs == 2 * 2000 * 60 + 2 * 5 * 1200 * 60
