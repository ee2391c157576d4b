"""Mixup + MMD (Li, Li & Ribeiro, CODASPY 2021, "Membership Inference Attacks and Defenses in
Classification Models", Sec. 5).

- Mixup (Zhang et al. 2018): each batch is trained on lam * x + (1 - lam) * x[perm] against
  lam * CE(., y) + (1 - lam) * CE(., y[perm]), one lam ~ Beta(mixup_alpha, mixup_alpha) per
  batch.
- MMD regulariser: the squared maximum mean discrepancy (biased estimator, Gaussian kernel
  exp(-||a - b||^2 / (2 sigma^2)) summed over `sigmas`) between the softmax outputs on a
  training batch and on a batch of validation samples (the split's reference fold) with the
  same labels, sample by sample; the validation outputs are held fixed (no gradient). Matching
  labels compares the two conditional output distributions class by class, as the paper asks.

`schedule` (paper text vs the authors' code):
- `joint` (the paper's objective): every batch minimises mixup CE + mmd_lambda * MMD^2, the
  MMD on the same batch's clean inputs.
- `alternating` (the authors' code): each epoch first a mixup pass over the training set, then,
  when the train / validation accuracy gap is at least `gap_threshold` (percentage points;
  3 in the code), a second pass over the training set in a fixed order minimising
  mmd_lambda * MMD^2 alone. Here the gap is measured at the start of the epoch (the code
  measures it after the mixup pass), and the last epoch keeps its MMD step (the code skips it).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mia_bench import checks
from mia_bench.defenses.base import Defense, TrainingParts
from mia_bench.errors import ConfigError

SCHEDULES = ("joint", "alternating")


def mmd2_rbf(x: torch.Tensor, y: torch.Tensor, sigmas: tuple[float, ...] = (1.0,)) -> torch.Tensor:
    """Biased MMD^2 = mean K(x, x') + mean K(y, y') - 2 mean K(x, y) (Gretton et al. 2012),
    K = sum over sigma of exp(-||a - b||^2 / (2 sigma^2))."""
    z = torch.cat([x, y])
    d2 = torch.cdist(z, z).pow(2)
    k = sum(torch.exp(-d2 / (2.0 * s**2)) for s in sigmas)
    m = len(x)
    return k[:m, :m].mean() + k[m:, m:].mean() - 2.0 * k[:m, m:].mean()


def mixup_ce(logits: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, lam: float):
    """lam * CE(z, y) + (1 - lam) * CE(z, y[perm]) (Zhang et al. 2018, Eq. 1 as trained)."""
    return lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])


class _Mixer(nn.Module):
    """What the trainer steps through: the model, on a mixed batch in mixup steps. Its
    parameters are the model's."""

    def __init__(self, model: nn.Module, defense: MixupMMD) -> None:
        super().__init__()
        self.model = model
        self.defense = [defense]  # a list: not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.defense[0]
        d._clean = x
        if d._phase() == "mmd":
            return self.model(x)
        lam = float(d._rng.beta(d.mixup_alpha, d.mixup_alpha)) if d.mixup_alpha > 0 else 1.0
        perm = torch.from_numpy(d._rng.permutation(len(x))).to(x.device)
        d._mix = (perm, lam)
        return self.model(lam * x + (1 - lam) * x[perm])


