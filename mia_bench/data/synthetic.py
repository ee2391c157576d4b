"""Synthetic tabular data from scikit-learn's make_classification: no files, no network."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_classification

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
    **_: object,
) -> TensorData:
    """Gaussian clusters per class (Guyon 2003 design), standardised per feature."""
    counts = {
        "n_samples": n_samples,
        "n_features": n_features,
        "n_informative": n_informative,
        "n_classes": n_classes,
        "n_clusters_per_class": n_clusters_per_class,
    }
    for key, v in {**counts, "n_redundant": n_redundant, "generator_seed": generator_seed}.items():
        low = 0 if key in ("n_redundant", "generator_seed") else 1
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"dataset.{key}", f"must be an integer >= {low}, got {v!r}")
    for key, v, lo, hi in [("class_sep", class_sep, 0.0, None), ("flip_y", flip_y, 0.0, 1.0)]:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo or (hi and v > hi):
            raise ConfigError(
                f"dataset.{key}", f"must be a number in [{lo}, {hi or 'inf'}), got {v!r}"
            )
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
