"""Hydra override strings (`key=value`, `+key=value`, `key=a,b` sweeps, `key=[a,b]` lists),
read with Hydra's public override parser (`OverridesParser.create()`, the parser Hydra's own
sweepers use), so that quoting, nesting and sweep functions follow Hydra's grammar exactly.

Used by the report (the jobs a sweep's multirun.yaml stands for) and by the reproduction
tooling (merging override lists, thinning sweeps, composing every job of a target).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cache

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override


@cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


def parse(overrides: Sequence[str]) -> list[Override]:
    """Hydra's reading of the overrides; a malformed one raises Hydra's OverrideParseException."""
    return _parser().parse_overrides(list(overrides))


def key_of(override: str) -> str:
    """The config key or group an override sets, without its `+`/`++`/`~` prefix:
    `++dataset.verify=false` -> `dataset.verify`, `hydra/launcher=joblib` -> itself,
    `group@pkg=x` -> `group@pkg`."""
    (o,) = parse([override])
    return o.key_or_group + (f"@{o.package}" if o.package else "")


def merge(*lists: Sequence[str]) -> list[str]:
    """Overrides in order; a later one for the same key replaces the earlier one in place, so
    that Hydra never sees a key twice."""
    out: dict[str, str] = {}
    for lst in lists:
        for o in lst:
            out[key_of(o)] = o  # an existing key keeps its position
    return list(out.values())


def sweep_values(override: str) -> list[str]:
    """The values a discrete sweep takes, each as override text (`a=0.5,1.0` -> ['0.5',
    '1.0'], `a=[1,2],[3]` -> ['[1,2]', '[3]'], `a=range(0,3)` -> ['0', '1', '2']); an override
    that sweeps nothing gives its one value."""
    (o,) = parse([override])
    if o.is_discrete_sweep():
        return list(o.sweep_string_iterator())
    return [o.get_value_element_as_str()]


def list_items(override: str) -> list[str]:
    """The items of a list value (`attack=[loss,nn]` -> ['loss', 'nn']); a plain value is a
    list of one, no value (`~key`) none."""
    (o,) = parse([override])
    if o.is_sweep_override():
        raise ValueError(f"{override!r} sweeps; a list or a single value is expected")
    value = o.value()
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def expand(overrides: Sequence[str]) -> list[list[str]]:
    """Every job of a multirun with these overrides, as the basic sweeper makes them: the
    cartesian product of the swept keys in their order (a later override of a key replaces
    an earlier one in place), each job a list of `key=value` overrides."""
    choices: dict[str, list[str]] = {}
    for o in parse(overrides):
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ValueError(f"{o.input_line!r}: the basic sweeper cannot expand this sweep")
            choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            choices[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*choices.values())]
