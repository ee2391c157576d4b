"""Robust membership inference, RMIA (Zarifzadeh, Liu & Shokri 2024, "Low-Cost High-Power
Membership Inference Attacks", Sec. 3).

With Pr(x | theta) the audited model's probability of the true label and Pr(x) its average
over reference models, the pairwise likelihood ratio against a population sample z is

    LR(x, z) = [Pr(x | theta) / Pr(x)] / [Pr(z | theta) / Pr(z)],

and the score is the fraction of population samples z that x dominates by a factor gamma:
Score(x) = Pr_z[LR(x, z) >= gamma].

- online: Pr(x) averages all reference models (half of them trained on x).
- offline: only the OUT models, with the paper's linear correction for the missing IN half,
  Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2, where a is fitted on the data in the paper
  (a = 1 keeps Pr_OUT as is; privacy_meter's default is 0.3).
Pr(z) is computed the same way as Pr(x). The z samples are the population samples that are
not queries of the audited model (so none of them is one of its members): for the target, the
shadow pool; for a shadow, the target's queries. `num_z` subsamples them (seeded).
The reference models are those of LiRA (trained once, shared).
"""

from __future__ import annotations

import numpy as np

from mia_bench.attacks.base import ReferenceAttack
from mia_bench.errors import ConfigError
from mia_bench.signals import ReferenceSignals, Signals, true_class_stats

MODES = ("online", "offline")


def log_pr_reference(ref: ReferenceSignals, mode: str, a: float) -> np.ndarray:
    """log Pr(x) for every population sample (see the module docstring)."""
    p = np.exp(ref.log_py)  # (N, n_pop)
    if mode == "online":
        return np.log(p.mean(0))
    out = ~ref.keep
    p_out = np.where(out, p, 0.0).sum(0) / out.sum(0)
    return np.log(0.5 * ((1.0 + a) * p_out + (1.0 - a)))


def pairwise_dominance(
    log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, gamma: float
) -> np.ndarray:
    """Fraction of z with ratio_x / ratio_z >= gamma, for each x; O((n + m) log m) by sorting,
    without forming the n x m matrix."""
    zs = np.sort(log_ratio_z)
    return np.searchsorted(zs, log_ratio_x - np.log(gamma), side="right") / len(zs)


class RMIA(ReferenceAttack):
    def __init__(
        self,
        num_models: int = 16,
        mode: str = "online",
        a: float = 0.3,
        gamma: float = 1.0,
        num_z: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(num_models)
        if mode not in MODES:
            raise ConfigError("mode", f"choose one of {list(MODES)}, got {mode!r}")
        if not 0.0 <= a <= 1.0:
            raise ConfigError("a", f"must be in [0, 1], got {a}")
        if not gamma > 0:
            raise ConfigError("gamma", f"must be > 0, got {gamma}")
        if num_z is not None and (
            isinstance(num_z, bool) or not isinstance(num_z, int) or num_z < 1
        ):
            raise ConfigError("num_z", f"must be a positive integer or null (all), got {num_z!r}")
        self.mode, self.a, self.gamma, self.num_z, self.seed = (
            mode,
            float(a),
            float(gamma),
            num_z,
            seed,
        )
        self._log_pr: np.ndarray | None = None

    def set_reference(self, ref: ReferenceSignals) -> None:
        super().set_reference(ref)
        self._log_pr = log_pr_reference(ref, self.mode, self.a)

    def z_indices(self, s: Signals) -> np.ndarray:
        """Population positions used as z for the model that produced `s`."""
        free = np.ones(len(self.ref.labels), dtype=bool)
        free[s.population.index] = False
        z = np.flatnonzero(free)
        if len(z) == 0:
            raise ValueError(f"{self.name}: every population sample is a query; no z samples left")
        if self.num_z is not None and self.num_z < len(z):
            z = np.sort(np.random.default_rng(self.seed).choice(z, self.num_z, replace=False))
        return z

    def scores(self, s: Signals) -> dict[str, np.ndarray]:
        log_px = true_class_stats(s.logits, s.labels)[0]
        ratio_x = log_px - self._log_pr[s.population.index]
        z = self.z_indices(s)
        log_pz = true_class_stats(s.population.logits[z], self.ref.labels[z])[0]
        ratio_z = log_pz - self._log_pr[z]
        return {self.name: pairwise_dominance(ratio_x, ratio_z, self.gamma)}
