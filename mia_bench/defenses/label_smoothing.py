"""Label smoothing (Szegedy et al. 2016), as the RelaxLoss baseline (Chen et al. 2022, App. B.5).

RelaxLoss Eq. 14 writes the objective as eps * KL(U || p) + (1 - eps) * CE. Since
KL(U || p) = CE(U, p) - log C, that equals cross-entropy against the smoothed target
(1 - eps) * onehot(y) + eps / C minus the constant eps * log C: the same gradients, so we use
the smoothed-target form (torch's `label_smoothing`), which is what the reference code trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mia_bench import checks
from mia_bench.defenses.base import Defense


class LabelSmoothing(Defense):
    name = "label_smoothing"

    def __init__(self, num_classes: int, feature_dim: int, epsilon: float = 0.1) -> None:
        super().__init__(num_classes, feature_dim)
        self.epsilon = checks.number("defense.epsilon", epsilon, lo=0.0, hi=1.0, hi_open=True)

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean over the batch of -sum_c t_c log p_c, t = (1 - eps) onehot(y) + eps / C."""
        return F.cross_entropy(logits, targets, label_smoothing=self.epsilon)

    def describe(self) -> dict:
        return {"name": self.name, "epsilon": self.epsilon}
