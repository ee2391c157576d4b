"""Self-distillation (Hinton et al. 2015; Zhang et al. 2019), the RelaxLoss baseline (App. B.5,
Eq. 17-18): the target (student) learns from a teacher of the same architecture trained with
plain cross-entropy on the same training set:

    L = alpha * T^2 * KL(p_t^T || p_s^T) + (1 - alpha) * CE(p_s, y),   p^T = softmax(z / T).

KL direction: RelaxLoss Eq. 17 writes D_KL(p_s || p_t), but Hinton et al.'s soft-target term is
the cross-entropy of the student's softened output against the teacher's, -sum p_t^T log p_s^T,
whose gradient is that of KL(p_t^T || p_s^T) (the two differ by the teacher's entropy, a
constant for the student). That is also what distillation code computes with
`kl_div(log_softmax(z_s / T), softmax(z_t / T))`, so we implement KL(teacher || student). The
T^2 factor keeps the soft term's gradient scale independent of T (Hinton et al. Sec. 2).
The KL is summed over classes and averaged over the batch.

The teacher comes from `DefenseContext.teacher` (role `<role>.teacher`, defense none, same
indices), so it is trained once and then read from the model cache. It sees the very same
(augmented) batch as the student.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mia_bench import checks
from mia_bench.defenses import NO_DEFENSE
from mia_bench.defenses.base import Defense, TrainingParts


def distillation_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Batch mean of KL(softmax(z_t / T) || softmax(z_s / T)), summed over classes."""
    log_ps = F.log_softmax(student_logits / temperature, dim=1)
    log_pt = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)


class SelfDistillation(Defense):
    name = "distillation"
    needs_inputs = True

    def __init__(
        self, num_classes: int, feature_dim: int, temperature: float = 5.0, alpha: float = 0.5
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.temperature = checks.number("defense.temperature", temperature, lo=0.0, lo_open=True)
        self.alpha = checks.number("defense.alpha", alpha, lo=0.0, hi=1.0)
        # A list, not an attribute, so the teacher is neither a submodule nor in the
        # student's checkpoint.
        self._teacher: list[nn.Module] = []

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, train_data
    ) -> TrainingParts | None:
        self._teacher = [self.attached_context("its teacher").teacher(NO_DEFENSE)]
        return None

    def end_training(self) -> None:
        self._teacher = []

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
        inputs: torch.Tensor | None = None,
        teacher_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Eq. 17; `teacher_logits` may be given directly (tests), else the teacher runs on `inputs`."""
        if teacher_logits is None:
            if inputs is None or not self._teacher:
                raise RuntimeError("distillation loss needs the batch inputs and a teacher")
            with torch.no_grad():
                teacher_logits = self._teacher[0](inputs)
        t = self.temperature
        soft = distillation_kl(logits, teacher_logits.detach(), t)
        return self.alpha * t * t * soft + (1 - self.alpha) * F.cross_entropy(logits, targets)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "teacher": "none",
        }
