"""Architectures. Each takes (input_shape, num_classes, **yaml params) and is a `Classifier`."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from mia_bench.errors import ConfigError
from mia_bench.models.base import Classifier


def build_model(cfg_model: DictConfig, input_shape: Sequence[int], num_classes: int) -> Classifier:
    """Instantiate `cfg.model` for data of `input_shape` with `num_classes` outputs."""
    params = OmegaConf.to_container(cfg_model, resolve=True)
    params.pop("name", None)
    target = params.pop("_target_", None)
    if target is None:
        raise ConfigError("model._target_", "the model config names no class")
    cls = get_class(target)
    try:
        return cls(input_shape=tuple(input_shape), num_classes=num_classes, **params)
    except (TypeError, ValueError) as err:
        raise ConfigError("model", f"{cfg_model.get('name', target)}: {err}") from err


__all__ = ["Classifier", "build_model"]
