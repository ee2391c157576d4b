"""DenseNet (Huang et al. 2017) for 32x32 inputs, DenseNet-BC-121 as in public CIFAR training
code: a 3x3 stem of 2k channels (no 7x7 stem or max-pool), dense blocks of [6, 12, 24, 16]
bottleneck layers (BN-ReLU-1x1 conv to 4k, BN-ReLU-3x3 conv to k, k = 32 new channels each),
transitions that halve the channels (compression 0.5) and the resolution, and BN-ReLU-global
pool before the classifier (~7.0M parameters for 10 classes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mia_bench.models.base import Classifier
from mia_bench.models.layers import global_pool, image_shape


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_in, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Dense connectivity: every layer sees all earlier feature maps of its block.
        return torch.cat([self.branch(x), x], 1)


def transition(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.AvgPool2d(2),
    )


class DenseNet(Classifier):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        blocks: Sequence[int] = (6, 12, 24, 16),
        growth: int = 32,
        reduction: float = 0.5,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c_img, _, _ = image_shape(input_shape, "densenet")
        c = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(c_img, c, 3, padding=1, bias=False)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(Bottleneck(c, growth))
                c += growth
            if i < len(blocks) - 1:
                c_next = int(math.floor(c * reduction))
                layers.append(transition(c, c_next))
                c = c_next
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), global_pool()]
        self.body = nn.Sequential(*layers)
        self._make_head(c, num_classes, dropout)