class MixupMMD(Defense):
    name = "mixup_mmd"
    uses_reference = True
    # the mixing draws come from a generator outside the state dict
    resumable = False

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        mixup_alpha: float = 1.0,
        mmd_lambda: float = 3.0,
        sigmas: tuple[float, ...] = (1.0,),
        schedule: str = "joint",
        gap_threshold: float = 3.0,
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.mixup_alpha = checks.number("defense.mixup_alpha", mixup_alpha, lo=0.0)
        self.mmd_lambda = checks.number("defense.mmd_lambda", mmd_lambda, lo=0.0)
        self.sigmas = tuple(
            checks.number("defense.sigmas", s, lo=0.0, lo_open=True) for s in list(sigmas)
        )
        if not self.sigmas:
            raise ConfigError("defense.sigmas", "give at least one kernel width")
        self.schedule = checks.choice("defense.schedule", schedule, SCHEDULES)
        self.gap_threshold = checks.number("defense.gap_threshold", gap_threshold, lo=0.0)
        self._model: nn.Module | None = None
        self._plan: list[str] = []
        self._pos = 0
        self._clean: torch.Tensor | None = None
        self._mix: tuple[torch.Tensor, float] | None = None

    def _phase(self) -> str:
        return self._plan[self._pos] if self._pos < len(self._plan) else "mixup"

    def setup(self, model, optimizer, train_data) -> TrainingParts:
        ctx = self.attached_context("the validation (reference) samples of its MMD term")
        self._model = model
        self._rng = np.random.default_rng(ctx.seed)
        x_ref, y_ref = ctx.reference
        self._ref = (x_ref.to(ctx.device), y_ref.to(ctx.device))
        self._by_class = [np.flatnonzero(y_ref.numpy() == c) for c in range(self.num_classes)]
        self._train = train_data
        self._bs = ctx.batch_size

        def batches(n: int, gen: torch.Generator):
            perm = torch.randperm(n, generator=gen)
            first = [perm[i : i + self._bs] for i in range(0, n, self._bs)]
            second: list[torch.Tensor] = []
            if (
                self.schedule == "alternating"
                and self.mmd_lambda > 0
                and self._gap() >= self.gap_threshold
            ):
                order = torch.arange(n)
                second = [order[i : i + self._bs] for i in range(0, n, self._bs)]
            self._plan = ["mixup"] * len(first) + ["mmd"] * len(second)
            self._pos = 0
            return first + second

        return TrainingParts(model=_Mixer(model, self), batches=batches)

    @torch.no_grad()
    def _gap(self) -> float:
        """Train minus validation accuracy of the model now, in percentage points."""
        ctx = self.ctx
        was = self._model.training
        self._model.eval()
        accs = []
        for x, y in (self._train, self._ref):
            z = torch.cat(
                [
                    self._model(ctx.preprocess(x[i : i + 4096].to(ctx.device)))
                    for i in range(0, len(x), 4096)
                ]
            )
            accs.append((z.argmax(1) == y.to(z.device)).float().mean().item())
        self._model.train(was)
        return 100.0 * (accs[0] - accs[1])

    def _mmd(self, train_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """MMD^2 between softmax outputs on the clean training batch (`train_logits`) and on
        label-matched validation samples (validation outputs fixed)."""
        ctx = self.ctx
        pick = []
        for t in targets.tolist():
            pool = self._by_class[t] if len(self._by_class[t]) else np.arange(len(self._ref[1]))
            pick.append(int(pool[self._rng.integers(len(pool))]))
        x_val = ctx.preprocess(self._ref[0][torch.tensor(pick, device=self._ref[0].device)])
        p_train = F.softmax(train_logits.float(), 1)
        with torch.no_grad():
            p_val = F.softmax(self._model(x_val).float(), 1)
        return mmd2_rbf(p_train, p_val, self.sigmas)

    def loss(self, logits, targets, *, epoch: int, features=None) -> torch.Tensor:
        phase = self._phase()
        self._pos += 1
        if phase == "mmd":
            return self.mmd_lambda * self._mmd(logits, targets)
        if self._mix is None:  # called outside the trainer's wrapped forward
            ce = F.cross_entropy(logits, targets)
        else:
            perm, lam = self._mix
            ce = mixup_ce(logits, targets, perm, lam)
        if self.schedule == "joint" and self.mmd_lambda > 0 and self._clean is not None:
            return ce + self.mmd_lambda * self._mmd(self._model(self._clean), targets)
        return ce

    def end_training(self) -> None:
        self._model = self._clean = self._mix = None
        self._plan, self._pos = [], 0

    def describe(self) -> dict:
        return {
            "name": self.name,
            "mixup_alpha": self.mixup_alpha,
            "mmd_lambda": self.mmd_lambda,
            "sigmas": list(self.sigmas),
            "schedule": self.schedule,
            "models_trained": 1,
        }
