"""White-box gradient attacks (SPEC "Attacks"; Rezaei & Liu 2021, used in CRL Table 1):
Grad-x scores a query by -||d CE / d x|| and Grad-w by -||d CE / d theta|| (all parameters),
l1 and l2, with the model in eval mode. Members sit near a minimum of the training loss, so
their gradients are small. Thresholds are chosen on the shadows, per class by default, as for
the metric attacks."""

from __future__ import annotations

import numpy as np

from mia_bench import checks
from mia_bench.attacks.base import Attack
from mia_bench.attacks.threshold import Thresholds
from mia_bench.signals.compute import GRAD_SIGNALS, Signals

ORDERS = ("l1", "l2")


class GradientAttack(Attack):
    """`signal` is "grad_x" (w.r.t. the input) or "grad_w" (w.r.t. every parameter); the
    result names are `<config name>_l1` and `<config name>_l2`."""

    def __init__(self, signal: str, thresholds: str = "per_class") -> None:
        self.signal = checks.choice("signal", signal, sorted(GRAD_SIGNALS))
        self.needs = frozenset({signal})
        self._thr = {o: Thresholds(thresholds) for o in ORDERS}

    def result_names(self) -> list[str]:
        return [f"{self.name}_{o}" for o in ORDERS]

    def _scores(self, s: Signals) -> dict[str, np.ndarray]:
        missing = [f"{self.signal}_{o}" for o in ORDERS if f"{self.signal}_{o}" not in s.extra]
        if missing:
            raise KeyError(
                f"attack {self.name} needs signals {missing}; compute_signals(needs=...)"
            )
        return {o: -s.extra[f"{self.signal}_{o}"] for o in ORDERS}

    def fit(self, shadow: list[Signals]) -> None:
        pooled = Signals.concat(shadow)
        for o, sc in self._scores(pooled).items():
            self._thr[o].fit(sc, pooled.labels, pooled.member)

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        return {f"{self.name}_{o}": sc for o, sc in self._scores(target).items()}

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        return {
            f"{self.name}_{o}": self._thr[o].predict(sc, target.labels)
            for o, sc in self._scores(target).items()
        }
