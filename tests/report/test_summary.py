"""The table printed at the end of a run: numbers for people, n/a explained, every digit kept
in results.json."""

from __future__ import annotations

from mia_bench.experiment.summary import format_summary


def _results(**attack) -> dict:
    metrics = {
        "auc": 0.81234,
        "auc_ci95": [0.79, 0.83],
        "acc": 0.75,
        "tpr_at_0.1%fpr": None,
        "tpr_at_1%fpr": 0.05,
        "advantage": 0.5,
        **attack,
    }
    return {
        "config": {"dataset": {"name": "synthetic"}, "model": {"name": "mlp"}, "seed": 0},
        "target": {"train_acc": 1.0, "test_acc": 0.7, "n_members": 400, "n_nonmembers": 400},
        "defense": {"name": "dp_sgd", "noise_multiplier": 1.1, "epsilon": 17.943263642638655},
        "shadow": {"defense": "same", "count": 1, "adaptive": True},
        "attacks": {"loss": metrics},
    }


def test_epsilon_is_rounded_for_people():
    text = format_summary(_results())
    assert "epsilon=17.94" in text and "17.943263642638655" not in text
    assert "noise_multiplier=1.1" in text


def test_auc_interval_and_unresolved_numbers_say_why():
    text = format_summary(_results())
    assert "| loss | 0.812 | 0.790-0.830 | 0.750 | n/a | 0.050 | 0.500 |" in text
    assert "n/a: not resolvable with 400 members / 400 non-members" in text
    text = format_summary(_results(**{"tpr_at_0.1%fpr": 0.01}))
    assert "n/a" not in text
