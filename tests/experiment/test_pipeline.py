import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mia_bench.config import validate
from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline


def _run(cfg, out):
    validate(cfg)
    return pipeline.run(cfg, out)


def test_default_pipeline_writes_results_and_leaks(cfg_factory, tmp_path):
    cfg = cfg_factory()
    res = _run(cfg, tmp_path / "run")
    out = tmp_path / "run"
    for f in ["results.json", "scores.npz", "split.npz", "summary.md"]:
        assert (out / f).exists(), f
    disk = json.loads((out / "results.json").read_text())
    assert set(disk["attacks"]) == {"loss", "confidence", "entropy", "m_entropy", "nn"}
    assert 0 <= disk["target"]["test_acc"] <= disk["target"]["train_acc"] <= 1
    assert disk["shadow"] == {"defense": "same", "count": 1, "adaptive": True}
    # an overfit target leaks: the loss attack beats chance clearly
    assert disk["attacks"]["loss"]["auc"] > 0.6
    # AUCs in results.json agree with sklearn on the saved scores
    z = np.load(out / "scores.npz")
    for name, m in disk["attacks"].items():
        assert m["auc"] == pytest.approx(roc_auc_score(z["member"], z[name]), abs=1e-9)
    assert res["models"]["target"]["cache_hit"] is False


def test_same_seed_same_metrics_and_cache_hit(cfg_factory, tmp_path):
    a = _run(cfg_factory(), tmp_path / "a")
    b = _run(cfg_factory(), tmp_path / "b")  # same cache dir: models come from the cache
    assert a["attacks"] == b["attacks"] and a["target"] == b["target"]
    assert b["models"]["target"]["cache_hit"] and b["models"]["shadow0"]["cache_hit"]


def test_same_seed_same_metrics_without_cache(cfg_factory, tmp_path):
    a = _run(cfg_factory(["cache=false"]), tmp_path / "a")
    b = _run(cfg_factory(["cache=false"]), tmp_path / "b")
    assert a["attacks"] == b["attacks"] and a["target"] == b["target"]


def test_other_seed_other_split(cfg_factory, tmp_path):
    a = _run(cfg_factory(["seed=1"]), tmp_path / "a")
    b = _run(cfg_factory(["seed=2"]), tmp_path / "b")
    assert a["attacks"]["loss"] != b["attacks"]["loss"]


def test_shadow_without_defense_is_recorded(cfg_factory, tmp_path):
    res = _run(cfg_factory(["shadow.defense=none", "attack=[loss]"]), tmp_path / "r")
    assert res["shadow"]["adaptive"] is False and list(res["attacks"]) == ["loss"]


def test_digits_with_cnn(cfg_factory, tmp_path):
    res = _run(
        cfg_factory(["dataset=digits", "model=small_cnn", "trainer.epochs=2", "attack=[loss,nn]"]),
        tmp_path / "r",
    )
    assert res["target"]["n_members"] == 1797 // 5


@pytest.mark.parametrize(
    "override,key",
    [
        ("trainer.epochs=0", "trainer.epochs"),
        ("trainer.lr=-1", "trainer.lr"),
        ("shadow.defense=maybe", "shadow.defense"),
        ("shadow.count=0", "shadow.count"),
        ("split.max_samples=9", "split.max_samples"),
    ],
)
def test_bad_values_name_the_setting(cfg_factory, override, key):
    cfg = cfg_factory([override])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
        pipeline.Experiment(cfg, "unused").prepare()
    assert err.value.key == key
