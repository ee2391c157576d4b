import numpy as np
import pytest

from mia_bench.data.population import lira_keep_matrix, population_indices
from mia_bench.data.splits import relaxloss_split


@pytest.mark.parametrize("num_models", [2, 4, 16])
@pytest.mark.parametrize("n", [1000, 1001])
def test_each_sample_in_for_exactly_half_the_models(num_models, n):
    keep = lira_keep_matrix(n, num_models, seed=3)
    assert keep.shape == (num_models, n) and keep.dtype == bool
    np.testing.assert_array_equal(keep.sum(0), num_models // 2)
    # each model trains on half the population (n odd: half the models get the extra sample)
    sizes = np.sort(keep.sum(1))
    expected = [n // 2] * (num_models // 2) + [n - n // 2] * (num_models // 2)
    np.testing.assert_array_equal(sizes, expected)


def test_keep_matrix_is_random_but_seeded():
    a, b, c = lira_keep_matrix(500, 8, 0), lira_keep_matrix(500, 8, 0), lira_keep_matrix(500, 8, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # no fixed pairing: model 0's IN set is not the complement of any other model's
    assert not any(np.array_equal(a[0], ~a[m]) for m in range(1, 8))
    # membership in two models is close to independent: P(IN both) ~ 1/4 - 1/(4(N-1)) for N = 8
    both = (a[0] & a[1]).mean()
    assert 0.14 < both < 0.3


@pytest.mark.parametrize("bad", [0, 1, 3, 7])
def test_odd_or_too_few_models_refused(bad):
    with pytest.raises(ValueError, match="num_models"):
        lira_keep_matrix(10, bad, 0)


def test_population_is_target_queries_and_shadow_pool_without_reference():
    s = relaxloss_split(1000, "image", 0, shadow_count=3)
    pop = population_indices(s)
    assert np.all(np.diff(pop) > 0)
    expected = (
        set(s.target_train) | set(s.target_test) | set(s.shadows[0][0]) | set(s.shadows[0][1])
    )
    assert set(pop) == expected and not set(pop) & set(s.reference)
    assert len(pop) == 800
