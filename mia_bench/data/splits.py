"""Member / non-member index sets for the target, the shadows and the reference set.

A split is a pure function of (dataset size, split config, seed), so it can be recomputed
anywhere and is saved with each run (`split.npz`). Target and shadow data never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mia_bench.errors import ConfigError
from mia_bench.io import atomic_write_npz


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


def _shadow_sets(
    shadow_train: np.ndarray, shadow_test: np.ndarray, count: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One shadow uses the protocol's folds; k > 1 shadows each take a random half of the pool
    (the CRL protocol, Fang & Kim 2024 Sec. 5.1)."""
    if count == 1:
        return [(shadow_train, shadow_test)]
    pool = np.concatenate([shadow_train, shadow_test])
    half = len(pool) // 2
    out = []
    for _ in range(count):
        perm = rng.permutation(pool)
        out.append((np.sort(perm[:half]), np.sort(perm[half:])))
    return out


def relaxloss_split(
    n: int, kind: str, seed: int, shadow_count: int = 1, max_samples: int | None = None
) -> Split:
    """RelaxLoss protocol (Chen et al. 2022, Sec. 6.1 and App. B.1).

    Images: 5 equal folds of the shuffled pool: target-train, target-test, shadow-train,
    shadow-test, reference. Tabular: 40% train and 20% test, each halved into target and
    shadow; the remaining 40% is the reference set.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if max_samples is not None:
        perm = perm[:max_samples]
    m = len(perm)
    if kind == "image":
        f = m // 5
        folds = [np.sort(perm[i * f : (i + 1) * f]) for i in range(5)]
        tt, te, st, se, ref = folds
    else:
        n_train, n_test = int(0.4 * m) // 2, int(0.2 * m) // 2
        cuts = np.cumsum([n_train, n_train, n_test, n_test])
        tt, st, te, se, ref = (np.sort(p) for p in np.split(perm, cuts))
    return Split(tt, te, _shadow_sets(st, se, shadow_count, rng), ref)


def make_split(n: int, kind: str, cfg_split, seed: int, shadow_count: int) -> Split:
    """Dispatch on `split.name` and check that every set is large enough to train on."""
    name = cfg_split.get("name")
    if name != "relaxloss":
        raise ConfigError("split", f"unknown split protocol {name!r}; choose one of ['relaxloss']")
    max_samples = cfg_split.get("max_samples")
    split = relaxloss_split(n, kind, seed, shadow_count, max_samples)
    smallest = min(len(a) for a in split.as_arrays().values() if a is not split.reference)
    if smallest < 2:
        raise ConfigError(
            "split.max_samples",
            f"the split leaves a set of {smallest} samples (pool of {min(n, max_samples or n)}); "
            "use more samples",
        )
    return split
