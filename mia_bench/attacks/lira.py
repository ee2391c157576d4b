"""Likelihood Ratio Attack, LiRA (Carlini et al. 2022, "Membership Inference Attacks From First
Principles", Sec. IV and Algorithm 1).

Statistic: phi = log(p_y / (1 - p_y)), the logit-scaled confidence (Sec. IV-B), computed as
z_y - logsumexp_{c != y} z_c. For each query x, the reference models that trained on x give
phi_IN values and the others phi_OUT values; each set is modelled as a Gaussian.

- online (Algorithm 1): score = log N(phi_obs; mu_in, sd_in^2) - log N(phi_obs; mu_out, sd_out^2).
- offline (Sec. IV-C): only OUT models; a one-sided test of "phi_obs is larger than OUT models
  give". The paper's score is Pr[Z <= phi_obs], Z ~ N(mu_out, sd_out^2); we report the
  monotone equivalent -log Pr[Z > phi_obs], which does not round to 1 for confident members
  (same ranking, hence same ROC, without ties).
- variance: `per_example` uses each query's own IN / OUT variance; `global` pools the
  within-example variance over the whole population, which the paper recommends when there are
  few reference models; `auto` takes global below 64 models.
- statistic: the centre of each Gaussian. `mean` is the paper's (Algorithm 1, mu_in / mu_out
  as means); `median` is what the authors' scoring code uses (np.median over the reference
  models in tensorflow/privacy's mi_lira_2021), more robust to a few outlying models.
- ddof: the variances are taken about the mean whatever the centre, divided by count - ddof;
  1 (unbiased, default) or 0 (np.std, as the authors' code).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from mia_bench import checks
from mia_bench.attacks.base import ReferenceAttack
from mia_bench.errors import ConfigError
from mia_bench.signals.compute import ReferenceSignals, Signals, true_class_stats

VARIANCES = ("auto", "per_example", "global")
STATISTICS = ("mean", "median")
# variances below this are floored, so that a query whose reference phis coincide gives a
# finite likelihood ratio
_MIN_VAR = 1e-8


def gaussian_fits(
    phi: np.ndarray, keep: np.ndarray, variance: str, statistic: str = "mean", ddof: int = 1
) -> dict[str, np.ndarray]:
    """Per population sample: centre and standard deviation of the IN and of the OUT phis.

    phi, keep: (N, n) arrays of the reference models. The centre is the mean or the median of
    the side's phis; the variance is about their mean, divided by count - ddof per example,
    and for `global` the pooled within-sample sum_j sum_{m in S_j} (phi_mj - mean_j)^2 divided
    by |S| - ddof * n.
    """
    out: dict[str, np.ndarray] = {}
    for side, mask in (("in", keep), ("out", ~keep)):
        count = mask.sum(0)
        need = 1 + ddof if variance == "per_example" else 1
        if count.min() < need:
            raise ValueError(f"every sample needs {need}+ {side.upper()} models")
        mean = np.where(mask, phi, 0.0).sum(0) / count
        resid2 = np.where(mask, (phi - mean) ** 2, 0.0)
        if variance == "per_example":
            var = resid2.sum(0) / (count - ddof)
        else:
            dof = count.sum() - ddof * len(count)
            var = np.full(len(count), resid2.sum() / dof if dof > 0 else 0.0)
        centre = mean if statistic == "mean" else np.nanmedian(np.where(mask, phi, np.nan), 0)
        out[f"mu_{side}"] = centre
        out[f"sd_{side}"] = np.sqrt(np.maximum(var, _MIN_VAR))
    return out


class LiRA(ReferenceAttack):
    """Results `<name>_online` and `<name>_offline` (lira_online, lira_offline)."""

    def __init__(
        self,
        num_models: int = 16,
        design: str = "balanced",
        variance: str = "auto",
        statistic: str = "mean",
        ddof: int = 1,
    ) -> None:
        super().__init__(num_models, design)
        checks.choice("variance", variance, VARIANCES)
        self.statistic = checks.choice("statistic", statistic, STATISTICS)
        # 1: unbiased; 0: np.std, as the authors' code
        self.ddof = checks.integer("ddof", ddof, lo=0, hi=1)
        if variance == "per_example" and num_models < 4:
            raise ConfigError(
                "variance",
                "per_example needs num_models >= 4 (2 IN and 2 OUT per sample); use global",
            )
        self.variance = (
            variance if variance != "auto" else ("global" if num_models < 64 else "per_example")
        )
        self._fit: dict[str, np.ndarray] = {}

    def result_names(self) -> list[str]:
        return [f"{self.name}_online", f"{self.name}_offline"]

    def set_reference(self, ref: ReferenceSignals) -> None:
        super().set_reference(ref)
        self._fit = gaussian_fits(ref.phi, ref.keep, self.variance, self.statistic, self.ddof)

    def scores(self, s: Signals) -> dict[str, np.ndarray]:
        phi = true_class_stats(s.logits, s.labels)[1]
        f = {k: v[s.population.index] for k, v in self._fit.items()}
        online = norm.logpdf(phi, f["mu_in"], f["sd_in"]) - norm.logpdf(
            phi, f["mu_out"], f["sd_out"]
        )
        offline = -norm.logsf((phi - f["mu_out"]) / f["sd_out"])
        return {f"{self.name}_online": online, f"{self.name}_offline": offline}
