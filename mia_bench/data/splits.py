"""Member / non-member index sets for the target, the shadows and the reference set.

A split is a pure function of (dataset size, split config, seed), so it can be recomputed
anywhere and is saved with each run (`split.npz`). Target and shadow data never overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mia_bench import checks
from mia_bench.config_objects import instantiate
from mia_bench.errors import ConfigError
from mia_bench.io import atomic_write_npz

log = logging.getLogger("mia_bench")


@dataclass
class Split:
    """Index sets into the pooled dataset.

    target_train / target_test: the target's members and non-members (the attack queries).
    shadows: one (train, test) pair per shadow model: what the attacker knows to be in / out.
    reference: data disjoint from all of the above (for defenses that need a reference set).
    """

    target_train: np.ndarray
    target_test: np.ndarray
    shadows: list[tuple[np.ndarray, np.ndarray]]
    reference: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def as_arrays(self) -> dict[str, np.ndarray]:
        out = {"target_train": self.target_train, "target_test": self.target_test}
        for i, (tr, te) in enumerate(self.shadows):
            out[f"shadow{i}_train"] = tr
            out[f"shadow{i}_test"] = te
        out["reference"] = self.reference
        return out

    def save(self, path: str | Path) -> None:
        atomic_write_npz(path, **self.as_arrays())

    @classmethod
    def load(cls, path: str | Path) -> Split:
        with np.load(path) as z:
            k = sum(1 for name in z.files if name.endswith("_train") and name.startswith("shadow"))
            return cls(
                target_train=z["target_train"],
                target_test=z["target_test"],
                shadows=[(z[f"shadow{i}_train"], z[f"shadow{i}_test"]) for i in range(k)],
                reference=z["reference"],
            )


def _random_halves(
    pool: np.ndarray, count: int, rng: np.random.Generator, equal: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` (train, test) pairs, each a fresh random halving of `pool`. An odd pool's
    extra sample is left out (`equal`) or goes to the test half."""
    h = len(pool) // 2
    out = []
    for _ in range(count):
        p = rng.permutation(pool)
        out.append((np.sort(p[:h]), np.sort(p[h : 2 * h] if equal else p[h:])))
    return out


def _shadow_sets(
    shadow_train: np.ndarray, shadow_test: np.ndarray, count: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One shadow uses the protocol's folds; k > 1 shadows each take a random half of the pool
    (the CRL protocol, Fang & Kim 2024 Sec. 5.1)."""
    if count == 1:
        return [(shadow_train, shadow_test)]
    pool = np.concatenate([shadow_train, shadow_test])
    return _random_halves(pool, count, rng, equal=False)


def relaxloss_split(
    n: int,
    kind: str,
    seed: int,
    shadow_count: int = 1,
    max_samples: int | None = None,
    shuffle: bool = True,
) -> Split:
    """RelaxLoss protocol (Chen et al. 2022, Sec. 6.1, App. B.1 Table 3).

    Images: 5 equal folds of the shuffled pool: target-train, target-test, shadow-train,
    shadow-test, reference (12,000 each for CIFAR). Tabular, as the reference code cuts it:
    the first 40% of the pool is split at random into shadow-train (the smaller half) and
    target-train, the next 20% is the reference set, and as many samples again from the last
    40% are split into shadow-test and target-test (Purchase100: 39,465 target / 39,464
    shadow per side). `shuffle=false` keeps the pool's order for these cuts (the literature's
    fixed order when the dataset applied one); the halving still follows the seed.
    """
    checks.flag("split.shuffle", shuffle)
    rng = np.random.default_rng(seed)
    perm = (rng.permutation(n) if shuffle else np.arange(n))[: _cap(n, max_samples)]
    m = len(perm)
    if kind == "image":
        f = m // 5
        tt, te, st, se, ref = (np.sort(perm[i * f : (i + 1) * f]) for i in range(5))
        return Split(tt, te, _shadow_sets(st, se, shadow_count, rng), ref)
    n_train, ref_end = int(0.4 * m), int(0.6 * m)
    ref = np.sort(perm[n_train:ref_end])
    halves = []
    for block in (perm[:n_train], perm[ref_end : ref_end + n_train]):
        r = rng.permutation(len(block))
        h = len(block) // 2
        halves.append((np.sort(block[r[:h]]), np.sort(block[r[h:]])))  # (shadow, target)
    (st, tt), (se, te) = halves
    return Split(tt, te, _shadow_sets(st, se, shadow_count, rng), ref)


def crl_split(
    n: int,
    seed: int,
    shadow_count: int = 5,
    max_samples: int | None = None,
    reference_fraction: float = 0.0,
) -> Split:
    """CRL protocol (Fang & Kim 2024, Sec. 5.1): the shuffled pool is cut 50/50 into a target
    half and a shadow half; the target half is cut 50/50 into target-train and target-test;
    each of the k shadows (five in the paper) trains on a random half of the shadow half and
    is tested on the other half. No reference set.

    The paper does not say where its Adv-Reg baseline found the reference data a defender
    needs; `reference_fraction` > 0 sets that share of the shadow half aside as the reference
    set (the shadows draw from the rest), leaving the target's sets as they are."""
    reference_fraction = checks.number(
        "split.reference_fraction", reference_fraction, lo=0.0, hi=1.0, hi_open=True
    )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)[: _cap(n, max_samples)]
    half = len(perm) // 2
    q = half // 2
    tt, te = np.sort(perm[:q]), np.sort(perm[q : 2 * q])
    n_ref = int(round(reference_fraction * (len(perm) - half)))
    ref, pool = np.sort(perm[half : half + n_ref]), perm[half + n_ref :]
    return Split(tt, te, _random_halves(pool, shadow_count, rng), ref)


