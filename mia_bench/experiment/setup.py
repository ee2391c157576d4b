"""Step 1 of a run, the checks and inputs that come before any training: the output folder,
the device, the dataset with its preprocessing, and whether the model can serve the defense."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import DictConfig

from mia_bench.data import TensorData, load_dataset
from mia_bench.data.splits import Split
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses import Defense
from mia_bench.errors import ConfigError
from mia_bench.models import Classifier


class Stages:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_writable(folder: Path) -> None:
    """Refuse, before any training, an output folder that cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            "hydra.run.dir",
            f"cannot write to the output folder {folder} ({err.strerror}); choose another with "
            "hydra.run.dir=... (or hydra.sweep.dir=... for -m)",
        ) from err


def load_data(cfg: DictConfig) -> tuple[TensorData, Preprocess]:
    """The dataset as tensors, and how a model sees its samples (normalisation, augmentation)."""
    data = load_dataset(cfg.dataset, cfg.paths.data_dir)
    if data.num_classes < 2:
        key = "dataset.n_classes" if "n_classes" in cfg.dataset else "dataset"
        raise ConfigError(key, f"needs at least 2 classes, got {data.num_classes}")
    # Augmentation is an image dataset's setting: tabular configs (and a dataset config written
    # by hand) have no `augment`, or name only the parts they use.
    aug = cfg.dataset.get("augment") or {}
    preprocess = Preprocess(
        data.kind,
        data.mean,
        data.std,
        crop_padding=int(aug.get("crop_padding", 0)),
        flip=bool(aug.get("flip", False)),
    )
    return data, preprocess


def warn_large_batch(cfg: DictConfig, split: Split) -> None:
    """A batch larger than every training set is legal but makes each epoch one step."""
    largest = max(len(a) for a in [split.target_train, *(t for t, _ in split.shadows)])
    if cfg.trainer.batch_size > largest:
        logging.getLogger("mia_bench").warning(
            "trainer.batch_size=%d is larger than every training set (largest: %d "
            "samples); each epoch is one full-batch step",
            cfg.trainer.batch_size,
            largest,
        )


def check_features(defense: Defense, model: Classifier, cfg: DictConfig) -> None:
    """A defense that reads penultimate features needs a model that has them (a model of any
    architecture has them at the input of its last nn.Linear)."""
    if defense.needs_features and model.feature_dim is None:
        name = cfg.model.get("name") or cfg.model.get("_target_")
        raise ConfigError(
            "model",
            f"{name} has no nn.Linear whose input could serve as the penultimate features that "
            f"defense={defense.name} needs; end the model with an nn.Linear, or choose another "
            "defense",
        )
