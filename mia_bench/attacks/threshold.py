"""Metric-threshold attacks: loss (Yeom et al. 2018), confidence, entropy, and modified
entropy (Song & Mittal 2021), with per-class or global thresholds chosen on the shadows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mia_bench import checks
from mia_bench.attacks.base import Attack
from mia_bench.metrics import best_threshold
from mia_bench.signals.compute import Signals

_EPS = 1e-30


def loss_score(s: Signals) -> np.ndarray:
    """-CE(p, y): members have lower loss."""
    return -s.loss


def confidence_score(s: Signals) -> np.ndarray:
    """p_y, the probability of the true class."""
    return s.probs[np.arange(len(s)), s.labels]


def entropy_score(s: Signals) -> np.ndarray:
    """-H(p) = sum_c p_c log p_c: members get more confident (lower-entropy) outputs."""
    logp = s.log_probs
    return (np.exp(logp) * logp).sum(1)


def m_entropy_score(s: Signals) -> np.ndarray:
    """-Mentr (Song & Mittal 2021, Eq. 11):
    Mentr(p, y) = -(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c)."""
    log_p = s.log_probs  # one softmax for both p and log p
    p = np.exp(log_p)
    rows = np.arange(len(s))
    py = p[rows, s.labels]
    log_1mp = np.log(np.clip(1.0 - p, _EPS, None))
    terms = -p * log_1mp
    terms[rows, s.labels] = -(1.0 - py) * log_p[rows, s.labels]
    return -terms.sum(1)


METRICS: dict[str, Callable[[Signals], np.ndarray]] = {
    "loss": loss_score,
    "confidence": confidence_score,
    "entropy": entropy_score,
    "m_entropy": m_entropy_score,
}


class Thresholds:
    """Member iff score >= threshold; thresholds maximise balanced accuracy on the shadows, one
    per true label (`per_class`, Song & Mittal 2021) or one for all (`global`)."""

    def __init__(self, mode: str = "per_class") -> None:
        self.mode = checks.choice("thresholds", mode, ("per_class", "global"))
        self.global_ = 0.0
        self.per_class: dict[int, float] = {}

    def fit(self, scores: np.ndarray, labels: np.ndarray, member: np.ndarray) -> Thresholds:
        self.global_ = best_threshold(scores, member)
        self.per_class = {}
        if self.mode == "per_class":
            for c in np.unique(labels):
                sel = labels == c
                m = member[sel]
                # A class seen only as members (or only as non-members) keeps the global one.
                if m.any() and not m.all():
                    self.per_class[int(c)] = best_threshold(scores[sel], m)
        return self

    def predict(self, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        thr = np.array([self.per_class.get(int(c), self.global_) for c in labels])
        return scores >= thr


class ThresholdAttack(Attack):
    """score >= threshold -> member; thresholds maximise balanced accuracy on the shadows."""

    def __init__(self, metric: str, thresholds: str = "per_class") -> None:
        self.metric = checks.choice("metric", metric, sorted(METRICS))
        self.thresholds = Thresholds(thresholds)

    def fit(self, shadow: list[Signals]) -> None:
        pooled = Signals.concat(shadow)
        self.thresholds.fit(METRICS[self.metric](pooled), pooled.labels, pooled.member)

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        return {self.name: METRICS[self.metric](target)}

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        return {self.name: self.thresholds.predict(METRICS[self.metric](target), target.labels)}
