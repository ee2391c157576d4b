import numpy as np
import pytest

from mia_bench.attacks.threshold import METRICS, ThresholdAttack
from mia_bench.signals.compute import Signals


def _sig(probs, labels, member=None):
    probs = np.asarray(probs, dtype=np.float64)
    member = np.zeros(len(labels), bool) if member is None else np.asarray(member, bool)
    return Signals(np.log(probs).astype(np.float32), np.asarray(labels), member)


def test_metric_scores_by_hand():
    s = _sig([[0.7, 0.2, 0.1]], [0])
    p = np.array([0.7, 0.2, 0.1])
    assert METRICS["loss"](s)[0] == pytest.approx(np.log(0.7), rel=1e-5)
    assert METRICS["confidence"](s)[0] == pytest.approx(0.7, rel=1e-5)
    assert METRICS["entropy"](s)[0] == pytest.approx((p * np.log(p)).sum(), rel=1e-5)
    # Mentr = -(1-0.7) log 0.7 - 0.2 log 0.8 - 0.1 log 0.9
    mentr = -0.3 * np.log(0.7) - 0.2 * np.log(0.8) - 0.1 * np.log(0.9)
    assert METRICS["m_entropy"](s)[0] == pytest.approx(-mentr, rel=1e-5)


def test_m_entropy_penalises_wrong_confident_prediction():
    # Plain entropy cannot tell a confident right answer from a confident wrong one;
    # modified entropy can (Song & Mittal 2021).
    right = _sig([[0.98, 0.01, 0.01]], [0])
    wrong = _sig([[0.98, 0.01, 0.01]], [1])
    assert METRICS["entropy"](right)[0] == pytest.approx(METRICS["entropy"](wrong)[0])
    assert METRICS["m_entropy"](right)[0] > METRICS["m_entropy"](wrong)[0]


def test_per_class_thresholds_differ_from_global():
    # Class 0 members have confidence 0.9 vs non-members 0.8; class 1: 0.5 vs 0.4.
    # One global threshold cannot separate both classes; per-class thresholds can.
    probs, labels, member = [], [], []
    for c, (hi, lo) in enumerate([(0.9, 0.8), (0.5, 0.4)]):
        for conf, m in [(hi, 1), (lo, 0)]:
            for _ in range(10):
                row = np.full(2, 1 - conf)
                row[c] = conf
                probs.append(row)
                labels.append(c)
                member.append(m)
    shadow = _sig(probs, labels, member)
    per_class = ThresholdAttack("confidence", "per_class")
    per_class.name = "confidence"
    per_class.fit([shadow])
    glob = ThresholdAttack("confidence", "global")
    glob.name = "confidence"
    glob.fit([shadow])
    assert (per_class.predict(shadow)["confidence"] == shadow.member).all()
    assert (glob.predict(shadow)["confidence"] != shadow.member).any()
