"""Membership inference attacks, one family per file, built from `conf/attack/<name>.yaml`."""

from __future__ import annotations

from omegaconf import DictConfig

from mia_bench.attacks.base import Attack, ReferenceAttack
from mia_bench.config_objects import instantiate


def build_attacks(cfg_attack: DictConfig, seed: int = 0) -> list[Attack]:
    """One Attack per key of `cfg.attack`, in config order; `name` is set to that key. An
    attack that takes a `seed` gets the run's unless its config sets one; a bad value is a
    ConfigError naming `attack.<name>.<key>`."""
    attacks = []
    for name, sub in (cfg_attack or {}).items():
        attack = instantiate(
            f"attack.{name}", sub, skip=(), offered={"seed": seed}, errors=(TypeError, ValueError)
        )
        attack.name = name
        attacks.append(attack)
    return attacks


__all__ = ["Attack", "ReferenceAttack", "build_attacks"]
