"""Property-based checks of the metric functions (hypothesis): invariants any correct
implementation keeps, whatever the scores."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mia_bench import metrics

scores_and_members = st.integers(min_value=2, max_value=200).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda m: any(m) and not all(m)),
    )
)


@settings(max_examples=200, deadline=None)
@given(scores_and_members)
def test_auc_in_unit_interval_and_symmetric_under_label_flip(sm):
    s, m = np.array(sm[0]), np.array(sm[1])
    a = metrics.auc(s, m)
    assert 0.0 <= a <= 1.0
    # Swapping members and non-members mirrors the ROC: AUC -> 1 - AUC (ties count 1/2 both ways)
    assert abs(metrics.auc(s, ~m) - (1.0 - a)) < 1e-9
    # Negating the scores does the same
    assert abs(metrics.auc(-s, m) - (1.0 - a)) < 1e-9


@settings(max_examples=200, deadline=None)
@given(scores_and_members, st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6))
def test_tpr_at_fpr_monotone_in_level(sm, levels):
    s, m = np.array(sm[0]), np.array(sm[1])
    values = [(lv, metrics.tpr_at_fpr(s, m, lv)) for lv in sorted(levels)]
    defined = [(lv, v) for lv, v in values if v is not None]
    for (_, a), (_, b) in zip(defined, defined[1:]):
        assert a <= b
    for _, v in defined:
        assert 0.0 <= v <= 1.0
    # undefined exactly when the level cannot be resolved with this many non-members
    n_neg = int((~m).sum())
    for lv, v in values:
        assert (v is None) == (lv * n_neg < 1)


@settings(max_examples=200, deadline=None)
@given(scores_and_members)
def test_shadow_threshold_accuracy_in_unit_interval(sm):
    s, m = np.array(sm[0]), np.array(sm[1])
    t = metrics.best_threshold(s, m)
    acc = metrics.balanced_accuracy(s >= t, m)
    assert 0.5 <= acc <= 1.0  # on its own data the best threshold never does worse than chance
    rng = np.random.default_rng(0)
    other = rng.permutation(m)
    if other.any() and not other.all():
        assert 0.0 <= metrics.balanced_accuracy(s >= t, other) <= 1.0
    adv = metrics.advantage(s >= t, m)
    assert abs(adv - (2 * acc - 1)) < 1e-9  # advantage = TPR - FPR = 2 * balanced acc - 1
