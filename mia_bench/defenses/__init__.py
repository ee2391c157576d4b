"""Training-time (and test-time) defenses; one file each, built from `conf/defense/<name>.yaml`."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from mia_bench.config_objects import instantiate
from mia_bench.defenses.base import Defense

NO_DEFENSE = OmegaConf.create({"name": "none", "_target_": "mia_bench.defenses.none.NoDefense"})


def build(cfg_defense: DictConfig | dict, num_classes: int, feature_dim: int) -> Defense:
    """Instantiate a defense from its config; every YAML key but `name`/`_target_` is passed to
    the constructor, which refuses bad values with a `ConfigError` naming `defense.<key>`."""
    shape = {"num_classes": num_classes, "feature_dim": feature_dim}
    return instantiate("defense", cfg_defense, given=shape, errors=(TypeError,))


__all__ = ["Defense", "build", "NO_DEFENSE"]
