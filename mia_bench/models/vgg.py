"""VGG (Simonyan & Zisserman 2015) for 32x32 inputs, with BatchNorm after each convolution, as
in public CIFAR training code (pytorch-classification, used by RelaxLoss; CRL's "VGG11 with
batch normalization layers"): the convolutional configuration of the paper's Table 1, max-pools
down to 1x1 at 32x32, then one linear classifier on the 512 channels (~9.2M parameters for
VGG11 and 10 classes)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mia_bench.models.base import Classifier
from mia_bench.models.layers import global_pool, image_shape

# Channels per 3x3 convolution, "M" = 2x2 max-pool (Simonyan & Zisserman Table 1, A/B/D/E).
CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


class VGG(Classifier):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 11,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"model.depth: choose one of {sorted(CONFIGS)}, got {depth}")
        c, h, w = image_shape(input_shape, f"vgg{depth}")
        layers: list[nn.Module] = []
        for v in CONFIGS[depth]:
            if v == "M":
                # Pool while the map is at least 2x2, so 28x28 (CH-MNIST) works as well.
                if min(h, w) >= 2:
                    layers.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
                continue
            layers.append(nn.Conv2d(c, int(v), 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(v)))
            layers.append(nn.ReLU(inplace=True))
            c = int(v)
        self.body = nn.Sequential(*layers, global_pool())
        self._make_head(c, num_classes, dropout)
