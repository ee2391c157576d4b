"""The Attack interface: fit on shadow signals (membership known), score the target's queries.

An attack config `attack.<name>` yields one or more result names (grad_x -> grad_x_l1,
grad_x_l2); `score` and `predict` return one array per result name.
"""

from __future__ import annotations

import numpy as np

from mia_bench import checks
from mia_bench.errors import ConfigError
from mia_bench.metrics import best_threshold
from mia_bench.signals.compute import ReferenceSignals, Signals


class Attack:
    """Base class; `name` is the config key under `attack.` and is set by the pipeline."""

    name: str = "attack"
    # Which signals it reads besides logits/labels: {"grad_x"}, {"grad_w"}, ...
    needs: frozenset[str] = frozenset()

    def result_names(self) -> list[str]:
        return [self.name]

    def cache_inputs(self) -> dict[str, np.ndarray]:
        """Arrays besides the shadow / target signals that the results depend on; they join
        the attack-cache key (mia_bench.experiment.attacking.attack_outputs)."""
        return {}

    def fit(self, shadow: list[Signals]) -> None:
        """Learn from shadow models' signals, whose `member` flags the attacker knows."""
        raise NotImplementedError

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        """One score per query and result name; higher = more likely member."""
        raise NotImplementedError

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        """Member / non-member decisions from the threshold chosen on the shadows."""
        raise NotImplementedError


# balanced: lira_keep_matrix (per-sample draws, the reference code's); nested: complementary
# pairs that do not depend on the number of models (a sweep over it reuses every model)
DESIGNS = ("balanced", "nested")


class ReferenceAttack(Attack):
    """An attack that compares the audited model with reference models trained on random
    halves of a population (LiRA, RMIA). The pipeline trains the reference models once for all
    such attacks and hands their outputs over with `set_reference` before `fit`.

    Thresholds for `predict`: the same attack is run against each shadow model (its queries
    lie in the population too) and one global threshold maximises balanced accuracy there.
    """

    needs = frozenset({"reference"})

    def __init__(self, num_models: int, design: str = "balanced") -> None:
        if checks.integer("num_models", num_models, lo=2) % 2:
            raise ConfigError("num_models", f"must be an even integer >= 2, got {num_models!r}")
        self.num_models = num_models
        # how the reference models' training halves are drawn (mia_bench.data.population)
        self.design = checks.choice("design", design, DESIGNS)
        self.ref: ReferenceSignals | None = None
        self._thr: dict[str, float] = {}

    def set_reference(self, ref: ReferenceSignals) -> None:
        if ref.num_models != self.num_models:
            raise ValueError(
                f"{self.name}: expected {self.num_models} reference models, got {ref.num_models}"
            )
        self.ref = ref

    def cache_inputs(self) -> dict[str, np.ndarray]:
        if self.ref is None:
            return {}
        r = self.ref
        return {
            "ref.keep": r.keep,
            "ref.labels": r.labels,
            "ref.log_py": r.log_py,
            "ref.phi": r.phi,
        }

    def scores(self, s: Signals) -> dict[str, np.ndarray]:
        """One score per query of `s` and result name, from `s.population` and `self.ref`."""
        raise NotImplementedError

    def _checked_scores(self, s: Signals) -> dict[str, np.ndarray]:
        if self.ref is None or s.population is None:
            raise RuntimeError(
                f"attack {self.name} needs reference signals: set_reference() and Signals.population"
            )
        return self.scores(s)

    def fit(self, shadow: list[Signals]) -> None:
        per_shadow = [self._checked_scores(s) for s in shadow]
        member = np.concatenate([s.member for s in shadow])
        self._thr = {
            name: best_threshold(np.concatenate([sc[name] for sc in per_shadow]), member)
            for name in per_shadow[0]
        }

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        return self._checked_scores(target)

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        return {name: sc >= self._thr[name] for name, sc in self._checked_scores(target).items()}
