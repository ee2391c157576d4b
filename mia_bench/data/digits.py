"""scikit-learn's bundled 8x8 digits (UCI optdigits test set), as 1x8x8 uint8 images."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits as _sk_load_digits

from mia_bench.data.base import TensorData


def load_digits() -> TensorData:
    """1797 images with pixel values 0..16, rescaled to 0..255 and stored as uint8."""
    bunch = _sk_load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    x = torch.from_numpy(images)
    mean = float(x.float().mean() / 255.0)
    std = float(x.float().std() / 255.0)
    return TensorData(
        name="digits",
        x=x,
        y=torch.from_numpy(bunch.target.astype(np.int64)),
        num_classes=10,
        kind="image",
        mean=(mean,),
        std=(std,),
    )
