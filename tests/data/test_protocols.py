"""Split protocols of the three papers: sizes, disjointness, what the seed controls."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from mia_bench.data.splits import ccl_split, crl_split, make_split, relaxloss_split
from mia_bench.errors import ConfigError

SPLIT_DIR = Path(__file__).resolve().parents[2] / "conf" / "split"


def _disjoint(*sets: np.ndarray) -> bool:
    allidx = np.concatenate(sets)
    return len(allidx) == len(np.unique(allidx))


@pytest.mark.parametrize(
    "n,target,shadow",
    # RelaxLoss App. B.1 Table 3: Purchase100 39,465 / 39,464, Texas100 13,466 / 13,466.
    [(197_324, 39_465, 39_464), (67_330, 13_466, 13_466)],
)
def test_relaxloss_tabular_sizes_match_the_paper(n, target, shadow):
    s = relaxloss_split(n, "tabular", seed=0)
    ((st, se),) = s.shadows
    assert (len(s.target_train), len(s.target_test)) == (target, target)
    assert (len(st), len(se)) == (shadow, shadow)
    assert len(s.reference) == int(0.6 * n) - int(0.4 * n)
    assert _disjoint(s.target_train, s.target_test, st, se, s.reference)


def test_relaxloss_unshuffled_cuts_the_stored_order_like_the_reference_code():
    n = 1000
    s = relaxloss_split(n, "tabular", seed=5, shuffle=False)
    ((st, se),) = s.shadows
    assert set(s.target_train) | set(st) == set(range(400))  # first 40%: train
    np.testing.assert_array_equal(s.reference, np.arange(400, 600))  # next 20%: reference
    assert set(s.target_test) | set(se) == set(range(600, 1000))  # then as many test samples
    other = relaxloss_split(n, "tabular", seed=6, shuffle=False)
    assert not np.array_equal(other.target_train, s.target_train)  # the seed picks the halves


def test_crl_halves_and_k_shadows_on_random_halves_of_the_shadow_half():
    s = crl_split(1000, seed=0, shadow_count=5)
    target = np.concatenate([s.target_train, s.target_test])
    assert len(s.target_train) == len(s.target_test) == 250 and len(s.reference) == 0
    pools = {frozenset(np.concatenate(p).tolist()) for p in s.shadows}
    assert len(s.shadows) == 5 and len(pools) == 1  # every shadow draws from the same half
    (pool,) = pools
    assert len(pool) == 500 and not pool & set(target.tolist())
    for tr, te in s.shadows:
        assert len(tr) == len(te) == 250 and _disjoint(tr, te)
    assert len({tuple(tr) for tr, _ in s.shadows}) == 5  # five different halves


def test_crl_odd_pool_keeps_members_and_non_members_balanced():
    s = crl_split(1003, seed=1, shadow_count=1)
    assert len(s.target_train) == len(s.target_test) == 250
    assert [len(a) for a in s.shadows[0]] == [251, 251]


def test_ccl_four_equal_parts():
    s = ccl_split(1003, seed=0)
    ((st, se),) = s.shadows
    assert [len(a) for a in (s.target_train, s.target_test, st, se)] == [250] * 4
    assert _disjoint(s.target_train, s.target_test, st, se)
    many = ccl_split(1003, seed=0, shadow_count=3)
    np.testing.assert_array_equal(many.target_train, s.target_train)
    for tr, te in many.shadows:
        assert set(tr) | set(te) == set(st) | set(se)


@pytest.mark.parametrize("name", sorted(p.stem for p in SPLIT_DIR.glob("*.yaml")))
def test_split_configs_build_disjoint_repeatable_splits(name):
    cfg = OmegaConf.load(SPLIT_DIR / f"{name}.yaml")
    a = make_split(400, "image", cfg, seed=3, shadow_count=2)
    b = make_split(400, "image", cfg, seed=3, shadow_count=2)
    for k, v in a.as_arrays().items():
        np.testing.assert_array_equal(v, b.as_arrays()[k])
    assert _disjoint(a.target_train, a.target_test, *a.shadows[0])


def _split_cfg(name: str, **settings):
    return OmegaConf.merge(OmegaConf.load(SPLIT_DIR / f"{name}.yaml"), settings)


def test_unknown_protocol_lists_the_choices():
    with pytest.raises(ConfigError, match="ccl.*crl.*relaxloss") as err:
        make_split(100, "image", OmegaConf.create({"name": "nope"}), 0, 1)
    assert err.value.key == "split._target_"
    with pytest.raises(ConfigError) as err:
        make_split(100, "image", _split_cfg("relaxloss", shuffle="no"), 0, 1)
    assert err.value.key == "split.shuffle"
    with pytest.raises(
        ConfigError, match="relaxloss takes no such setting; it takes: max_samples, shuffle$"
    ) as err:
        make_split(100, "image", _split_cfg("relaxloss", reference_fraction=0.1), 0, 1)
    assert err.value.key == "split.reference_fraction"


def test_a_split_too_small_to_train_on_names_max_samples():
    with pytest.raises(ConfigError, match="set of 1 samples") as err:
        make_split(8, "image", _split_cfg("relaxloss"), 0, 1)
    assert err.value.key == "split.max_samples"


def test_crl_reference_fraction_comes_from_the_shadow_half_only():
    plain = crl_split(1000, seed=3, shadow_count=2)
    s = crl_split(1000, seed=3, shadow_count=2, reference_fraction=0.2)
    # The target's members and queries are those of the paper's protocol, untouched.
    np.testing.assert_array_equal(s.target_train, plain.target_train)
    np.testing.assert_array_equal(s.target_test, plain.target_test)
    # 20% of the 500-sample shadow half; the shadows halve the remaining 400.
    assert len(s.reference) == 100
    target = np.concatenate([s.target_train, s.target_test])
    for tr, te in s.shadows:
        assert len(tr) == len(te) == 200
        assert _disjoint(tr, te, s.reference, target)


@pytest.mark.parametrize("bad", [-0.1, 1.0, "x", True])
def test_crl_reference_fraction_out_of_range_names_the_key(bad):
    with pytest.raises(ConfigError) as err:
        make_split(1000, "image", _split_cfg("crl", reference_fraction=bad), 0, 1)
    assert err.value.key == "split.reference_fraction"
