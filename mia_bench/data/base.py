"""The in-memory form every dataset is decoded to."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TensorData:
    """A whole dataset as two tensors.

    x: images as uint8 (N, C, H, W) or tabular features as float32 (N, D).
    y: int64 labels (N,).
    mean / std: per-channel (images) statistics used to normalise on the device; None for
    tabular data, which is used as is.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    kind: str  # "image" or "tabular"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"dataset {self.name}: {len(self.x)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])
