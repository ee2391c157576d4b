"""Adversarial regularisation, Adv-Reg (Nasr, Shokri & Houmansadr, CCS 2018), as the RelaxLoss
baseline (App. B.5):

    min_f  CE(f) + lambda * max_h G(h, f),
    G = mean_members log h(f(x), y) + mean_reference log(1 - h(f(x'), y')),

with an inference model h on (probabilities sorted in descending order, one-hot label), members
drawn from the training set and non-members from the split's reference fold. Training
alternates (Nasr et al. Alg. 1): before each model step, `k` steps of h ascending G (Adam, a
member batch and a reference batch, the model in eval mode and without gradients); then the
model step on its batch with

- `model_term: log` (the paper): CE + lambda * mean log h(f(x), y) over the batch's members;
- `model_term: mean` (the authors' public code): CE + lambda * (mean h(f(x), y) - 0.5).

`warmup_epochs` epochs of plain CE come first (the public code trains one epoch without the
regulariser). The inference model is part of the defense's state, saved with the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mia_bench import checks
from mia_bench.defenses.base import Defense, TrainingParts


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class InferenceModel(nn.Module):
    """h(p, y): one branch on the sorted probabilities, one on the one-hot label, joined by a
    linear layer to one membership logit (Nasr et al. Sec. 4 / Fig. 2, smaller widths)."""

    def __init__(self, num_classes: int, hidden: Sequence[int] = (256, 64)) -> None:
        super().__init__()
        hidden = list(hidden)
        self.probs = _mlp([num_classes, *hidden])
        self.label = _mlp([num_classes, hidden[-1]])
        self.head = nn.Sequential(
            nn.Linear(2 * hidden[-1], hidden[-1]), nn.ReLU(), nn.Linear(hidden[-1], 1)
        )

    @staticmethod
    def features(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = F.softmax(logits, dim=1).sort(dim=1, descending=True).values
        return probs, F.one_hot(targets, logits.shape[1]).to(probs.dtype)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Membership logit per row (sigmoid of it = h)."""
        probs, onehot = self.features(logits, targets)
        return self.head(torch.cat([self.probs(probs), self.label(onehot)], dim=1)).squeeze(1)


class AdvReg(Defense):
    resumable = False  # the inference model's Adam state is not in state_dict()
    name = "adv_reg"
    uses_reference = True

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        lam: float = 1.0,
        k: int = 1,
        attack_lr: float = 1e-3,
        hidden: Sequence[int] = (256, 64),
        model_term: str = "log",
        warmup_epochs: int = 0,
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.lam = checks.number("defense.lam", lam, lo=0.0)
        self.k = checks.integer("defense.k", k, lo=1)
        self.attack_lr = checks.number("defense.attack_lr", attack_lr, lo=0.0, lo_open=True)
        self.model_term = checks.choice("defense.model_term", model_term, ("log", "mean"))
        self.warmup_epochs = checks.integer("defense.warmup_epochs", warmup_epochs, lo=0)
        self.hidden = [checks.integer("defense.hidden", h, lo=1) for h in hidden]
        self.inference = InferenceModel(num_classes, self.hidden)
        # Set by `setup` for the length of training; the model sits in a list so that it is
        # not registered as a submodule (it is saved on its own).
        self._model: list[nn.Module] = []
        self._train: tuple[torch.Tensor, torch.Tensor] | None = None
        self._ref: tuple[torch.Tensor, torch.Tensor] | None = None

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, train_data
    ) -> TrainingParts | None:
        ctx = self.attached_context("the reference fold")
        self._model = [model]
        self._train = train_data
        self._ref = tuple(t.to(ctx.device) for t in ctx.reference)
        self._preprocess = ctx.preprocess
        self._gen = torch.Generator(device="cpu").manual_seed(ctx.seed + 1)
        self._opt = torch.optim.Adam(self.inference.parameters(), lr=self.attack_lr)
        return None

    def end_training(self) -> None:
        self._model, self._train, self._ref = [], None, None

    def _draw(
        self, data: tuple[torch.Tensor, torch.Tensor], b: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        idx = torch.randint(len(y), (b,), generator=self._gen).to(y.device)
        return x[idx], y[idx]

    def attack_steps(self, batch_size: int) -> torch.Tensor:
        """k steps of the inference model ascending G on fresh member / reference batches;
        returns the last step's loss (-G)."""
        model = self._model[0]
        was_training = model.training
        model.eval()  # the attacker queries the model as deployed; BN statistics stay untouched
        last = torch.tensor(float("nan"))
        for _ in range(self.k):
            xm, ym = self._draw(self._train, batch_size)
            xr, yr = self._draw(self._ref, batch_size)
            with torch.no_grad():
                zm, zr = model(self._preprocess(xm)), model(self._preprocess(xr))
            out = self.inference(torch.cat([zm, zr]), torch.cat([ym, yr]))
            is_member = torch.cat([torch.ones(len(ym)), torch.zeros(len(yr))]).to(out.device)
            loss = F.binary_cross_entropy_with_logits(out, is_member)
            self._opt.zero_grad(set_to_none=True)
            loss.backward()
            self._opt.step()
            last = loss.detach()
        model.train(was_training)
        return last

    def model_penalty(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The inference gain term on the batch's members (see the module docstring)."""
        h_logit = self.inference(logits, targets)
        if self.model_term == "log":
            return F.logsigmoid(h_logit).mean()
        return torch.sigmoid(h_logit).mean() - 0.5

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ce = F.cross_entropy(logits, targets)
        if epoch < self.warmup_epochs:
            return ce
        if self._model:
            self.attack_steps(len(targets))
        return ce + self.lam * self.model_penalty(logits, targets)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "lam": self.lam,
            "k": self.k,
            "model_term": self.model_term,
            "warmup_epochs": self.warmup_epochs,
            "inference_input": "sorted probabilities + one-hot label",
        }
