"""SELENA (Tang, Mahloujifar, Song, Shejwalkar, Nasr, Houmansadr & Mittal, USENIX Security 2022,
"Mitigating Membership Inference Attacks by Self-Distillation Through a Novel Ensemble
Architecture", Sec. 4).

1. Split-AI: K sub-models of the target's architecture. For every training sample, L of the K
   models are drawn at random (without replacement) to leave it out; sub-model k trains on
   every sample it was not drawn for (each sample trains K - L models). Adaptive inference on
   a training sample averages the softmax outputs of only the L models that did not train on
   it, so each training sample is answered as a non-member would be.
2. Self-distillation: the released model (same architecture) is trained on the training set
   against Split-AI's adaptive-inference outputs as soft labels, loss KL(soft || softmax(z)),
   summed over classes and averaged over the batch (the authors' code minimises the soft-label
   cross-entropy -sum soft log p, which differs by the constant entropy of the soft labels:
   the same gradients). Only this model answers queries.

The paper uses K = 25, L = 10 (Purchase100, Texas100, CIFAR-10). Cost: K + 1 models; the K
sub-models are trained through the model cache under the roles `<role>.selena<k>` (each with
plain cross-entropy) and appear in results.json under `models`. Split-AI's answers to
non-members (the L models chosen by a hash of the query in the paper; the authors' code
borrows a random training sample's L models) are not needed to train the released model and
are not implemented.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mia_bench import checks
from mia_bench.defenses import NO_DEFENSE
from mia_bench.defenses.base import Defense, TrainingParts
from mia_bench.errors import ConfigError


def leave_out(n: int, k: int, l_out: int, seed: int) -> np.ndarray:
    """(n, K) bool: True where sub-model k does NOT train on sample i; exactly L per row,
    drawn uniformly at random without replacement."""
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((n, k)), axis=1)[:, :l_out]
    out = np.zeros((n, k), bool)
    np.put_along_axis(out, order, True, axis=1)
    return out


def adaptive_soft_labels(probs: np.ndarray | torch.Tensor, out: np.ndarray) -> torch.Tensor:
    """Split-AI's adaptive inference on training samples: probs (K, n, C) of every sub-model
    on every training sample; row i averages the L models with out[i, k] True."""
    p = torch.as_tensor(probs, dtype=torch.float32)
    w = torch.as_tensor(out, dtype=torch.float32).T.unsqueeze(2)  # (K, n, 1)
    return (p * w).sum(0) / w.sum(0)


def soft_kl(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Batch mean of KL(soft || softmax(z)) = sum_c soft_c (log soft_c - log p_c)."""
    log_p = F.log_softmax(logits.float(), 1)
    return (torch.xlogy(soft, soft) - soft * log_p).sum(1).mean()


class SELENA(Defense):
    name = "selena"

    def __init__(self, num_classes: int, feature_dim: int, k: int = 5, l: int = 2) -> None:  # noqa: E741
        super().__init__(num_classes, feature_dim)
        self.k = checks.integer("defense.k", k, lo=2)
        self.l = checks.integer("defense.l", l, lo=1)
        if self.l >= self.k:
            raise ConfigError("defense.l", f"must be below k={self.k} (got {l})")

    def setup(self, model, optimizer, train_data) -> TrainingParts:
        """Train (or load) the K sub-models, compute the soft labels, hand them to the trainer."""
        from mia_bench.signals.logits import predict_logits

        ctx = self.attached_context("its Split-AI sub-models")
        x, _ = train_data
        n = len(x)
        out = leave_out(n, self.k, self.l, ctx.seed)
        probs = []
        for j in range(self.k):
            sub = ctx.teacher(NO_DEFENSE, subset=np.flatnonzero(~out[:, j]), name=f"selena{j}")
            z = predict_logits(
                sub,
                x,
                preprocess=ctx.preprocess,
                device=ctx.device,
                batch_size=ctx.eval_batch_size,
            )
            probs.append(F.softmax(z.float(), 1))
        soft = adaptive_soft_labels(torch.stack(probs), out)
        return TrainingParts(data=(x, soft.to(x.device)))

    def loss(self, logits, targets, *, epoch: int, features=None) -> torch.Tensor:
        """`targets` are Split-AI's soft labels (TrainingParts.data)."""
        return soft_kl(logits, targets)

    def describe(self) -> dict:
        return {"name": self.name, "k": self.k, "l": self.l, "models_trained": self.k + 1}
