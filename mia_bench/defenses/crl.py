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

Updates (Algorithm 1 lines 24-25): the model descends on L, the centers descend on L_rcl alone
(not lam * L_rcl) with their own SGD optimiser, lr `lr_centers` (0.001 in Sec. 5.1). Epochs
count from 0 as in the reference code, so the first epoch is even.

The paper leaves open whether the soft label t and the weights w pass gradients; with
`stop_gradient: true` (default) they are constants, as sg[t] in RelaxLoss's Algorithm 1, on
which ImpRelaxLoss builds. The paper gives no values for alpha_rce, alpha_rcl, tau_rce,
tau_rcl or lam; conf/defense/crl.yaml documents how ours were chosen.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mia_bench.defenses import checks
from mia_bench.defenses.base import Defense
from mia_bench.defenses.relaxloss import flattened_targets, relax_schedule, soft_cross_entropy


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
        stop_gradient: bool = True,
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.alpha_rce = checks.number("alpha_rce", alpha_rce, lo=0.0, lo_open=True)
        self.alpha_rcl = checks.number("alpha_rcl", alpha_rcl, lo=0.0)
        self.tau_rce = checks.number("tau_rce", tau_rce, lo=0.0)
        self.tau_rcl = checks.number("tau_rcl", tau_rcl, lo=0.0)
        self.lam = checks.number("lam", lam, lo=0.0)
        self.upper = checks.number("upper", upper, lo=0.0, hi=1.0, lo_open=True)
        self.upper_rcl = checks.number("upper_rcl", upper_rcl, lo=0.0, hi=1.0, lo_open=True)
        self.lr_centers = checks.number("lr_centers", lr_centers, lo=0.0, lo_open=True)
        self.stop_gradient = checks.flag("stop_gradient", stop_gradient)
        # Random normal initialisation (Algorithm 1 line 1); drawn from torch's global RNG,
        # which the pipeline seeds per model role.
        self.centers = nn.Parameter(torch.randn(num_classes, feature_dim))

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.SGD([self.centers], lr=self.lr_centers)]

    def imp_relax_loss(
        self, logits: torch.Tensor, targets: torch.Tensor, epoch: int
    ) -> torch.Tensor:
        """L_rce, CRL Eq. 5-9."""
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
        """L_rcl, CRL Algorithm 1 lines 7-18."""
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
        """L_rce + lam * L_rcl; `epoch` counts from 0 (epoch 0 is even)."""
        if features is None:
            raise ValueError("CRL needs the model's penultimate features (needs_features=True)")
        l_rce = self.imp_relax_loss(logits, targets, epoch)
        # The model sees lam * L_rcl with the centers held fixed ...
        l_rcl = self.relaxed_center_loss(features, self.centers.detach(), logits, targets, epoch)
        # ... and the centers see L_rcl itself (Algorithm 1 line 24): a term whose value is 0
        # and whose only gradient is d L_rcl / d c, with features and logits held fixed.
        for_centers = self.relaxed_center_loss(
            features.detach(), self.centers, logits.detach(), targets, epoch
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
        )
        return {"name": self.name, **{k: getattr(self, k) for k in keys}}
