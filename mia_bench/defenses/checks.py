"""Range checks for defense parameters, raising `ConfigError("defense.<key>", ...)`.

Defenses call these in their constructors; the pipeline builds every defense in `prepare()`,
so a bad value stops the run before any model is trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

from mia_bench.errors import ConfigError


def number(
    key: str,
    value: object,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """`value` as a float, refused unless it is a real number within the given bounds."""
    full = f"defense.{key}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(full, f"must be a number, got {value!r}")
    v = float(value)
    if v != v:  # NaN passes every comparison below
        raise ConfigError(full, "must be a number, got nan")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(full, f"must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(full, f"must be {'<' if hi_open else '<='} {hi}, got {value}")
    return v


def integer(key: str, value: object, *, lo: int | None = None) -> int:
    """`value` as an int, refused unless it is an integer (not a bool) of at least `lo`."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"defense.{key}", f"must be an integer, got {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(f"defense.{key}", f"must be >= {lo}, got {value}")
    return int(value)


def choice(key: str, value: object, options: Sequence[str]) -> str:
    if value not in options:
        raise ConfigError(f"defense.{key}", f"choose one of {list(options)}, got {value!r}")
    return str(value)


def flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"defense.{key}", f"must be true or false, got {value!r}")
    return value
