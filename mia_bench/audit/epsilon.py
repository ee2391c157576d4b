"""Empirical epsilon lower bounds from an attack's scores on canaries.

Both bounds read only (scores, membership) of canaries that entered the audited model's training
set independently with probability 1/2, and hold with probability >= 1 - alpha over that draw
and the training randomness. A bound above a mechanism's claimed (eps, delta) refutes the claim.

1. Thresholded guesses (Jagielski, Ullman & Oprea, "Auditing Differentially Private Machine
   Learning: How Private is Private SGD?", NeurIPS 2020, Sec. 3 / Alg. 2; the approach of
   tensorflow_privacy's privacy_tests epsilon_lower_bound): for the test "member iff
   score >= t", an (eps, delta)-DP mechanism has FPR + e^eps FNR >= 1 - delta and
   FNR + e^eps FPR >= 1 - delta, so

       eps >= max( log((1 - delta - FNR_u) / FPR_u), log((1 - delta - FPR_u) / FNR_u) )

   with FPR_u, FNR_u one-sided Clopper-Pearson upper bounds. Multiple testing: the bound is
   maximised over every distinct canary score as t, so each of the 2T one-sided bounds
   (T thresholds) is taken at level alpha / (2T) (Bonferroni); the maximum then holds with
   probability >= 1 - alpha. No held-out split is used.

2. One run, abstain or guess (Steinke, Nasr & Jagielski, "Privacy Auditing with One (1)
   Training Run", NeurIPS 2023, Thm. 3.1 / Prop. 5.7 and their Alg. 1 with its p-value): the
   attacker guesses IN for the k_+ highest-scoring canaries, OUT for the k_- lowest and
   abstains on the rest; with r = k_+ + k_- guesses of which v are right, an (eps, delta)-DP
   mechanism over m canaries gives

       P[>= v right] <= P[Bin(r, q) >= v] + 2 m delta max_{1<=i<=v} P[v-i <= Bin(r, q) < v] / i,

   q = e^eps / (1 + e^eps). The bound is the largest eps whose p-value is below the level.
   k_+ = k_- = k over a small grid of k (ONE_RUN_FRACTIONS of m), Bonferroni over the grid.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta as beta_dist
from scipy.stats import binom

# k_+ = k_- = fraction * m guesses each way, for the one-run bound.
ONE_RUN_FRACTIONS = (0.05, 0.1, 0.25, 0.5)


def clopper_pearson_upper(k: int, n: int, level: float) -> float:
    """One-sided upper confidence bound on a binomial proportion from k successes in n trials:
    P[p > bound] <= level (Clopper & Pearson 1934): the 1 - level quantile of Beta(k+1, n-k)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    if k == n:
        return 1.0
    return float(beta_dist.ppf(1.0 - level, k + 1, n - k))


def _eps_from_rates(fpr_u: float, fnr_u: float, delta: float) -> float:
    """max(log((1-delta-FNR_u)/FPR_u), log((1-delta-FPR_u)/FNR_u), 0) (Jagielski et al. 2020)."""
    best = 0.0
    for num, den in ((1.0 - delta - fnr_u, fpr_u), (1.0 - delta - fpr_u, fnr_u)):
        if num > 0 and den > 0:
            best = max(best, math.log(num / den))
    return best


