"""Attack metrics (SPEC "Metrics"). Scores: higher = more likely member.

Conventions:
- AUC is the Mann-Whitney statistic: P(score_member > score_nonmember) + 0.5 P(tie).
- TPR at FPR level: the largest TPR among ROC points whose FPR <= level, where the ROC points
  are those of every distinct threshold (as sklearn's `roc_curve` with drop_intermediate=False).
  With n non-members, an FPR level below 1/n cannot be resolved and is reported as None.
- Attack accuracy is balanced: 0.5 * (TPR + TNR) of the member predictions.
- Advantage (Yeom et al. 2018): TPR - FPR of the member predictions.
- AUC 95% confidence interval: DeLong et al. (1988) variance, normal approximation. Reported
  as None ("n/a") with fewer than `min_queries()` members or non-members, where the
  approximation does not hold, and when the estimated variance is zero (e.g. perfectly
  separated scores), where it would claim a certainty that the sample cannot give.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

# The FPR levels at which TPR is reported (results.json keys tpr_at_<100 * level>%fpr).
FPR_LEVELS = (0.001, 0.01)
# The keys of `attack_metrics`, in results.json order.
METRIC_KEYS = ("auc", "auc_ci95", "acc", "tpr_at_0.1%fpr", "tpr_at_1%fpr", "advantage")


def min_queries(levels: tuple[float, ...] = FPR_LEVELS) -> int:
    """The fewest non-members at which at least one of `levels` can be resolved: 1 / the
    largest level (rounded up)."""
    return math.ceil(1 / max(levels) - 1e-9)


def _check(scores: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if scores.shape != member.shape:
        raise ValueError(f"scores {scores.shape} and member {member.shape} differ in shape")
    if member.all() or not member.any():
        raise ValueError("metrics need both members and non-members")
    return scores, member


def auc(scores: np.ndarray, member: np.ndarray) -> float:
    """Area under the ROC curve via ranks (ties count one half)."""
    scores, member = _check(scores, member)
    scores = np.nan_to_num(scores, nan=-np.inf)
    ranks = rankdata(scores)
    n_pos, n_neg = member.sum(), (~member).sum()
    return float((ranks[member].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_points(scores: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for every distinct threshold, from (0, 0) up to (1, 1).

    Predict member when score >= threshold; thresholds decrease along the arrays.
    """
    scores, member = _check(scores, member)
    scores = np.nan_to_num(scores, nan=-np.inf)
    order = np.argsort(-scores, kind="mergesort")
    s, m = scores[order], member[order]
    # last index of each run of equal scores
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(m)[distinct]
    fps = np.cumsum(~m)[distinct]
    tpr = np.r_[0.0, tps / member.sum()]
    fpr = np.r_[0.0, fps / (~member).sum()]
    thr = np.r_[np.inf, s[distinct]]
    return fpr, tpr, thr


def tpr_at_fpr(scores: np.ndarray, member: np.ndarray, level: float) -> float | None:
    """Largest TPR among ROC points with FPR <= level; None when level < 1 / #non-members."""
    fpr, tpr, _ = roc_points(scores, member)
    n_neg = int((~np.asarray(member, dtype=bool)).sum())
    if level * n_neg < 1:
        return None
    return float(tpr[fpr <= level + 1e-12].max())


def auc_ci(
    scores: np.ndarray, member: np.ndarray, z: float = 1.959963984540054
) -> list[float] | None:
    """[low, high] of AUC +- z * SE with DeLong's variance (DeLong, DeLong & Clarke-Pearson
    1988, Eq. 2-4): with placements V10_i = P(member i scores above a non-member) (ties 1/2)
    and V01_j = P(a member scores above non-member j), Var(AUC) = s2(V10) / m + s2(V01) / n
    (sample variances). Clipped to [0, 1]; None where the sample cannot resolve it (above)."""
    scores, member = _check(scores, member)
    scores = np.nan_to_num(scores, nan=-np.inf)
    m, n = int(member.sum()), int((~member).sum())
    if min(m, n) < min_queries():
        return None
    ranks = rankdata(scores)
    pos, neg = scores[member], scores[~member]
    # rank among all minus rank among its own class = how many of the other class lie below
    v10 = (ranks[member] - rankdata(pos)) / n
    v01 = 1.0 - (ranks[~member] - rankdata(neg)) / m
    var = v10.var(ddof=1) / m + v01.var(ddof=1) / n
    if not var > 0:
        return None
    a, half = float(v10.mean()), z * math.sqrt(var)
    return [max(0.0, a - half), min(1.0, a + half)]


def balanced_accuracy(pred: np.ndarray, member: np.ndarray) -> float:
    pred, member = np.asarray(pred, dtype=bool), np.asarray(member, dtype=bool)
    tpr = (pred & member).sum() / member.sum()
    tnr = (~pred & ~member).sum() / (~member).sum()
    return float(0.5 * (tpr + tnr))


def advantage(pred: np.ndarray, member: np.ndarray) -> float:
    pred, member = np.asarray(pred, dtype=bool), np.asarray(member, dtype=bool)
    return float((pred & member).sum() / member.sum() - (pred & ~member).sum() / (~member).sum())


def best_threshold(scores: np.ndarray, member: np.ndarray) -> float:
    """The threshold t maximising balanced accuracy of `score >= t` on known members /
    non-members (used on shadow data). Ties go to the largest such t."""
    fpr, tpr, thr = roc_points(scores, member)
    bal = 0.5 * (tpr + 1.0 - fpr)
    i = int(np.argmax(bal))
    return float(thr[i])


def attack_metrics(
    scores: np.ndarray, member: np.ndarray, pred: np.ndarray | None
) -> dict[str, float | None]:
    """Every metric of one attack on the target's queries."""
    out: dict[str, float | None] = {
        "auc": auc(scores, member),
        "auc_ci95": auc_ci(scores, member),
        "acc": balanced_accuracy(pred, member) if pred is not None else None,
        "tpr_at_0.1%fpr": tpr_at_fpr(scores, member, 0.001),
        "tpr_at_1%fpr": tpr_at_fpr(scores, member, 0.01),
        "advantage": advantage(pred, member) if pred is not None else None,
    }
    return out
