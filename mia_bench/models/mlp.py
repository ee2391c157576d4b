"""Fully connected classifier; Purchase100 / Texas100 MLPs (Nasr et al. 2018) are instances."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from mia_bench.models.base import Classifier

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU}


class MLP(Classifier):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (256, 128),
        activation: str = "tanh",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"model.activation: choose one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        self.body = nn.Sequential(*layers)
        self._make_head(width, num_classes, dropout)
