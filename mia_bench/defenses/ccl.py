"""Convex-Concave Loss (Liu, Feng, Zhuang, Cao & Wei, ICML 2024).

A convex loss (cross-entropy) pulls the training losses together; adding a concave term of the
true-class probability p_y spreads them out again, by plain gradient descent (slides "Add
concave term": l_ccl = alpha * l_convex + (1 - alpha) * l_concave). The two concave terms of the
paper (slides "Our Proposed Method"):

- CCEL, concave exponential:  l_exp = -exp(p_y)
- CCQL, concave quadratic (Taylor form): l_qua = -p_y - p_y^2 / 2

Objective of a batch: beta * mean_i[alpha * CE_i + (1 - alpha) * l_concave(p_y,i)], with
p_y = exp(-CE). alpha = 1 is cross-entropy scaled by beta; beta is an overall scale (the
reference run uses 0.05 with SGD lr 0.1).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mia_bench import checks
from mia_bench.defenses.base import Defense

VARIANTS = ("ccel", "ccql")


class ConvexConcaveLoss(Defense):
    """CCL; parameters `variant` (ccel | ccql), `alpha` in (0, 1], `beta` > 0."""

    name = "ccl"

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        variant: str = "ccel",
        alpha: float = 0.5,
        beta: float = 0.05,
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.variant = checks.choice("defense.variant", variant, VARIANTS)
        self.alpha = checks.number("defense.alpha", alpha, lo=0.0, hi=1.0, lo_open=True)
        self.beta = checks.number("defense.beta", beta, lo=0.0, lo_open=True)

    def concave(self, p_y: torch.Tensor) -> torch.Tensor:
        """The concave term l_concave(p_y) of the chosen variant, per sample."""
        if self.variant == "ccel":
            return -torch.exp(p_y)
        return -p_y - 0.5 * p_y.square()

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ce = F.cross_entropy(logits, targets, reduction="none")
        p_y = torch.exp(-ce)
        return self.beta * (self.alpha * ce + (1.0 - self.alpha) * self.concave(p_y)).mean()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "variant": self.variant, "alpha": self.alpha, "beta": self.beta}