def threshold_bound(
    scores: np.ndarray, member: np.ndarray, delta: float, alpha: float = 0.05
) -> dict:
    """Clopper-Pearson thresholded bound, maximised over every distinct score as threshold
    with a Bonferroni correction (see the module docstring). Returns {"epsilon", "threshold",
    "fpr_upper", "fnr_upper", "num_thresholds", "per_bound_level"}."""
    s = np.asarray(scores, dtype=np.float64)
    m = np.asarray(member, dtype=bool)
    n1, n0 = int(m.sum()), int((~m).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("the bound needs canaries both IN and OUT")
    thresholds = np.unique(np.nan_to_num(s, nan=-np.inf))
    level = alpha / (2 * len(thresholds))
    best = {"epsilon": 0.0, "threshold": None, "fpr_upper": None, "fnr_upper": None}
    for t in thresholds:
        guess = s >= t
        fp, fn = int((guess & ~m).sum()), int((~guess & m).sum())
        fpr_u = clopper_pearson_upper(fp, n0, level)
        fnr_u = clopper_pearson_upper(fn, n1, level)
        eps = _eps_from_rates(fpr_u, fnr_u, delta)
        if best["threshold"] is None or eps > best["epsilon"]:
            best = {"epsilon": eps, "threshold": float(t), "fpr_upper": fpr_u, "fnr_upper": fnr_u}
    best["num_thresholds"] = len(thresholds)
    best["per_bound_level"] = level
    return best


def one_run_p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """P-value of >= v right among r guesses on m canaries under (eps, delta)-DP (Steinke,
    Nasr & Jagielski 2023; formula in the module docstring)."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    q = 1.0 / (1.0 + math.exp(-eps))
    tail = float(binom.sf(v - 1, r, q))
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    below = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[B = v-1], P[B = v-2], ..., P[B = 0]
    worst = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(tail + 2.0 * m * delta * worst, 1.0)


def one_run_epsilon(m: int, r: int, v: int, delta: float, level: float) -> float:
    """The largest eps whose one-run p-value stays below `level` (0 if even eps = 0 does not
    reach it): the eps lower bound at confidence 1 - level. Bisection; the p-value grows with
    eps."""
    if one_run_p_value(m, r, v, 0.0, delta) >= level:
        return 0.0
    lo, hi = 0.0, 1.0
    while one_run_p_value(m, r, v, hi, delta) < level:
        lo, hi = hi, 2 * hi
        if hi > 1e3:
            return float("inf")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if one_run_p_value(m, r, v, mid, delta) < level:
            lo = mid
        else:
            hi = mid
    return lo


def one_run_bound(
    scores: np.ndarray,
    member: np.ndarray,
    delta: float,
    alpha: float = 0.05,
    fractions: tuple[float, ...] = ONE_RUN_FRACTIONS,
) -> dict:
    """Steinke et al.'s one-run bound from canary scores: for each k in the grid, guess IN for
    the k highest and OUT for the k lowest scores; the best bound over the grid, each at level
    alpha / len(grid). Returns {"epsilon", "k_plus", "k_minus", "guesses", "correct",
    "num_canaries", "grid"}."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    mem = np.asarray(member, dtype=bool)
    m = len(s)
    order = np.argsort(-s, kind="mergesort")
    grid = sorted({k for f in fractions if 1 <= (k := int(f * m)) <= m // 2})
    if not grid:
        raise ValueError(f"{m} canaries are too few for a one-run audit")
    level = alpha / len(grid)
    best = {"epsilon": 0.0, "k_plus": None, "k_minus": None, "guesses": 0, "correct": 0}
    for k in grid:
        v = int(mem[order[:k]].sum() + (~mem[order[m - k :]]).sum())
        eps = one_run_epsilon(m, 2 * k, v, delta, level)
        if best["k_plus"] is None or eps > best["epsilon"]:
            best = {"epsilon": eps, "k_plus": k, "k_minus": k, "guesses": 2 * k, "correct": v}
    best["num_canaries"] = m
    best["grid"] = grid
    return best


def epsilon_lower_bounds(
    scores: np.ndarray, member: np.ndarray, delta: float, alpha: float = 0.05
) -> dict:
    """Both bounds of one attack's canary scores, as results.json
    `audit.epsilon_lower_bound.<attack>` holds them."""
    return {
        "clopper_pearson": threshold_bound(scores, member, delta, alpha),
        "one_run": one_run_bound(scores, member, delta, alpha),
        "delta": delta,
        "confidence": 1.0 - alpha,
    }
