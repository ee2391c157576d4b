"""Early stopping's checkpoints in the report: one row, and one curve point, per checkpoint."""

from __future__ import annotations

import json

from test_report import write_run

from mia_bench.report.aggregate import collect
from mia_bench.report.privacy_utility import curves


def _with_checkpoints(folder, seed: int) -> None:
    write_run(
        folder,
        seed=seed,
        test_acc=0.68,
        aucs={"loss": 0.80},
        defense="early_stopping",
        params={"epochs": [10, 20]},
    )
    res = json.loads((folder / "results.json").read_text())
    res["checkpoints"] = {
        "10": {
            "epoch": 10,
            "target": {"train_acc": 0.8, "test_acc": 0.60 + seed / 100},
            "attacks": {"loss": {"auc": 0.60, "acc": 0.55}},
        },
        "20": {
            "epoch": 20,
            "target": {"train_acc": 1.0, "test_acc": 0.68},
            "attacks": {"loss": {"auc": 0.80, "acc": 0.70}},
        },
    }
    (folder / "results.json").write_text(json.dumps(res))


def test_each_checkpoint_is_a_setting_of_its_own(tmp_path):
    for seed in (0, 1):
        _with_checkpoints(tmp_path / f"es{seed}", seed)
    write_run(tmp_path / "none", seed=0, test_acc=0.69, aucs={"loss": 0.81})
    c = collect([tmp_path])
    es = [g for g in c.groups if g.defense == "early_stopping"]
    assert [g.params["epoch"] for g in es] == [10, 20]
    assert "epochs" not in es[0].params  # the list gives way to the checkpoint's epoch
    assert es[0].approach == "early_stopping (epoch=10)"
    assert es[0].n == 2 and abs(es[0].mean("test_acc") - 0.605) < 1e-12  # (0.60 + 0.61) / 2
    assert es[0].mean("loss.auc") == 0.60 and es[1].mean("loss.auc") == 0.80
    # Only the final model has a scores.npz: the earlier checkpoint points elsewhere.
    assert es[1].first_run().path == tmp_path / "es0"
    assert es[0].first_run().path == tmp_path / "es0" / "checkpoint-10"
    (curve,) = [cv for cv in curves(c.groups, c.settings) if cv.defense == "early_stopping"]
    assert curve.swept == "defense.epoch" and len(curve.points) == 2
