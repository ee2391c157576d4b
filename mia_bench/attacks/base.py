"""The Attack interface: fit on shadow signals (membership known), score the target's queries.

An attack config `attack.<name>` yields one or more result names (grad_x -> grad_x_l1,
grad_x_l2); `score` and `predict` return one array per result name.
"""

from __future__ import annotations

import numpy as np

from mia_bench.signals import Signals


class Attack:
    """Base class; `name` is the config key under `attack.` and is set by the pipeline."""

    name: str = "attack"
    # Which signals it reads besides logits/labels: {"grad_x"}, {"grad_w"}, ...
    needs: frozenset[str] = frozenset()

    def result_names(self) -> list[str]:
        return [self.name]

    def fit(self, shadow: list[Signals]) -> None:
        """Learn from shadow models' signals, whose `member` flags the attacker knows."""
        raise NotImplementedError

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        """One score per query and result name; higher = more likely member."""
        raise NotImplementedError

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        """Member / non-member decisions from the threshold chosen on the shadows."""
        raise NotImplementedError
