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
Pr(z) is computed the same way as Pr(x).

Two choices the paper leaves to the user, as options:
- `trim`: Pr(x) as a trimmed mean of the reference models' probabilities, cutting
  floor(trim * k) of the k values from each end (scipy.stats.trim_mean's rule); 0 is the
  paper's plain mean; the RMIA authors' experiment configurations use 0.2.
- `tune_a` (offline): choose a as privacy_meter does (tune_offline_a): attack one reference
  model with the others for every a in {0, 0.1, ..., 1} and keep the first with the highest
  AUC; its members are known, so no target information is used. The z samples are the population samples that are
not queries of the audited model (so none of them is one of its members): for the target, the
shadow pool; for a shadow, the target's queries. `num_z` subsamples them (seeded).
The reference models are those of LiRA (trained once, shared).
"""

from __future__ import annotations

import logging

import numpy as np

from mia_bench import checks
from mia_bench.attacks.base import ReferenceAttack
from mia_bench.errors import ConfigError
from mia_bench.metrics import auc
from mia_bench.signals.compute import ReferenceSignals, Signals, true_class_stats

MODES = ("online", "offline")
log = logging.getLogger(__name__)


def trimmed_mean(p: np.ndarray, use: np.ndarray, trim: float) -> np.ndarray:
    """Column-wise mean of p over the rows where `use` holds, after cutting floor(trim * k)
    of the k used values from each end (trim 0: the plain mean)."""
    k = use.sum(0)
    ordered = np.sort(np.where(use, p, np.inf), axis=0)  # unused rows sort last
    cut = np.floor(trim * k).astype(int)
    rank = np.arange(len(p))[:, None]
    keep = (rank >= cut) & (rank < k - cut)
    return np.where(keep, ordered, 0.0).sum(0) / (k - 2 * cut)


def log_pr_reference(ref: ReferenceSignals, mode: str, a: float, trim: float = 0.0) -> np.ndarray:
    """log Pr(x) for every population sample (see the module docstring)."""
    p = np.exp(ref.log_py)  # (N, n_pop)
    if mode == "online":
        return np.log(trimmed_mean(p, np.ones_like(ref.keep), trim))
    return offline_log_pr(trimmed_mean(p, ~ref.keep, trim), a)


def offline_log_pr(p_out: np.ndarray, a: float) -> np.ndarray:
    """log Pr(x) from the OUT models' mean: Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2."""
    return np.log(0.5 * ((1.0 + a) * p_out + (1.0 - a)))


def tuned_a(ref: ReferenceSignals, gamma: float, trim: float, grid_step: float = 0.1) -> float:
    """Offline a chosen on reference model 0 as a stand-in target: the others are its
    reference models, every population sample a query (members: its keep row), its
    non-members the z samples; the first a of the grid with the highest AUC."""
    member, log_px = ref.keep[0], ref.log_py[0]
    # the other models' OUT mean does not depend on a: computed once for the whole grid
    p_out = trimmed_mean(np.exp(ref.log_py[1:]), ~ref.keep[1:], trim)
    best_a, best_auc = 0.0, -1.0
    for a in np.round(np.arange(0.0, 1.0 + grid_step / 2, grid_step), 10):
        ratio = log_px - offline_log_pr(p_out, float(a))
        score = auc(pairwise_dominance(ratio, ratio[~member], gamma), member)
        if score > best_auc:
            best_a, best_auc = float(a), score
    return best_a


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
        design: str = "balanced",
        mode: str = "online",
        a: float = 0.3,
        gamma: float = 1.0,
        num_z: int | None = None,
        seed: int = 0,
        trim: float = 0.0,
        tune_a: bool = False,
    ) -> None:
        super().__init__(num_models, design)
        self.mode = checks.choice("mode", mode, MODES)
        self.a = checks.number("a", a, lo=0.0, hi=1.0)
        self.trim = checks.number("trim", trim, lo=0.0, hi=0.5, hi_open=True)
        self.tune_a = checks.flag("tune_a", tune_a)
        if tune_a and mode != "offline":
            raise ConfigError("tune_a", "tunes the offline a; set attack.rmia.mode=offline")
        self.gamma = checks.number("gamma", gamma, lo=0.0, lo_open=True)
        # null: every population sample that is not a query of the audited model
        self.num_z = checks.optional_integer("num_z", num_z, lo=1)
        self.seed = seed
        self._log_pr: np.ndarray | None = None

    def set_reference(self, ref: ReferenceSignals) -> None:
        super().set_reference(ref)
        if self.tune_a:
            self.a = tuned_a(ref, self.gamma, self.trim)
            log.info("%s: offline a tuned on reference model 0: %.1f", self.name, self.a)
        self._log_pr = log_pr_reference(ref, self.mode, self.a, self.trim)

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
