"""mia_bench.overrides reads overrides as Hydra does: sweeps, quoted values, lists, prefixes."""

from __future__ import annotations

import pytest

from mia_bench import overrides
from mia_bench.repro.targets import TARGETS


def _hydra_jobs(args: list[str]) -> list[list[str]]:
    """The jobs Hydra's basic sweeper itself builds from the overrides (its own code, as the
    reference that mia_bench.overrides must agree with)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(args)
    return BasicSweeper.split_arguments(parsed, None)[0]


def test_expand_is_the_cartesian_product_of_the_sweeps_in_order():
    got = overrides.expand(["a=1,2", "b=x", "+c=[1,2],[3]"])
    assert got == [
        ["a=1", "b=x", "+c=[1,2]"],
        ["a=1", "b=x", "+c=[3]"],
        ["a=2", "b=x", "+c=[1,2]"],
        ["a=2", "b=x", "+c=[3]"],
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["a=1,2", "b=3"],
        ["p='a,b',\"c d\"", "q=[x,y]"],  # quoted commas do not sweep; a list is one value
        ["seed=range(0,3)", "m=choice(u,v)", "+experiment=e1,e2", "x=1", "x=2,3"],
        ["defense.w=1e-3,0.1", "attack=[loss,nn]", "++dataset.verify=false"],
    ],
)
def test_expand_agrees_with_hydras_basic_sweeper(args):
    assert overrides.expand(args) == _hydra_jobs(args)


def test_expand_agrees_with_hydra_on_every_target_sweep():
    for target in TARGETS.values():
        for sweep in target.sweeps:
            args = [*sweep.overrides, "seed=0,1,2"]
            assert overrides.expand(args) == _hydra_jobs(args), (target.name, sweep.name)


def test_interval_sweeps_cannot_be_expanded():
    with pytest.raises(ValueError, match="basic sweeper"):
        overrides.expand(["lr=interval(0.1,1.0)"])


def test_key_of_drops_prefixes_and_keeps_groups_and_packages():
    assert overrides.key_of("++dataset.verify=false") == "dataset.verify"
    assert overrides.key_of("+experiment=a,b") == "experiment"
    assert overrides.key_of("~trainer.stack") == "trainer.stack"
    assert overrides.key_of("hydra/launcher=joblib") == "hydra/launcher"
    assert overrides.key_of("model@shadow=mlp") == "model@shadow"


def test_merge_keeps_the_first_position_and_the_last_value():
    assert overrides.merge(["a=1", "+b=2"], ["++b=3", "c=4"], ["a=5"]) == ["a=5", "++b=3", "c=4"]


def test_values_of_sweeps_and_lists():
    assert overrides.sweep_values("defense.alpha=0.5,1,2") == ["0.5", "1", "2"]
    assert overrides.sweep_values("a=[1,2],[3]") == ["[1,2]", "[3]"]
    assert overrides.sweep_values("a='x,y'") == ["'x,y'"]  # quoted: one value
    assert overrides.sweep_values("a=[1,2]") == ["[1,2]"]
    assert overrides.list_items("attack=[loss,nn,lira]") == ["loss", "nn", "lira"]
    assert overrides.list_items("attack=loss") == ["loss"]
    assert overrides.list_items("attack=['a,b',c]") == ["a,b", "c"]
    with pytest.raises(ValueError, match="sweeps"):
        overrides.list_items("attack=[a],[b]")
