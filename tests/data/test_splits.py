import numpy as np
import pytest

from mia_bench.data.splits import Split, relaxloss_split


@pytest.mark.parametrize("kind", ["image", "tabular"])
def test_relaxloss_split_disjoint_and_sized(kind):
    s = relaxloss_split(1000, kind, seed=0)
    sets = [s.target_train, s.target_test, *s.shadows[0], s.reference]
    allidx = np.concatenate(sets)
    assert len(allidx) == len(np.unique(allidx)) == 1000
    if kind == "image":
        assert [len(a) for a in sets] == [200] * 5
    else:
        # 40% train, 20% reference, 40% test; train and test halved: also five 20% sets.
        assert [len(a) for a in sets] == [200] * 5


def test_split_depends_only_on_seed():
    a, b, c = (
        relaxloss_split(500, "image", 1),
        relaxloss_split(500, "image", 1),
        relaxloss_split(500, "image", 2),
    )
    np.testing.assert_array_equal(a.target_train, b.target_train)
    assert not np.array_equal(a.target_train, c.target_train)


def test_several_shadows_take_random_halves_of_shadow_pool():
    s = relaxloss_split(1000, "image", 0, shadow_count=4)
    pool = set(relaxloss_split(1000, "image", 0).shadows[0][0]) | set(
        relaxloss_split(1000, "image", 0).shadows[0][1]
    )
    target = set(s.target_train) | set(s.target_test)
    for tr, te in s.shadows:
        assert set(tr) | set(te) == pool
        assert not set(tr) & set(te) and not (set(tr) & target)
        assert len(tr) == len(pool) // 2
    assert not np.array_equal(s.shadows[0][0], s.shadows[1][0])


def test_split_roundtrip(tmp_path):
    s = relaxloss_split(300, "image", 0, shadow_count=2)
    s.save(tmp_path / "split.npz")
    t = Split.load(tmp_path / "split.npz")
    for k, v in s.as_arrays().items():
        np.testing.assert_array_equal(v, t.as_arrays()[k])
