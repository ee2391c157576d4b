"""Membership inference attacks, one family per file, built from `conf/attack/<name>.yaml`."""

from __future__ import annotations

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from mia_bench.attacks.base import Attack, ReferenceAttack
from mia_bench.errors import ConfigError


def build_attacks(cfg_attack: DictConfig, seed: int = 0) -> list[Attack]:
    """One Attack per key of `cfg.attack`, in config order; `name` is set to that key."""
    attacks = []
    for name, sub in (cfg_attack or {}).items():
        params = OmegaConf.to_container(sub, resolve=True)
        target = params.pop("_target_", None)
        if target is None:
            raise ConfigError(f"attack.{name}", "names no _target_ class")
        cls = get_class(target)
        if "seed" in cls.__init__.__code__.co_varnames:
            params.setdefault("seed", seed)
        try:
            attack = cls(**params)
        except ConfigError as err:  # raised with the parameter's name as key
            raise ConfigError(f"attack.{name}.{err.key}", err.message) from err
        except (TypeError, ValueError) as err:
            # "key: message" from the attack's constructor names the exact setting
            key, sep, message = str(err).partition(": ")
            if sep and key.isidentifier() and key in params:
                raise ConfigError(f"attack.{name}.{key}", message) from err
            raise ConfigError(f"attack.{name}", str(err)) from err
        attack.name = name
        attacks.append(attack)
    return attacks


__all__ = ["Attack", "ReferenceAttack", "build_attacks"]
