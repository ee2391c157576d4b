"""Training-time (and test-time) defenses; one file each, built from `conf/defense/<name>.yaml`."""

from __future__ import annotations

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from mia_bench.defenses.base import Defense
from mia_bench.errors import ConfigError

NO_DEFENSE = OmegaConf.create({"name": "none", "_target_": "mia_bench.defenses.none.NoDefense"})


def build(cfg_defense: DictConfig | dict, num_classes: int, feature_dim: int) -> Defense:
    """Instantiate a defense from its config; every YAML key but `name`/`_target_` is passed to
    the constructor, which refuses bad values with a `ConfigError` naming `defense.<key>`."""
    params = OmegaConf.to_container(OmegaConf.create(cfg_defense), resolve=True)
    name = params.pop("name", None)
    target = params.pop("_target_", None)
    if target is None:
        raise ConfigError("defense._target_", f"defense {name!r} names no class")
    cls = get_class(target)
    try:
        defense = cls(num_classes=num_classes, feature_dim=feature_dim, **params)
    except TypeError as err:
        raise ConfigError("defense", f"{name}: {err}") from err
    return defense


__all__ = ["Defense", "build", "NO_DEFENSE"]
