"""Typed checks of one setting, shared by every config group (trainer, split, dataset,
defense, attack, audit). Each returns the value as its type or raises a `ConfigError` whose
key is the one given: the full setting (`trainer.lr`, `defense.alpha`), or, in an attack's
constructor, the parameter's name alone, which the builder qualifies as
`attack.<name>.<parameter>` (mia_bench.config_objects.instantiate)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any, TypeVar

from mia_bench.errors import ConfigError

T = TypeVar("T")


def setting(cfg: Mapping[str, Any], dotted: str, where: str = "") -> Any:
    """The value at `dotted` (e.g. "trainer.lr") of a nested config, `cfg` being the node at
    `where` ("" for the root); a ConfigError naming the full key when a part of the path is
    missing. Defaults live in conf/ YAML, not here."""
    node: Any = cfg
    for part in dotted.split("."):
        if node is None or part not in node:
            raise ConfigError(
                f"{where}.{dotted}" if where else dotted, "is missing from the config"
            )
        node = node[part]
    return node


def number(
    key: str,
    value: object,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """`value` as a float: a finite real number (not a bool) within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(key, f"must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):  # NaN would pass every comparison below
        raise ConfigError(key, f"must be a finite number, got {value}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(key, f"must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(key, f"must be {'<' if hi_open else '<='} {hi}, got {value}")
    return v


def integer(key: str, value: object, *, lo: int | None = None, hi: int | None = None) -> int:
    """`value` as an int: an integer (not a bool) within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(key, f"must be an integer, got {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(key, f"must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ConfigError(key, f"must be <= {hi}, got {value}")
    return int(value)


def optional_integer(key: str, value: object, *, lo: int | None = None) -> int | None:
    """None (the YAML's null: off / all), or `integer(key, value, lo=lo)`."""
    return None if value is None else integer(key, value, lo=lo)


def choice(key: str, value: T, options: Sequence[T]) -> T:
    """`value` when it is one of `options`."""
    if value not in options:
        raise ConfigError(key, f"choose one of {list(options)}, got {value!r}")
    return value


def flag(key: str, value: object) -> bool:
    """`value` when it is true or false (not 0 / 1 or a string)."""
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")
    return value


def widths(key: str, values: object) -> list[int]:
    """A list of positive layer widths (an MLP's hidden layers)."""
    try:
        out = list(values)  # type: ignore[call-overload]
    except TypeError:
        raise ConfigError(key, f"must be a list of positive layer widths, got {values!r}") from None
    if not all(isinstance(h, Integral) and not isinstance(h, bool) and h > 0 for h in out):
        raise ConfigError(key, f"must be a list of positive layer widths, got {out}")
    return [int(h) for h in out]
