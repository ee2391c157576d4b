"""A trained model as every step of a run hands it on (models, reference models, signals,
snapshots, results), and the seed each model role trains with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from mia_bench.defenses.base import Defense
from mia_bench.models import Classifier


def derive_seed(seed: int, role: str) -> int:
    """Independent, reproducible seed per model role."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{role}".encode()).digest()[:4], "little")


@dataclass
class TrainedModel:
    role: str
    model: Classifier
    defense: Defense
    train_idx: np.ndarray
    test_idx: np.ndarray
    cache_hit: bool
    seconds: float
    epoch_loss: list[float]
    # epoch count -> state_dict, for defenses with `snapshot_epochs` (early stopping)
    snapshots: dict[int, dict] = field(default_factory=dict)
