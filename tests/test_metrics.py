import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from mia_bench import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    member = rng.random(500) < 0.4
    scores = np.round(rng.normal(member * 0.7, 1.0), 1)  # rounding makes many ties
    assert metrics.auc(scores, member) == pytest.approx(roc_auc_score(member, scores), abs=1e-12)


def test_roc_points_match_sklearn():
    rng = np.random.default_rng(3)
    member = rng.random(300) < 0.5
    scores = np.round(rng.normal(member, 1.0), 2)
    fpr, tpr, _ = metrics.roc_points(scores, member)
    sk_fpr, sk_tpr, _ = roc_curve(member, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_tpr_at_fpr_hand_example():
    # 4 members scored 10, 9, 0.5, -5; 200 non-members: 9.5, 0.6 and 198 at 0.
    # FPR <= 0.5% allows 1 false positive: best threshold 9 -> TP 2 (10, 9), FP 1 -> TPR 0.5.
    # FPR <= 1% allows 2: threshold 0.5 -> TP 3, FP 2 (9.5, 0.6) -> TPR 0.75.
    member = np.array([1, 1, 1, 1] + [0] * 200, dtype=bool)
    scores = np.array([10, 9, 0.5, -5, 9.5, 0.6] + [0] * 198, dtype=float)
    assert metrics.tpr_at_fpr(scores, member, 0.01) == 0.75
    assert metrics.tpr_at_fpr(scores, member, 0.005) == 0.5
    # 0.1% of 200 non-members is 0.2 of a sample: not resolvable -> undefined
    assert metrics.tpr_at_fpr(scores, member, 0.001) is None


def test_balanced_accuracy_and_advantage_by_hand():
    member = np.array([1, 1, 1, 0, 0], dtype=bool)
    pred = np.array([1, 1, 0, 1, 0], dtype=bool)
    # TPR 2/3, TNR 1/2 -> balanced 7/12; advantage TPR - FPR = 2/3 - 1/2 = 1/6
    assert metrics.balanced_accuracy(pred, member) == pytest.approx(7 / 12)
    assert metrics.advantage(pred, member) == pytest.approx(1 / 6)


def test_best_threshold_separates_perfectly():
    member = np.array([1, 1, 0, 0, 0], dtype=bool)
    scores = np.array([5.0, 4.0, 3.0, 1.0, 0.0])
    t = metrics.best_threshold(scores, member)
    assert 3.0 < t <= 4.0
    assert metrics.balanced_accuracy(scores >= t, member) == 1.0


def test_attack_metrics_keys():
    rng = np.random.default_rng(0)
    member = rng.random(3000) < 0.5
    s = rng.normal(member, 1.0)
    m = metrics.attack_metrics(s, member, s > 0.5)
    assert set(m) == {"auc", "auc_ci95", "acc", "tpr_at_0.1%fpr", "tpr_at_1%fpr", "advantage"}
    assert m["tpr_at_0.1%fpr"] is not None  # ~1000 non-members resolve 0.1%


def test_metrics_reject_one_class():
    with pytest.raises(ValueError):
        metrics.auc(np.ones(3), np.ones(3, bool))


def _delong_by_pairs(s, member):
    """DeLong's placements by the definition, one member / non-member pair at a time."""
    pos, neg = s[member], s[~member]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(1), psi.mean(0)
    return psi.mean(), v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)


def test_auc_ci_is_delongs_interval():
    rng = np.random.default_rng(3)
    member = rng.random(600) < 0.4
    s = np.round(rng.normal(member * 0.8, 1.0), 1)  # rounded: ties count one half
    a, var = _delong_by_pairs(s, member)
    lo, hi = metrics.auc_ci(s, member)
    assert a == pytest.approx(metrics.auc(s, member), abs=1e-12)
    assert lo == pytest.approx(a - 1.959963984540054 * np.sqrt(var), abs=1e-12)
    assert hi == pytest.approx(a + 1.959963984540054 * np.sqrt(var), abs=1e-12)


def test_auc_ci_is_na_where_the_sample_cannot_resolve_it():
    assert metrics.min_queries() == 100  # 1 / the 1% FPR level
    member = np.r_[np.ones(99, bool), np.zeros(500, bool)]
    assert metrics.auc_ci(np.arange(599.0) % 7, member) is None  # 99 members
    member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    assert metrics.auc_ci(member.astype(float), member) is None  # separated: variance 0
    m = metrics.attack_metrics(
        np.r_[np.ones(2), np.zeros(2)], np.r_[True, True, False, False], None
    )
    assert m["auc"] == 1.0 and m["auc_ci95"] is None and m["tpr_at_1%fpr"] is None
