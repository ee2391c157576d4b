"""Datasets: each family in its own file, all decoded to `TensorData`."""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from mia_bench.data.base import TensorData
from mia_bench.data.chmnist import load_chmnist
from mia_bench.data.cifar import load_cifar10, load_cifar100
from mia_bench.data.digits import load_digits
from mia_bench.data.svhn import load_svhn
from mia_bench.data.synthetic import load_synthetic
from mia_bench.data.tabular import load_purchase100, load_texas100
from mia_bench.errors import ConfigError

LOADERS: dict[str, Callable[..., TensorData]] = {
    "synthetic": load_synthetic,
    "digits": load_digits,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "svhn": load_svhn,
    "chmnist": load_chmnist,
    "purchase100": load_purchase100,
    "texas100": load_texas100,
}


def load_dataset(cfg_dataset: DictConfig, data_dir: str | None = None) -> TensorData:
    """Load the dataset that `cfg.dataset` names, as tensors on the CPU."""
    name = cfg_dataset.get("name")
    if name not in LOADERS:
        raise ConfigError(
            "dataset.name", f"unknown dataset {name!r}; choose one of {sorted(LOADERS)}"
        )
    params = OmegaConf.to_container(cfg_dataset, resolve=True)
    params.pop("name", None)
    params.pop("kind", None)
    return LOADERS[name](data_dir=data_dir, **params)


__all__ = ["TensorData", "load_dataset", "LOADERS"]
