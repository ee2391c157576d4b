"""Wide ResNet (Zagoruyko & Komodakis 2016), WRN-28-2 as in LiRA (Carlini et al. 2022), whose
reference code uses objax's WideResNet: a 3x3 stem of 16 channels, three groups of (depth-4)/6
pre-activation blocks (BN-ReLU-conv3x3, BN-ReLU-conv3x3) with 16k/32k/64k channels, stride 2 at
groups 2 and 3, a 1x1 projection of the activated input where the shape changes, then
BN-ReLU-global pool and a linear classifier (~1.47M parameters for WRN-28-2, 10 classes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mia_bench.models.base import Classifier
from mia_bench.models.layers import global_pool, he_init, image_shape, stages


class WideBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU())
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.mid = nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU())
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.proj = None
        if stride != 1 or c_in != c_out:
            self.proj = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pre(x)
        out = self.conv2(self.mid(self.conv1(a)))
        return out + (self.proj(a) if self.proj is not None else x)


class WideResNet(Classifier):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 28,
        width: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, _, _ = image_shape(input_shape, f"wrn{depth}_{width}")
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"model.depth must be 6n+4 (16, 22, 28, 40), got {depth}")
        n = (depth - 4) // 6
        widths = (16 * width, 32 * width, 64 * width)
        self.body = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1, bias=False),
            *stages(WideBlock, 16, widths, (n, n, n)),
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(),
            global_pool(),
        )
        he_init(self)
        self._make_head(widths[-1], num_classes, dropout)
