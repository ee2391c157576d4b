"""Confidence penalty (Pereyra et al. 2017), as the RelaxLoss baseline (App. B.5, Eq. 15-16):
L = CE - a * H(p), H(p) = -sum_c p_c log p_c; penalising low-entropy (over-confident) outputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mia_bench import checks
from mia_bench.defenses.base import Defense


class ConfidencePenalty(Defense):
    name = "confidence_penalty"

    def __init__(self, num_classes: int, feature_dim: int, a: float = 1.0) -> None:
        super().__init__(num_classes, feature_dim)
        self.a = checks.number("defense.a", a, lo=0.0)

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Batch mean of CE_i - a * H(p_i)."""
        log_p = F.log_softmax(logits, dim=1)
        entropy = -(log_p.exp() * log_p).sum(1)
        return F.nll_loss(log_p, targets) - self.a * entropy.mean()

    def describe(self) -> dict:
        return {"name": self.name, "a": self.a}
