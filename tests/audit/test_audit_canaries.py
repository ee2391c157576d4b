"""Canary audit (audit=canaries): planting, keep rows, the membership game on canaries, results
and the cache key."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mia_bench.audit.canaries import plant
from mia_bench.config import validate
from mia_bench.data.base import TensorData
from mia_bench.data.population import population_indices
from mia_bench.data.splits import relaxloss_split
from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline
from mia_bench.metrics import attack_metrics

SETTINGS = {"num_canaries": 40, "kind": "mislabel", "copies": 1, "delta": 1e-5, "alpha": 0.05}
AUDIT = ["audit=canaries", "audit.num_canaries=60"]


def _run(cfg, out):
    validate(cfg)
    return pipeline.run(cfg, out)


def _data(kind="tabular", n=1000, k=10):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=g)
    if kind == "tabular":
        x = torch.randn(n, 8, generator=g)
    return TensorData("toy", x, torch.randint(0, k, (n,), generator=g), k, kind)


def test_plant_mislabels_and_takes_canaries_out_of_every_set():
    data = _data()
    split = relaxloss_split(len(data), "tabular", seed=0)
    pop = population_indices(split)
    planted, clean, can = plant(data, split, pop, SETTINGS, seed=3)
    assert len(can.index) == 40 and np.isin(can.index, pop).all()
    # a wrong label for every canary, nothing else touched
    assert (planted.y[can.index] != data.y[can.index]).all()
    rest = np.setdiff1d(np.arange(len(data)), can.index)
    assert torch.equal(planted.y[rest], data.y[rest]) and planted.x is data.x
    for name, a in clean.as_arrays().items():
        assert not np.isin(a, can.index).any(), name
    # what is left of every set is the old set minus the canaries
    assert (
        len(clean.target_train)
        + len(clean.target_test)
        + sum(len(tr) + len(te) for tr, te in clean.shadows)
        == len(pop) - 40
    )


def test_keep_rows_are_fair_coins_reproducible_and_reference_rows_balanced():
    data = _data(n=5000)
    split = relaxloss_split(len(data), "tabular", seed=0)
    settings = {**SETTINGS, "num_canaries": 400}
    _, _, can = plant(data, split, population_indices(split), settings, seed=1)
    row = can.keep_row("target")
    assert 150 < row.sum() < 250  # Bin(400, 1/2): mean 200, sd 10
    _, _, again = plant(data, split, population_indices(split), settings, seed=1)
    assert np.array_equal(again.keep_row("target"), row)
    assert not np.array_equal(can.keep_row("shadow0"), row)
    rows = can.reference_rows(8)
    assert (rows.sum(0) == 4).all()  # every canary IN for exactly half the reference models
    assert np.array_equal(can.keep_row("reference3"), rows[3])
    # a model trains on its kept canaries, `copies` times each; a set holding canaries is kept
    base = np.array([0, 1, 2])
    fit = can.training_indices("target", base)
    assert np.array_equal(np.sort(fit[3:]), can.index[row])
    assert np.array_equal(can.training_indices("target.teacher", fit), fit)


def test_duplicate_and_ood_noise():
    data = _data(kind="image")
    split = relaxloss_split(len(data), "image", seed=0)
    pop = population_indices(split)
    planted, _, can = plant(data, split, pop, {**SETTINGS, "kind": "ood_noise"}, seed=0)
    assert not torch.equal(planted.x[can.index], data.x[can.index])
    assert "inputs" in can.identity()
    dup = {**SETTINGS, "kind": "duplicate", "copies": 3}
    planted, _, can = plant(data, split, pop, dup, seed=0)
    assert torch.equal(planted.y, data.y)
    fit = can.training_indices("shadow0", np.zeros(0, np.int64))
    assert len(fit) == 3 * can.keep_row("shadow0").sum()
    with pytest.raises(ConfigError) as err:
        plant(
            _data(), relaxloss_split(1000, "tabular", 0), pop, {**SETTINGS, "kind": "ood_noise"}, 0
        )
    assert err.value.key == "audit.kind"


@pytest.mark.parametrize(
    "override,key",
    [
        ("audit.kind=flip", "audit.kind"),
        ("audit.num_canaries=3", "audit.num_canaries"),
        ("audit.num_canaries=5000", "audit.num_canaries"),
        ("audit.alpha=0", "audit.alpha"),
        ("trainer.stack=2", "trainer.stack"),
    ],
)
def test_bad_audit_settings_name_the_setting(cfg_factory, override, key):
    cfg = cfg_factory(["audit=canaries", override])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
        pipeline.Experiment(cfg, "unused").prepare()
    assert err.value.key == key


def test_audit_none_adds_nothing(cfg_factory, tmp_path):
    cfg = cfg_factory(["attack=[loss]"])
    assert cfg.audit is None
    res = _run(cfg, tmp_path / "run")
    assert "audit" not in res
    assert set(np.load(tmp_path / "run" / "scores.npz").files) == {"member", "loss", "target_loss"}
    assert not (tmp_path / "run" / "canaries.npz").exists()


def test_canary_run_scores_canaries_apart_and_keys_the_cache(cfg_factory, tmp_path):
    overrides = [
        "attack=[loss,lira]",
        "attack.lira.num_models=4",
        "trainer.epochs=20",
        "trainer.milestones=[15]",
    ]
    plain = _run(cfg_factory(overrides), tmp_path / "plain")
    res = _run(cfg_factory([*overrides, *AUDIT]), tmp_path / "audit")
    out = tmp_path / "audit"
    # the canaries changed every model's data: nothing came from the plain run's cache
    assert not any(m["cache_hit"] for m in res["models"].values())
    z = np.load(out / "scores.npz")
    canary, member = z["canary"], z["member"]
    assert canary.sum() == 60 and len(canary) == len(member)
    # the usual metrics read the non-canary queries only, which are the plain run's minus
    # the canaries
    for name in ("loss", "lira_online"):
        got = attack_metrics(z[name][~canary], member[~canary], None)["auc"]
        assert res["attacks"][name]["auc"] == pytest.approx(got)
    n_plain = plain["target"]["n_members"] + plain["target"]["n_nonmembers"]
    n_audit = res["target"]["n_members"] + res["target"]["n_nonmembers"]
    assert n_audit == n_plain - int(
        np.isin(
            np.load(tmp_path / "plain" / "split.npz")["target_train"],
            np.load(out / "canaries.npz")["index"],
        ).sum()
        + np.isin(
            np.load(tmp_path / "plain" / "split.npz")["target_test"],
            np.load(out / "canaries.npz")["index"],
        ).sum()
    )
    # canary membership is the target's keep row; canary metrics are computed on it
    c = np.load(out / "canaries.npz")
    roles = list(c["roles"])
    assert {"target", "shadow0", "reference0", "reference3"} <= set(roles)
    assert np.array_equal(member[canary], c["keep"][roles.index("target")])
    audit = json.loads((out / "results.json").read_text())["audit"]
    assert set(audit["canaries"]) == set(res["attacks"])
    for name in ("loss", "lira_online"):
        want = attack_metrics(z[name][canary], member[canary], None)
        assert audit["canaries"][name] == pytest.approx(want)
        assert set(audit["canaries"][name]) == set(res["attacks"][name])
        assert audit["epsilon_lower_bound"][name]["clopper_pearson"]["epsilon"] >= 0
    assert audit["headline"] == "lira_online" and audit["adaptive"] is True
    assert audit["epsilon_theory"] is None
    # the reference models' keep matrix holds the canaries with each one's row
    r = np.load(out / "reference.npz")
    pos = np.searchsorted(r["population"], c["index"])
    assert r["canary"][pos].all() and r["canary"].sum() == 60
    assert np.array_equal(r["keep"][:, pos][0], c["keep"][roles.index("reference0")])
    # a mislabelled canary is memorised: the loss attack separates canaries clearly
    assert audit["canaries"]["loss"]["auc"] > 0.75


def test_label_only_and_quantile_attacks_score_canaries(cfg_factory, tmp_path, one_thread):
    # Label-only attacks query augmented views and quantile regression reads the public fold:
    # the canaries must reach both, or the attack cannot score them.
    cfg = cfg_factory(["attack=[label_gap,label_aug,quantile]", "trainer.epochs=3", *AUDIT])
    res = _run(cfg, tmp_path / "out")
    assert set(res["audit"]["canaries"]) == {"label_gap", "label_aug", "quantile"}
    for metrics in res["audit"]["canaries"].values():
        assert 0.0 <= metrics["auc"] <= 1.0
