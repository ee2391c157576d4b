"""Model -> per-sample outputs, computed once per (model, query set) and read by every attack."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mia_bench.data.transforms import Preprocess
from mia_bench.gradnorms import per_sample_grad_norms
from mia_bench.training import predict_logits

__all__ = ["Signals", "compute_signals", "per_sample_grad_norms"]


@dataclass
class Signals:
    """What an attacker observes about a set of queries.

    logits: (n, C) float (after any test-time defense); labels: (n,) true classes;
    member: (n,) bool, known for shadow models, the ground truth for the target.
    extra: further per-sample signals by name (e.g. "grad_x_l2").
    """

    logits: np.ndarray
    labels: np.ndarray
    member: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def log_probs(self) -> np.ndarray:
        z = self.logits.astype(np.float64)
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self.log_probs)

    @property
    def loss(self) -> np.ndarray:
        """Per-sample cross-entropy."""
        return -self.log_probs[np.arange(len(self)), self.labels]

    @staticmethod
    def concat(parts: list[Signals]) -> Signals:
        keys = set.intersection(*(set(p.extra) for p in parts)) if parts else set()
        return Signals(
            logits=np.concatenate([p.logits for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            member=np.concatenate([p.member for p in parts]),
            extra={k: np.concatenate([p.extra[k] for p in parts]) for k in keys},
        )


def compute_signals(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    member: np.ndarray,
    *,
    preprocess: Preprocess,
    device: torch.device,
    postprocess=None,
    batch_size: int = 4096,
) -> Signals:
    """Logits of `model` (in eval mode) for queries (x, y), with the defense's test-time change."""
    logits = predict_logits(model, x, preprocess=preprocess, device=device, batch_size=batch_size)
    if postprocess is not None:
        with torch.no_grad():
            logits = postprocess(logits.to(device)).float().cpu()
    return Signals(
        logits=logits.numpy().astype(np.float32),
        labels=y.cpu().numpy().astype(np.int64),
        member=np.asarray(member, dtype=bool),
    )
