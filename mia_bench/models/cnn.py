"""Small CNN for image data: [conv3x3-BN-ReLU-maxpool] blocks, global average pool, linear."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mia_bench.models.base import Classifier


class SmallCNN(Classifier):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64, 128),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"model=small_cnn needs image input (C, H, W), got shape {tuple(input_shape)}; "
                "use model=mlp for tabular data"
            )
        c_in, h, w = input_shape
        layers: list[nn.Module] = []
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            # Pool only while the map is larger than 2x2, so 8x8 digits and 32x32 CIFAR both fit.
            if min(h, w) > 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self._make_head(c_in, num_classes, dropout)
