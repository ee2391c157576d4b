"""Every attack config in conf/attack runs end to end alone and yields its result names with
metrics in range (as timm tests every registered model)."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mia_bench.config import validate
from mia_bench.experiment import run as pipeline

ATTACKS = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "attack").glob("*.yaml")
)
RESULTS = {
    "grad_x": ["grad_x_l1", "grad_x_l2"],
    "grad_w": ["grad_w_l1", "grad_w_l2"],
    "lira": ["lira_online", "lira_offline"],
}
# Reference-model attacks get 4 models here to stay fast.
EXTRA = {"lira": ["attack.lira.num_models=4"], "rmia": ["attack.rmia.num_models=4"]}


@pytest.mark.parametrize("name", ATTACKS)
def test_every_attack_config_runs(cfg_factory, tmp_path, name):
    cfg = cfg_factory(
        [f"attack=[{name}]", "dataset.n_samples=800", "trainer.epochs=4", *EXTRA.get(name, [])]
    )
    validate(cfg)
    res = pipeline.run(cfg, tmp_path / "run")
    expected = RESULTS.get(name, [name])
    assert sorted(res["attacks"]) == sorted(expected)
    scores = np.load(tmp_path / "run" / "scores.npz")
    for result in expected:
        m = res["attacks"][result]
        assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["acc"] <= 1.0
        assert m["auc"] == pytest.approx(roc_auc_score(scores["member"], scores[result]), abs=1e-9)
