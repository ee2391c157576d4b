"""Synthetic tabular data from scikit-learn's make_classification: no files, no network."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_classification

from mia_bench import checks
from mia_bench.data.base import TensorData
from mia_bench.errors import ConfigError


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
) -> TensorData:
    """Gaussian clusters per class (Guyon 2003 design), standardised per feature."""
    for key, v in {
        "n_samples": n_samples,
        "n_features": n_features,
        "n_informative": n_informative,
        "n_redundant": n_redundant,
        "n_classes": n_classes,
        "n_clusters_per_class": n_clusters_per_class,
        "generator_seed": generator_seed,
    }.items():
        checks.integer(f"dataset.{key}", v, lo=0 if key in ("n_redundant", "generator_seed") else 1)
    checks.number("dataset.class_sep", class_sep, lo=0.0)
    checks.number("dataset.flip_y", flip_y, lo=0.0, hi=1.0)
    if n_informative + n_redundant > n_features:
        raise ConfigError("dataset.n_features", "must be >= n_informative + n_redundant")
    if n_classes * n_clusters_per_class > 2**n_informative:
        raise ConfigError(
            "dataset.n_informative", "2**n_informative must be >= n_classes * n_clusters_per_class"
        )
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
