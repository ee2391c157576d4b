"""Center-based Relaxed Learning (Fang & Kim, UAI 2024): L = L_rce + lam * L_rcl.

Notation: g the logits, q the penultimate features (the trainer passes them because
`needs_features` is set), c_k learnable class centers, p = softmax(g) the raw probabilities,
n(z; t) = z / (1 + t * ||z||_2) the normalisation of Eq. 5 and Algorithm 1 line 7.

ImpRelaxLoss (Eq. 5-9), L_rce:
- L_lce = mean CE of the normalised logits n(g; tau_rce)  (Eq. 5-6);
- soft label from the raw probabilities: t_y = min(p_y, upper), t_c = (1 - t_y) / (C - 1)  (Eq. 7);
- L_sce = mean -sum_c t_c log softmax(n(g; tau_rce))_c  (Eq. 8);
- even epoch |L_lce - alpha_rce|; odd epoch L_lce if L_lce > alpha_rce, else L_sce  (Eq. 9).

Relaxed center loss (Algorithm 1 lines 7-18), L_rcl, with d_i = ||n(q_i) - n(c_{y_i})||^2,
n(.) = n(.; tau_rcl) and D = sum_i d_i / 2B:
- even epoch |D - alpha_rcl|; odd epoch D if D > alpha_rcl;
- otherwise sum_i [w_i d_i + (1 - w_i) ||n(q_i)||^2] / 2B with w_i = min(p_{y_i}, upper_rcl).

Epochs: Algorithm 1 loops `for epoch in {1, ..., E}` and the authors' training loop hands the
criterion `current_epoch + 1`, so CRL's first epoch is odd (descent or flattening) and the last
of 100 is even. The trainer counts from 0; `loss` adds 1. (RelaxLoss counts from 0.)

Updates (`centers_update`), Algorithm 1 lines 24-25 against the authors' code:
- `code` (default; behind the paper's tables): one backward pass of L_rce + lam * L_rcl, so the
  centers receive lam * dL_rcl/dc, and their SGD optimiser (lr `lr_centers`) carries the model's
  momentum 0.9 and weight decay 5e-4 (`centers_momentum`, `centers_weight_decay`);
- `paper`: the centers descend on L_rcl itself (line 24, not scaled by lam) with plain SGD.
Either way the model descends on L and the centers' learning rate is constant.

Soft label and weights (`stop_gradient`): the authors' flattening branches compute t and w from
softmax(g) without detaching them, so gradients flow through them (`false`, the default);
`true` holds them constant, as sg[t] in RelaxLoss's Algorithm 1, on which ImpRelaxLoss builds.
The paper gives no values for alpha_rce, alpha_rcl, tau_rce, tau_rcl or lam;
conf/defense/crl.yaml documents how ours were chosen.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mia_bench import checks
from mia_bench.defenses.base import Defense
from mia_bench.defenses.relaxloss import flattened_targets, relax_schedule, soft_cross_entropy

CENTERS_UPDATES = ("code", "paper")


def normalise(z: torch.Tensor, tau: float) -> torch.Tensor:
    """n(z; tau) = z / (1 + tau * ||z||_2), row-wise (CRL Eq. 5, Algorithm 1 line 7)."""
    return z / (1.0 + tau * z.norm(dim=-1, keepdim=True))


class CenterRelaxedLearning(Defense):
    """CRL; see the module docstring for the objective and every parameter."""

    name = "crl"
    needs_features = True

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        alpha_rce: float = 1.0,
        alpha_rcl: float = 0.1,
        tau_rce: float = 0.0,
        tau_rcl: float = 0.0,
        lam: float = 0.1,
        upper: float = 1.0,
        upper_rcl: float = 1.0,
        lr_centers: float = 0.001,
        stop_gradient: bool = False,
        centers_update: str = "code",
        centers_momentum: float = 0.9,
        centers_weight_decay: float = 5e-4,
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.alpha_rce = checks.number("defense.alpha_rce", alpha_rce, lo=0.0, lo_open=True)
        self.alpha_rcl = checks.number("defense.alpha_rcl", alpha_rcl, lo=0.0)
        self.tau_rce = checks.number("defense.tau_rce", tau_rce, lo=0.0)
        self.tau_rcl = checks.number("defense.tau_rcl", tau_rcl, lo=0.0)
        self.lam = checks.number("defense.lam", lam, lo=0.0)
        self.upper = checks.number("defense.upper", upper, lo=0.0, hi=1.0, lo_open=True)
        self.upper_rcl = checks.number("defense.upper_rcl", upper_rcl, lo=0.0, hi=1.0, lo_open=True)
        self.lr_centers = checks.number("defense.lr_centers", lr_centers, lo=0.0, lo_open=True)
        self.stop_gradient = checks.flag("defense.stop_gradient", stop_gradient)
        self.centers_update = checks.choice(
            "defense.centers_update", centers_update, CENTERS_UPDATES
        )
        self.centers_momentum = checks.number(
            "defense.centers_momentum", centers_momentum, lo=0.0, hi=1.0
        )
        self.centers_weight_decay = checks.number(
            "defense.centers_weight_decay", centers_weight_decay, lo=0.0
        )
        # Random normal initialisation (Algorithm 1 line 1); drawn from torch's global RNG,
        # which the pipeline seeds per model role.
        self.centers = nn.Parameter(torch.randn(num_classes, feature_dim))

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        if self.centers_update == "paper":
            return [torch.optim.SGD([self.centers], lr=self.lr_centers)]
        return [
            torch.optim.SGD(
                [self.centers],
                lr=self.lr_centers,
                momentum=self.centers_momentum,
                weight_decay=self.centers_weight_decay,
            )
        ]

    def imp_relax_loss(
        self, logits: torch.Tensor, targets: torch.Tensor, epoch: int
    ) -> torch.Tensor:
        """L_rce, CRL Eq. 5-9; `epoch` as Algorithm 1 counts (from 1: odd epochs first)."""
        log_probs_n = F.log_softmax(normalise(logits, self.tau_rce), dim=1)
        l_lce = F.nll_loss(log_probs_n, targets)

        def flattening() -> torch.Tensor:
            p_y = self._p_y(logits, targets).clamp(max=self.upper)
            soft = flattened_targets(p_y, targets, self.num_classes)
            return soft_cross_entropy(soft, log_probs_n).mean()

        return relax_schedule(l_lce, self.alpha_rce, epoch, flattening)

    def relaxed_center_loss(
        self,
        features: torch.Tensor,
        centers: torch.Tensor,
        logits: torch.Tensor,
        targets: torch.Tensor,
        epoch: int,
    ) -> torch.Tensor:
        """L_rcl, CRL Algorithm 1 lines 7-18; `epoch` as Algorithm 1 counts (from 1)."""
        q = normalise(features, self.tau_rcl)
        c = normalise(centers, self.tau_rcl)[targets]
        dist = (q - c).square().sum(dim=1)
        two_b = 2.0 * len(targets)

        def flattening() -> torch.Tensor:
            w = self._p_y(logits, targets).clamp(max=self.upper_rcl)
            return (w * dist + (1.0 - w) * q.square().sum(dim=1)).sum() / two_b

        return relax_schedule(dist.sum() / two_b, self.alpha_rcl, epoch, flattening)

    def _p_y(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p_y = F.softmax(logits, dim=1).gather(1, targets.unsqueeze(1)).squeeze(1)
        return p_y.detach() if self.stop_gradient else p_y

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L_rce + lam * L_rcl; `epoch` is the trainer's (from 0), Algorithm 1's is epoch + 1."""
        if features is None:
            raise ValueError("CRL needs the model's penultimate features (needs_features=True)")
        step = epoch + 1
        l_rce = self.imp_relax_loss(logits, targets, step)
        if self.centers_update == "code":
            # One graph, as the authors' code: the centers receive lam * dL_rcl/dc.
            l_rcl = self.relaxed_center_loss(features, self.centers, logits, targets, step)
            return l_rce + self.lam * l_rcl
        # The model sees lam * L_rcl with the centers held fixed ...
        l_rcl = self.relaxed_center_loss(features, self.centers.detach(), logits, targets, step)
        # ... and the centers see L_rcl itself (Algorithm 1 line 24): a term whose value is 0
        # and whose only gradient is d L_rcl / d c, with features and logits held fixed.
        for_centers = self.relaxed_center_loss(
            features.detach(), self.centers, logits.detach(), targets, step
        )
        return l_rce + self.lam * l_rcl + (for_centers - for_centers.detach())

    def describe(self) -> dict[str, Any]:
        keys = (
            "alpha_rce",
            "alpha_rcl",
            "tau_rce",
            "tau_rcl",
            "lam",
            "upper",
            "upper_rcl",
            "lr_centers",
            "stop_gradient",
            "centers_update",
            "centers_momentum",
            "centers_weight_decay",
        )
        return {"name": self.name, **{k: getattr(self, k) for k in keys}}
