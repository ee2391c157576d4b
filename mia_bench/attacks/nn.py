"""Neural-network attack (Shokri et al. 2017 as used by RelaxLoss and CRL): an MLP trained on
shadow outputs, member = 1, scoring the target's outputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mia_bench import checks
from mia_bench.attacks.base import Attack
from mia_bench.signals.compute import Signals

INPUTS = ("sorted_logits", "sorted_probs", "probs_label")


def attack_features(s: Signals, kind: str) -> np.ndarray:
    """The attack model's input for each query."""
    if kind == "sorted_logits":
        return -np.sort(-s.logits, axis=1)
    if kind == "sorted_probs":
        return -np.sort(-s.probs, axis=1)
    onehot = np.eye(s.logits.shape[1], dtype=np.float32)[s.labels]
    return np.concatenate([s.probs, onehot], axis=1)


class NNAttack(Attack):
    def __init__(
        self,
        input: str = "sorted_logits",
        hidden: Sequence[int] = (100,),
        dropout: float = 0.0,
        lr: float = 1e-3,
        epochs: int = 100,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        self.input = checks.choice("input", input, INPUTS)
        self.hidden = checks.widths("hidden", hidden)
        self.dropout = checks.number("dropout", dropout, lo=0.0, hi=1.0, hi_open=True)
        self.lr = checks.number("lr", lr, lo=0.0, lo_open=True)
        self.epochs = checks.integer("epochs", epochs, lo=1)
        self.batch_size = checks.integer("batch_size", batch_size, lo=1)
        self.seed = seed
        self.net: nn.Module | None = None
        self._mu = self._sd = None

    def _prep(self, s: Signals) -> torch.Tensor:
        f = attack_features(s, self.input).astype(np.float32)
        return torch.from_numpy((f - self._mu) / self._sd)

    def fit(self, shadow: list[Signals]) -> None:
        pooled = Signals.concat(shadow)
        f = attack_features(pooled, self.input).astype(np.float32)
        # Standardise: raw logits of different models span very different ranges.
        self._mu, self._sd = f.mean(0), f.std(0) + 1e-6
        x = self._prep(pooled)
        y = torch.from_numpy(pooled.member.astype(np.float32))
        torch.manual_seed(self.seed)
        layers: list[nn.Module] = []
        width = x.shape[1]
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(self.dropout)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        # Weight positives so that unequal member / non-member counts do not bias the decision.
        pos_weight = (1 - y).sum() / y.sum().clamp(min=1)
        lossf = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        gen = torch.Generator().manual_seed(self.seed)
        self.net.train()
        for _ in range(self.epochs):
            perm = torch.randperm(len(y), generator=gen)
            for i in range(0, len(y), self.batch_size):
                idx = perm[i : i + self.batch_size]
                opt.zero_grad()
                lossf(self.net(x[idx]).squeeze(1), y[idx]).backward()
                opt.step()
        self.net.eval()

    @torch.no_grad()
    def _logit(self, target: Signals) -> np.ndarray:
        assert self.net is not None, "fit() first"
        return self.net(self._prep(target)).squeeze(1).double().numpy()

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        return {self.name: self._logit(target)}

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        return {self.name: self._logit(target) > 0.0}
