"""Synthetic tabular data from scikit-learn's make_classification: no files, no network."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_classification

from mia_bench.data.base import TensorData


def load_synthetic(
    n_samples: int = 10000,
    n_features: int = 40,
    n_informative: int = 24,
    n_redundant: int = 4,
    n_classes: int = 10,
    n_clusters_per_class: int = 2,
    class_sep: float = 1.5,
    flip_y: float = 0.05,
    generator_seed: int = 1234,
    **_: object,
) -> TensorData:
    """Gaussian clusters per class (Guyon 2003 design), standardised per feature."""
    x, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=n_redundant,
        n_classes=n_classes,
        n_clusters_per_class=n_clusters_per_class,
        class_sep=class_sep,
        flip_y=flip_y,
        random_state=generator_seed,
    )
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return TensorData(
        name="synthetic",
        x=torch.from_numpy(x.astype(np.float32)),
        y=torch.from_numpy(y.astype(np.int64)),
        num_classes=n_classes,
        kind="tabular",
    )
