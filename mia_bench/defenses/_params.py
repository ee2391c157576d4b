"""Checks shared by the defenses' constructors: each raises `ConfigError("defense.<key>")`."""

from __future__ import annotations

from numbers import Integral, Real

from mia_bench.errors import ConfigError


def number(
    key: str,
    value,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """`value` as a float within [lo, hi] (open ends where asked)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"defense.{key}", f"must be a number, got {value!r}")
    v = float(value)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(f"defense.{key}", f"must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(f"defense.{key}", f"must be {'<' if hi_open else '<='} {hi}, got {v}")
    return v


def integer(key: str, value, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"defense.{key}", f"must be an integer, got {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(f"defense.{key}", f"must be >= {lo}, got {value}")
    return int(value)


def choice(key: str, value, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ConfigError(f"defense.{key}", f"choose one of {list(options)}, got {value!r}")
    return value
