"""Pieces shared by the convolutional architectures."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn


def image_shape(input_shape: Sequence[int], model: str) -> tuple[int, int, int]:
    """(C, H, W) of the dataset's images; tabular input is refused with a hint."""
    if len(input_shape) != 3:
        raise ValueError(
            f"model={model} needs image input (C, H, W), got shape {tuple(input_shape)}; "
            "use model=mlp (or mlp_purchase / mlp_texas) for tabular data"
        )
    c, h, w = (int(v) for v in input_shape)
    return c, h, w


def conv_bn_relu(
    c_in: int, c_out: int, kernel: int = 3, stride: int = 1, bias: bool = False
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=bias),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def he_init(module: nn.Module) -> None:
    """He et al. (2015) normal init of convolutions (fan-out, as in the ResNet papers' code),
    BatchNorm scale 1 and shift 0; linear layers keep PyTorch's default."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def global_pool() -> nn.Sequential:
    """Global average pooling to a (B, C) feature vector: the papers' penultimate features,
    and what lets one architecture take 28x28, 32x32 and 64x64 inputs."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def stages(
    block: Callable[[int, int, int], nn.Module],
    c_in: int,
    widths: Sequence[int],
    blocks: Sequence[int],
) -> list[nn.Module]:
    """The residual stages of a ResNet / Wide ResNet: `blocks[i]` blocks of width `widths[i]`,
    the first block of every stage after the first with stride 2 (He et al. 2016, Sec. 3.3)."""
    layers: list[nn.Module] = []
    for i, (w, n) in enumerate(zip(widths, blocks)):
        for b in range(n):
            layers.append(block(c_in, w, 2 if (i > 0 and b == 0) else 1))
            c_in = w
    return layers
