"""No defense: the mean cross-entropy of the batch.

Defenses that train with plain cross-entropy and act elsewhere (the architecture, snapshots,
the optimiser, query time) inherit their `loss` from `NoDefense`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mia_bench.defenses.base import Defense


class NoDefense(Defense):
    name = "none"

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return F.cross_entropy(logits, targets)
