"""Dropout (Srivastava et al. 2014) before the last linear layer, as the RelaxLoss baseline
(App. B.5: "we apply dropout to the last fully-connected layer of each target model").

Every `Classifier` has `head_dropout` in front of `classifier`; this defense sets its rate,
whatever `model.dropout` says, and trains with plain cross-entropy. Dropout is active only in
training; queries are answered in eval mode.
"""

from __future__ import annotations

from torch import nn

from mia_bench import checks
from mia_bench.defenses.none import NoDefense
from mia_bench.errors import ConfigError


class HeadDropout(NoDefense):
    name = "dropout"

    def __init__(self, num_classes: int, feature_dim: int, rate: float = 0.5) -> None:
        super().__init__(num_classes, feature_dim)
        self.rate = checks.number("defense.rate", rate, lo=0.0, hi=1.0, hi_open=True)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        if not isinstance(getattr(model, "head_dropout", None), nn.Dropout):
            raise ConfigError(
                "model", f"{type(model).__name__} has no head_dropout before its classifier"
            )
        model.head_dropout = nn.Dropout(self.rate)
        return model

    def describe(self) -> dict:
        return {"name": self.name, "rate": self.rate}
