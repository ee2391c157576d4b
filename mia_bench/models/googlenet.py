"""GoogLeNet (Szegedy et al. 2015) for 32x32 inputs, as in public CIFAR training code: a 3x3
stem of 192 channels instead of the 7x7/max-pool stem, then the paper's inception modules 3a-5b
(Table 1 filter counts) with BatchNorm after every convolution and the 5x5 branch as two 3x3
convolutions, max-pools after 3b and 4e, global average pooling to 1024 features and one
linear classifier (~6.2M parameters for 10 classes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mia_bench.models.base import Classifier
from mia_bench.models.layers import global_pool, image_shape


def _cbr(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Inception(nn.Module):
    """Four parallel branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; pool -> 1x1."""

    def __init__(self, c_in: int, n1: int, n3r: int, n3: int, n5r: int, n5: int, pool: int) -> None:
        super().__init__()
        self.b1 = nn.Sequential(*_cbr(c_in, n1, 1))
        self.b2 = nn.Sequential(*_cbr(c_in, n3r, 1), *_cbr(n3r, n3, 3))
        self.b3 = nn.Sequential(*_cbr(c_in, n5r, 1), *_cbr(n5r, n5, 3), *_cbr(n5, n5, 3))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_cbr(c_in, pool, 1))
        self.out_channels = n1 + n3 + n5 + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


# (n1x1, n3x3 reduce, n3x3, n5x5 reduce, n5x5, pool proj) of modules 3a..5b; "M": max-pool.
MODULES: list[tuple[int, ...] | str] = [
    (64, 96, 128, 16, 32, 32),
    (128, 128, 192, 32, 96, 64),
    "M",
    (192, 96, 208, 16, 48, 64),
    (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64),
    (256, 160, 320, 32, 128, 128),
    "M",
    (256, 160, 320, 32, 128, 128),
    (384, 192, 384, 48, 128, 128),
]


class GoogLeNet(Classifier):
    def __init__(self, input_shape: Sequence[int], num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        c, _, _ = image_shape(input_shape, "googlenet")
        layers: list[nn.Module] = _cbr(c, 192, 3)
        c = 192
        for m in MODULES:
            if m == "M":
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
                continue
            block = Inception(c, *m)
            layers.append(block)
            c = block.out_channels
        self.body = nn.Sequential(*layers, global_pool())
        self._make_head(c, num_classes, dropout)
