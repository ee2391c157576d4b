"""ResNets for 32x32 inputs.

ResNet20: He et al. (2016) Sec. 4.2, the CIFAR ResNet of 6n+2 layers (n = 3): a 3x3 stem of 16
channels, three stages of n basic blocks with 16/32/64 channels (stride 2 at stages 2 and 3),
global average pooling, a linear classifier. Shortcuts that change shape are 1x1 convolutions
with BatchNorm (option B), as in the pytorch-classification code that RelaxLoss used (~0.27M
parameters for 10 classes, He et al. Table 6).

ResNet18: the ImageNet ResNet-18 (He et al. 2016, Table 1: [2, 2, 2, 2] basic blocks, 64-512
channels) with the CIFAR stem of public CIFAR training code: one 3x3 convolution, stride 1,
no max-pool (~11.2M parameters).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mia_bench.models.base import Classifier
from mia_bench.models.layers import conv_bn_relu, global_pool, he_init, image_shape, stages


class BasicBlock(nn.Module):
    """relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            conv_bn_relu(c_in, c_out, 3, stride),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class CifarResNet(Classifier):
    """He et al. (2016) CIFAR ResNet of `depth` = 6n + 2 layers (20, 32, 44, 56, 110)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 20,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, _, _ = image_shape(input_shape, f"resnet{depth}")
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"model.depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        self.body = nn.Sequential(
            conv_bn_relu(c, 16), *stages(BasicBlock, 16, (16, 32, 64), (n, n, n)), global_pool()
        )
        he_init(self)
        self._make_head(64, num_classes, dropout)


class ResNet18(Classifier):
    """ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool)."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        c, _, _ = image_shape(input_shape, "resnet18")
        self.body = nn.Sequential(
            conv_bn_relu(c, 64),
            *stages(BasicBlock, 64, (64, 128, 256, 512), (2, 2, 2, 2)),
            global_pool(),
        )
        he_init(self)
        self._make_head(512, num_classes, dropout)
