"""Attack strength vs number of reference models: the nested design reuses model i in every
job with more than i models, and the report draws the curve."""

import numpy as np
import pytest

from mia_bench.config import validate
from mia_bench.data.population import nested_keep_matrix
from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline
from mia_bench.report import cli as report

pytestmark = pytest.mark.usefixtures("one_thread")


def test_nested_keep_is_balanced_and_its_rows_do_not_depend_on_the_count():
    k8 = nested_keep_matrix(101, 8, seed=3)
    assert (k8.sum(0) == 4).all()  # every sample IN for half the models
    assert set(k8.sum(1)) == {50, 51}
    for m in (2, 4, 6):
        assert np.array_equal(nested_keep_matrix(101, m, seed=3), k8[:m])
    assert np.array_equal(k8[1], ~k8[0])
    assert not np.array_equal(nested_keep_matrix(101, 2, seed=4), k8[:2])


def test_a_count_sweep_reuses_reference_models_and_the_report_draws_the_curve(
    cfg_factory, tmp_path, capsys
):
    runs = {}
    for m in (2, 4):
        cfg = cfg_factory(
            [
                "attack=[lira,rmia]",
                "attack.lira.design=nested",
                f"attack.lira.num_models={m}",
                "dataset.n_samples=600",
                "trainer.epochs=2",
                "trainer.milestones=[1]",
            ]
        )
        validate(cfg)
        runs[m] = pipeline.run(cfg, tmp_path / "sweep" / str(m))
    models = runs[4]["models"]
    assert models["reference0"]["cache_hit"] and models["reference1"]["cache_hit"]
    assert not models["reference2"]["cache_hit"] and not models["reference3"]["cache_hit"]
    assert report.main([str(tmp_path / "sweep"), "--no-pdf"]) == 0
    assert (tmp_path / "sweep" / "reference_models.png").exists()


def test_lira_and_rmia_must_share_one_design(cfg_factory, tmp_path):
    cfg = cfg_factory(
        ["attack=[lira,rmia]", "attack.lira.design=nested", "attack.rmia.design=balanced"]
    )
    exp = pipeline.Experiment(cfg, tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        exp.prepare()
    assert err.value.key == "attack.rmia.design"
