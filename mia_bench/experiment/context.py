"""What every step of one run reads: the config, the data and its split, the preprocessing,
the device and the model cache. `Experiment.prepare` builds it once; the steps (models,
reference models, signals) take it as a parameter instead of the whole experiment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from mia_bench.audit.canaries import Canaries
from mia_bench.cache import ModelCache
from mia_bench.data import TensorData
from mia_bench.data.splits import Split
from mia_bench.data.transforms import Preprocess


def container(node: Any) -> Any:
    """A config node as plain Python (resolved), as results.json and cache keys hold it."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


@dataclass
class RunContext:
    """cfg: the run's config; data / split: the samples and who trains on which; device,
    preprocess: where and how models see them; cache: the model cache; progress: whether
    bars are shown; canaries: `audit=canaries`'s planted samples (else None); data_key,
    model_source: the data's content and the model's code, parts of every model's cache key;
    feature_dim: the model's penultimate width (None without a final nn.Linear)."""

    cfg: DictConfig
    data: TensorData
    split: Split
    preprocess: Preprocess
    device: torch.device
    cache: ModelCache
    progress: bool
    canaries: Canaries | None
    data_key: dict[str, Any]
    model_source: str
    feature_dim: int | None

    @property
    def eval_batch_size(self) -> int:
        return int(self.cfg.trainer.eval_batch_size)

    def fit_indices(self, role: str, train_idx: np.ndarray) -> np.ndarray:
        """What model `role` trains on: `train_idx` plus, in a canary audit, its canaries."""
        if self.canaries is None:
            return train_idx
        return self.canaries.training_indices(role, train_idx)
