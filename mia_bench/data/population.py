"""The population that LiRA / RMIA reference models are trained on, and who is IN where.

Population (our choice, documented in conf/attack/lira.yaml): every sample the attacker may
query or train shadows on, i.e. the target's queries (target-train + target-test) and the
shadow pool (every shadow's train + test). The split's `reference` fold is left out: it
belongs to the defender (Adv-Reg, MemGuard and DMP train on it).

Because the target's queries are in the population, each query is IN for half the reference
models and OUT for the other half: the online attacks use both halves, the offline ones only
the OUT half (Carlini et al. 2022, Sec. IV; Zarifzadeh et al. 2024, Sec. 3).
"""

from __future__ import annotations

import numpy as np

from mia_bench.data.splits import Split


def population_indices(split: Split) -> np.ndarray:
    """Sorted dataset indices of the population: target queries + shadow pool."""
    parts = [split.target_train, split.target_test]
    for tr, te in split.shadows:
        parts += [tr, te]
    return np.unique(np.concatenate(parts))


def lira_keep_matrix(n: int, num_models: int, seed: int) -> np.ndarray:
    """(num_models, n) bool: keep[m, j] = sample j is in model m's training set.

    Every sample is IN for exactly num_models / 2 models, drawn at random per sample as in
    Carlini et al. 2022's reference code. On top of that, every model trains on exactly n / 2
    samples (n odd: half the models on (n + 1) / 2, half on (n - 1) / 2), so that reference
    models can be trained side by side (`trainer.stack`), which needs equal training-set sizes:
    the per-sample draw leaves row sums off by O(sqrt(n)), and random swaps within columns
    (IN for an over-full model <-> OUT for an under-full one) even them out without changing
    any column.
    """
    if num_models < 2 or num_models % 2:
        raise ValueError(f"num_models must be an even number >= 2, got {num_models}")
    rng = np.random.default_rng(seed)
    half = num_models // 2
    # rank of each model in a random order, drawn per sample: the first half is IN
    keep = rng.random((num_models, n)).argsort(0).argsort(0) < half
    target = np.full(num_models, n // 2)
    if n % 2:
        target[rng.permutation(num_models)[:half]] += 1
    while True:
        excess = keep.sum(1) - target
        a, b = int(excess.argmax()), int(excess.argmin())
        if excess[a] == 0:
            return keep
        k = int(min(excess[a], -excess[b]))
        movable = np.flatnonzero(keep[a] & ~keep[b])
        pick = rng.choice(movable, k, replace=False)
        keep[a, pick], keep[b, pick] = False, True


def nested_keep_matrix(n: int, num_models: int, seed: int) -> np.ndarray:
    """(num_models, n) bool, in complementary pairs: model 2j trains on a random half of the
    population drawn from (seed, j) alone, model 2j + 1 on the other half.

    Every sample is IN for exactly num_models / 2 models, as in `lira_keep_matrix`, and row i
    does not depend on num_models: a sweep over the number of reference models trains model i
    once and every job with more than i models reuses it from the cache.
    """
    if num_models < 2 or num_models % 2:
        raise ValueError(f"num_models must be an even number >= 2, got {num_models}")
    keep = np.zeros((num_models, n), bool)
    for j in range(num_models // 2):
        perm = np.random.default_rng([seed, j]).permutation(n)
        keep[2 * j, perm[: n // 2]] = True
        keep[2 * j + 1] = ~keep[2 * j]
    return keep
