"""The report's audit part: tables from results.json, the vulnerable-samples table and image
grid, and the usual plots ignoring canaries."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mia_bench.config import validate
from mia_bench.experiment import run as pipeline
from mia_bench.report import cli as report
from mia_bench.report.plots import load_scores


@pytest.fixture
def digits_audit(cfg_factory, tmp_path):
    cfg = cfg_factory(
        [
            "dataset=digits",
            "model=small_cnn",
            "attack=[loss]",
            "audit=canaries",
            "audit.num_canaries=100",
            "trainer.epochs=6",
            "trainer.milestones=[5]",
        ]
    )
    validate(cfg)
    out = tmp_path / "sweep" / "0"
    return pipeline.run(cfg, out), out


def test_report_writes_audit_tables_and_image_grid(digits_audit, tmp_path):
    res, run = digits_audit
    assert report.main([str(tmp_path / "sweep"), "--no-pdf"]) == 0
    out = tmp_path / "sweep"
    rows = list(csv.DictReader((out / "audit.csv").open()))
    assert len(rows) == 1
    audit = res["audit"]
    assert rows[0]["attack"] == "loss"
    assert float(rows[0]["canary_auc"]) == pytest.approx(audit["canaries"]["loss"]["auc"])
    assert float(rows[0]["eps_one_run"]) == pytest.approx(
        audit["epsilon_lower_bound"]["loss"]["one_run"]["epsilon"]
    )
    assert float(rows[0]["population_auc"]) == pytest.approx(res["attacks"]["loss"]["auc"])
    assert "| digits | small_cnn | none |" in (out / "audit.md").read_text()
    assert (out / "audit_privacy_utility.png").exists()
    assert not (out / "audit_epsilon.png").exists()  # no DP-SGD run, no accountant
    assert list(out.glob("vulnerable_0_*.png"))
    # the vulnerable table: members with the highest scores, in order, as saved with the run
    v = np.load(run / "vulnerable.npz")
    z = np.load(run / "scores.npz")
    member = z["member"].astype(bool)
    assert len(v["index"]) == 32 and v["x"].shape[1:] == (1, 8, 8)
    assert np.array_equal(v["score"], np.sort(z["loss"][member])[::-1][:32])
    table = (out / "vulnerable.md").read_text()
    assert f"| 1 | {int(v['index'][0])} | {int(v['label'][0])} |" in table


def test_usual_plots_read_the_usual_queries_only(digits_audit):
    res, run = digits_audit
    s = load_scores(run / "scores.npz")
    assert "canary" not in s
    n = res["target"]["n_members"] + res["target"]["n_nonmembers"]
    assert len(s["member"]) == len(s["loss"]) == len(s["target_loss"]) == n
    assert json.loads((run / "results.json").read_text())["audit"]["num_canaries"] == 100


def _row(defense, acc, eps=None, seed=0):
    return {
        "dataset": "d",
        "model": "m",
        "defense": defense,
        "shadow_defense": "same",
        "seed": seed,
        "test_acc": acc,
        "eps_theory": eps,
    }


def test_matched_dp_sgd_is_the_most_private_setting_within_the_gap():
    from mia_bench.report.audit import audit_tables, matched_dp_sgd

    rows = [
        _row("none", 0.80),
        _row("none", 0.70, seed=1),  # mean 0.75
        _row("dp_sgd (noise_multiplier=0.5)", 0.74, 8.0),
        _row("dp_sgd (noise_multiplier=1.0)", 0.71, 3.0),  # within 0.05, smallest epsilon
        _row("dp_sgd (noise_multiplier=2.0)", 0.69, 1.0),  # 0.06 below: out
        _row("relaxloss", 0.75),
    ]
    got = matched_dp_sgd(rows, gap=0.05)
    assert got == {("d", "m", "same"): ("d", "m", "dp_sgd (noise_multiplier=1.0)", "same")}
    assert matched_dp_sgd(rows, gap=0.001) == {}
    md = audit_tables(rows)[1]
    first = md.splitlines()[2]
    assert "DP-SGD at matched utility**: dp_sgd (noise_multiplier=1.0)" in first
