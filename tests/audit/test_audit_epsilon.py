"""Empirical epsilon lower bounds (mia_bench/audit/epsilon.py) against scipy and hand-worked
values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import beta, binom

from mia_bench.audit.epsilon import (
    clopper_pearson_upper,
    one_run_bound,
    one_run_epsilon,
    one_run_p_value,
    threshold_bound,
)


@pytest.mark.parametrize("k,n,level", [(3, 20, 0.025), (0, 50, 0.001), (17, 40, 0.1)])
def test_clopper_pearson_upper_is_the_beta_quantile(k, n, level):
    assert clopper_pearson_upper(k, n, level) == pytest.approx(beta.ppf(1 - level, k + 1, n - k))


def test_clopper_pearson_upper_with_no_successes_by_hand():
    # P[Bin(n, p) = 0] = (1 - p)^n = level  <=>  p = 1 - level^(1/n)
    assert clopper_pearson_upper(0, 50, 0.01) == pytest.approx(1 - 0.01 ** (1 / 50))
    assert clopper_pearson_upper(50, 50, 0.01) == 1.0


def test_threshold_bound_perfect_separation_by_hand():
    # 50 IN canaries all score above 50 OUT ones: at t = the lowest IN score FP = FN = 0;
    # 100 distinct scores -> 200 one-sided bounds, each at 0.05 / 200.
    scores = np.r_[np.arange(50, 100), np.arange(0, 50)].astype(float)
    member = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    delta = 1e-5
    u = 1 - (0.05 / 200) ** (1 / 50)
    out = threshold_bound(scores, member, delta, alpha=0.05)
    assert out["num_thresholds"] == 100
    assert out["threshold"] == 50.0
    assert out["fpr_upper"] == pytest.approx(u) and out["fnr_upper"] == pytest.approx(u)
    assert out["epsilon"] == pytest.approx(math.log((1 - delta - u) / u))
    assert out["epsilon"] == pytest.approx(1.7124, abs=1e-3)  # u = 0.15285


def test_threshold_bound_matches_brute_force_with_scipy():
    rng = np.random.default_rng(0)
    member = rng.random(80) < 0.5
    scores = rng.normal(size=80) + 1.5 * member
    delta, alpha = 1e-5, 0.05
    out = threshold_bound(scores, member, delta, alpha)
    ts = np.unique(scores)
    level = alpha / (2 * len(ts))
    n1, n0 = member.sum(), (~member).sum()
    best = 0.0
    for t in ts:
        fp, fn = ((scores >= t) & ~member).sum(), ((scores < t) & member).sum()
        fpr = beta.ppf(1 - level, fp + 1, n0 - fp) if fp < n0 else 1.0
        fnr = beta.ppf(1 - level, fn + 1, n1 - fn) if fn < n1 else 1.0
        for a, b in ((1 - delta - fnr, fpr), (1 - delta - fpr, fnr)):
            if a > 0 and b > 0:
                best = max(best, math.log(a / b))
    assert out["epsilon"] == pytest.approx(best)
    assert out["epsilon"] > 0


def test_threshold_bound_is_zero_without_signal():
    member = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    assert threshold_bound(np.zeros(60), member, 1e-5)["epsilon"] == 0.0


def test_one_run_p_value_by_hand():
    # r = 3 guesses, v = 2 right, m = 10 canaries, eps = 1, delta = 0.01
    q = math.e / (1 + math.e)
    p1, p0 = 3 * q * (1 - q) ** 2, (1 - q) ** 3
    tail = 3 * q**2 * (1 - q) + q**3
    expected = tail + 2 * 10 * 0.01 * max(p1 / 1, (p1 + p0) / 2)
    assert one_run_p_value(10, 3, 2, 1.0, 0.01) == pytest.approx(expected)
    assert one_run_p_value(10, 3, 2, 1.0, 0.0) == pytest.approx(binom.sf(1, 3, q))


def test_one_run_epsilon_pure_dp_by_hand():
    # delta = 0, all r = 10 guesses right: q^10 = level  ->  eps = log(q / (1 - q))
    q = 0.05 ** (1 / 10)
    assert one_run_epsilon(100, 10, 10, 0.0, 0.05) == pytest.approx(math.log(q / (1 - q)), abs=1e-6)
    assert math.log(q / (1 - q)) == pytest.approx(1.0519, abs=1e-3)
    # the bound is the eps at which the p-value reaches the level
    eps = one_run_epsilon(100, 40, 35, 1e-5, 0.05)
    assert one_run_p_value(100, 40, 35, eps, 1e-5) == pytest.approx(0.05, rel=1e-4)
    # delta > 0 can only weaken it; no better than chance gives nothing
    assert 0 < eps < one_run_epsilon(100, 40, 35, 0.0, 0.05)
    assert one_run_epsilon(100, 40, 20, 1e-5, 0.05) == 0.0


def test_one_run_bound_perfect_scores_by_hand():
    # 100 canaries, 50 IN with the top scores; grid k = 5, 10, 25, 50, Bonferroni over 4;
    # k = 50 guesses all 100 right: q^100 = 0.0125 (delta = 0)
    scores = np.r_[np.arange(50, 100), np.arange(0, 50)].astype(float)
    member = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    out = one_run_bound(scores, member, delta=0.0, alpha=0.05)
    q = 0.0125 ** (1 / 100)
    assert out["grid"] == [5, 10, 25, 50]
    assert (out["k_plus"], out["guesses"], out["correct"]) == (50, 100, 100)
    assert out["epsilon"] == pytest.approx(math.log(q / (1 - q)), abs=1e-6)
    assert out["epsilon"] == pytest.approx(3.105, abs=1e-3)
