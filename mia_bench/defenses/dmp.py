"""Distillation for Membership Privacy, DMP (Shejwalkar & Houmansadr, AAAI 2021).

1. An unprotected teacher is trained on the private training set (`DefenseContext.teacher`
   with defense none: role `<role>.teacher`, shared with self-distillation through the cache).
2. From the reference fold (unlabelled data disjoint from every member and query set), keep
   the `select_fraction` of samples whose teacher prediction has the lowest entropy: the paper
   argues those carry the least membership information about the private set.
3. The protected model (the target) is trained only on those samples, against the teacher's
   soft labels softmax(z_t / T), with the loss T^2 * KL(soft || softmax(z_s / T)): it never sees
   the private data. Membership is still evaluated on the private training set.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mia_bench import checks
from mia_bench.defenses import NO_DEFENSE
from mia_bench.defenses.base import Defense, TrainingParts


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(z)) per row, in nats."""
    log_p = F.log_softmax(logits.double(), dim=1)
    return -(log_p.exp() * log_p).sum(1)


def select_low_entropy(logits: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices (ascending) of the ceil(fraction * n) rows of lowest prediction entropy; ties go
    to the lower index."""
    n = len(logits)
    keep = min(n, max(1, math.ceil(fraction * n)))
    order = torch.sort(prediction_entropy(logits), stable=True).indices
    return torch.sort(order[:keep]).values


def soft_label_loss(logits: torch.Tensor, soft: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * batch mean of KL(soft || softmax(z / T)), summed over classes."""
    log_ps = F.log_softmax(logits / temperature, dim=1)
    return temperature**2 * F.kl_div(log_ps, soft, reduction="batchmean")


class DMP(Defense):
    name = "dmp"
    uses_reference = True

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        select_fraction: float = 0.5,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.select_fraction = checks.number(
            "defense.select_fraction", select_fraction, lo=0.0, hi=1.0, lo_open=True
        )
        self.temperature = checks.number("defense.temperature", temperature, lo=0.0, lo_open=True)

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, train_data
    ) -> TrainingParts:
        from mia_bench.signals.logits import predict_logits

        ctx = self.attached_context("its teacher and reference data")
        teacher = ctx.teacher(NO_DEFENSE)
        x_ref = ctx.reference[0]
        t_logits = predict_logits(
            teacher,
            x_ref,
            preprocess=ctx.preprocess,
            device=ctx.device,
            batch_size=ctx.eval_batch_size,
        )
        keep = select_low_entropy(t_logits, self.select_fraction)
        soft = F.softmax(t_logits[keep].double() / self.temperature, dim=1).float()
        return TrainingParts(data=(x_ref[keep], soft))

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`targets` are the teacher's soft labels of the batch (B, C)."""
        return soft_label_loss(logits, targets, self.temperature)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "select_fraction": self.select_fraction,
            "temperature": self.temperature,
        }
