"""Shared by the image datasets: uint8 (N, C, H, W) tensors plus the normalisation to apply."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mia_bench.data.base import TensorData
from mia_bench.errors import ConfigError


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, on the [0, 1] scale."""
    xf = x.double().div_(255.0).transpose(0, 1).reshape(x.shape[1], -1)
    return tuple(xf.mean(1).tolist()), tuple(xf.std(1).tolist())


def pooled(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
    """(images, labels) of a dataset's files pooled in file order, the test file last;
    `n_train` counts the rows before it."""
    return {
        "x": torch.from_numpy(np.concatenate([p[0] for p in parts])),
        "y": torch.from_numpy(np.concatenate([p[1] for p in parts])),
        "n_train": int(sum(len(p[1]) for p in parts[:-1])),
    }


def _per_channel(value: Sequence[float], channels: int, key: str) -> tuple[float, ...]:
    vals = tuple(float(v) for v in value)
    if len(vals) == 1:
        vals = vals * channels
    if len(vals) != channels:
        raise ConfigError(key, f"needs 1 or {channels} values (one per channel), got {list(vals)}")
    return vals


def image_data(
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    meta: dict | None = None,
) -> TensorData:
    """`mean`/`std` (on the [0, 1] scale, as torchvision's Normalize takes them): given in the
    dataset's YAML, or null to use the statistics of the pooled images."""
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(
            f"{name}: images must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
        )
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ConfigError(
            "dataset",
            f"{name}: labels span {int(y.min())}..{int(y.max())}, expected 0..{num_classes - 1}",
        )
    c = x.shape[1]
    if mean is None or std is None:
        m, s = channel_stats(x)
        mean, std = (m if mean is None else mean), (s if std is None else std)
    mean_t = _per_channel(mean, c, "dataset.mean")
    std_t = _per_channel(std, c, "dataset.std")
    if any(s <= 0 for s in std_t):
        raise ConfigError("dataset.std", f"must be positive, got {list(std_t)}")
    return TensorData(
        name=name,
        x=x.contiguous(),
        y=y.long(),
        num_classes=num_classes,
        kind="image",
        mean=mean_t,
        std=std_t,
        meta=meta or {},
    )