def ccl_split(n: int, seed: int, shadow_count: int = 1, max_samples: int | None = None) -> Split:
    """CCL protocol (Liu et al. 2024): the shuffled pool in 4 equal parts: target-train,
    target-test, shadow-train, shadow-test. More than one shadow: random halves of the shadow
    parts, as above. No reference set."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)[: _cap(n, max_samples)]
    q = len(perm) // 4
    tt, te, st, se = (np.sort(perm[i * q : (i + 1) * q]) for i in range(4))
    return Split(tt, te, _shadow_sets(st, se, shadow_count, rng))


def _cap(n: int, max_samples: int | None) -> int | None:
    """`split.max_samples`, with a warning when it exceeds the dataset (all n are used)."""
    if max_samples is not None and max_samples > n:
        log.warning(
            "split.max_samples=%d is more than the dataset's %d samples; all %d are used",
            max_samples,
            n,
            n,
        )
    return max_samples


# Keys of a split YAML that are not arguments of its `_target_`: min_queries is checked on
# the built split (check_query_sets).
_META_KEYS = ("name", "min_queries")


def make_split(n: int, kind: str, cfg_split, seed: int, shadow_count: int) -> Split:
    """The split `split._target_` names (conf/split/: relaxloss_split, crl_split, ccl_split),
    given the pool size, the seed and the shadow count (and `kind` when it takes one); its
    other keys are the function's arguments. Checks that every set is large enough to train
    on."""
    split = instantiate(
        "split",
        cfg_split,
        skip=_META_KEYS,
        given={"n": n, "seed": seed, "shadow_count": shadow_count},
        offered={"kind": kind},
    )
    smallest = min(len(a) for a in split.as_arrays().values() if a is not split.reference)
    if smallest < 2:
        pool = min(n, cfg_split.get("max_samples") or n)  # a user's split may take no max
        raise ConfigError(
            "split.max_samples",
            f"the split leaves a set of {smallest} samples (pool of {pool}); use more samples",
        )
    return split


def check_query_sets(split: Split, cfg_split, cfg_dataset, n: int, needed: int) -> None:
    """Refuse a split whose target members or non-members number fewer than `needed`
    (`split.min_queries` when set): with n non-members no FPR below 1/n can be measured, so
    the default is 1 / (the largest FPR level reported), the fewest queries at which any
    TPR-at-FPR figure exists. The error names the setting that made the pool small."""
    min_queries = checks.optional_integer(
        "split.min_queries", checks.setting(cfg_split, "min_queries", "split"), lo=1
    )
    if min_queries is not None:
        needed = min_queries
    members, nonmembers = len(split.target_train), len(split.target_test)
    if min(members, nonmembers) >= needed:
        return
    max_samples = cfg_split.get("max_samples")  # a user's split function may take none
    if max_samples is not None and max_samples < n:
        key = "split.max_samples"
    elif "n_samples" in cfg_dataset:
        key = "dataset.n_samples"
    else:
        key = "split.min_queries"
    raise ConfigError(
        key,
        f"the split leaves {members} target members and {nonmembers} non-members (pool of "
        f"{min(n, max_samples or n)}); measuring an attack needs at least {needed} of each "
        "(1 / the largest FPR level reported); use more samples, or set split.min_queries "
        "lower to run anyway",
    )
