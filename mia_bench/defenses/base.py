"""The Defense interface: how a model is trained, and optionally how it answers queries.

Epochs count from 0, as the reference code of RelaxLoss and CRL counts them
(`for epoch in range(num_epochs)`); both switch behaviour on `epoch % 2`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Defense(nn.Module):
    """Base class. A defense is an `nn.Module` so that learnable state (CRL's class centers)
    moves to the device with `.to(device)` and is saved with the model's checkpoint.

    Subclasses override `loss`; the rest is optional.
    """

    name: str = "none"
    # Set when `loss` reads the model's penultimate features (the trainer then computes them).
    needs_features: bool = False
    # Signals this defense cannot give, e.g. gradients for a test-time output defense.
    blocks_signals: frozenset[str] = frozenset()

    def __init__(self, num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.feature_dim = feature_dim

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The scalar training objective for one batch; `epoch` counts from 0."""
        raise NotImplementedError

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Change the architecture before training (dropout rate, GroupNorm for DP-SGD)."""
        return model

    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer, train_data: Any) -> None:
        """Called once before the first epoch (teachers, privacy engines, ...)."""

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimisers of the defense's own parameters, stepped after the model's each batch."""
        return []

    def postprocess(self, logits: torch.Tensor) -> torch.Tensor:
        """Test-time change of the model's output (MemGuard); identity by default."""
        return logits

    def describe(self) -> dict[str, Any]:
        """Parameters recorded in results.json."""
        return {"name": self.name}
