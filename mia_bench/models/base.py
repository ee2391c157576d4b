"""What every architecture provides: logits from `forward`, penultimate features from
`features`, and the last linear layer as `classifier` (so dropout or a defense can hook in
front of it without knowing the architecture)."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """Base class: subclasses build `self.body` (input -> features) and call `_make_head`."""

    feature_dim: int

    def _make_head(self, feature_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        self.feature_dim = feature_dim
        # Dropout sits before the classifier, where the dropout defense of RelaxLoss App. B.5
        # puts it; p = 0 is the identity.
        self.head_dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation (global-pool output or last hidden layer), (B, D)."""
        return self.body(x)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        return self.classifier(self.head_dropout(feats)), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]
