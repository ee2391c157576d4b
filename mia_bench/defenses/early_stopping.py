"""Early stopping as the RelaxLoss baseline (App. B.5): one ordinary training run, whose weights
are kept after each listed epoch; each checkpoint is one point of the privacy-utility curve,
evaluated by every attack, without retraining (see `mia_bench.experiment.snapshots`).

`epochs` are epoch counts (10 = after ten epochs of training), at most `trainer.epochs`;
training stops after the largest. The learning-rate schedule is the trainer's.
"""

from __future__ import annotations

from collections.abc import Sequence

from mia_bench.defenses.none import NoDefense
from mia_bench.errors import ConfigError


class EarlyStopping(NoDefense):
    name = "early_stopping"

    def __init__(
        self, num_classes: int, feature_dim: int, epochs: Sequence[int] = (10, 20)
    ) -> None:
        super().__init__(num_classes, feature_dim)
        epochs = list(epochs) if isinstance(epochs, (list, tuple)) else [epochs]
        if not epochs or not all(
            isinstance(e, int) and not isinstance(e, bool) and e > 0 for e in epochs
        ):
            raise ConfigError(
                "defense.epochs", f"must be a list of positive epoch counts, got {epochs!r}"
            )
        self.snapshot_epochs = tuple(sorted(set(epochs)))

    def describe(self) -> dict:
        return {"name": self.name, "epochs": list(self.snapshot_epochs)}
