"""HAMP (Chen & Pattabiraman, NDSS 2024, "Overconfidence is a Dangerous Thing: Mitigating
Membership Inference Attacks by Enforcing Less Confident Prediction").

Training (Sec. IV-B):
- high-entropy soft labels: the true class gets probability p*, every other class
  (1 - p*) / (C - 1), with p* lowered from 1 in steps of `step` (0.01 in the authors' code)
  until the label's entropy reaches gamma * log C (gamma = the entropy threshold);
- loss = KL(y_soft || softmax(z)) - alpha * H(softmax(z)): the entropy term rewards less
  confident predictions.

Test time (Sec. IV-C): each answer is replaced by the model's output on a random input of the
input domain (uniform pixels for images; random bits for binary features, else uniform in the
training set's per-feature range), its scores re-ordered so that they rank the classes as the
query's own output did: the label (and the whole ranking) is kept, the confidence values
come from a sample that is certainly not a member.

Paper text vs code (`kl: batchmean | elementwise`): the text's KL is summed over classes and
averaged over the batch; the authors' code calls F.kl_div with its default reduction, the mean
over batch * classes, which divides the KL term by C relative to the entropy term.

The random inputs are drawn once (a pool of `pool_size`, seeded by the model's seed) and a
query is matched to a pool entry by a hash of its output, so the same query gets the same
answer (the authors draw fresh inputs per evaluation; the distribution is the same).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mia_bench import checks
from mia_bench.defenses.base import Defense, DefenseContext

KL = ("batchmean", "elementwise")


def soft_label_top1(num_classes: int, gamma: float, step: float = 0.01) -> float:
    """p*: the true-class probability of HAMP's soft label, the first of 1 - step, 1 - 2 step,
    ... whose label (p*, (1 - p*) / (C - 1), ...) has entropy >= gamma * log C."""
    c = num_classes
    threshold = gamma * math.log(c)
    k = 1
    while True:
        p = 1.0 - k * step
        q = (1.0 - p) / (c - 1)
        h = -(p * math.log(p) if p > 0 else 0.0) - (c - 1) * (q * math.log(q) if q > 0 else 0.0)
        # the same floating-point tolerance as a repeated subtraction would meet
        if h >= threshold - 1e-12 or p <= 1.0 / c + 1e-12:
            return max(p, 1.0 / c)
        k += 1


def soft_labels(targets: torch.Tensor, num_classes: int, top1: float) -> torch.Tensor:
    """(B, C): top1 on the true class, (1 - top1) / (C - 1) elsewhere."""
    off = (1.0 - top1) / (num_classes - 1)
    t = torch.full((len(targets), num_classes), off, device=targets.device)
    t.scatter_(1, targets.view(-1, 1), top1)
    return t


def hamp_loss(
    logits: torch.Tensor, soft: torch.Tensor, alpha: float, kl: str = "batchmean"
) -> torch.Tensor:
    """KL(soft || p) - alpha * mean H(p), p = softmax(logits); `kl` as the module docstring."""
    log_p = F.log_softmax(logits.float(), 1)
    div = (torch.xlogy(soft, soft) - soft * log_p).sum(1).mean()
    if kl == "elementwise":
        div = div / logits.shape[1]
    entropy = -(log_p.exp() * log_p).sum(1).mean()
    return div - alpha * entropy


def rank_replace(log_p: torch.Tensor, pool_log_p: torch.Tensor) -> torch.Tensor:
    """Row i gets pool row i's values, re-ordered to rank the classes as row i of log_p does
    (the largest pool value on the query's top class, and so on)."""
    order = log_p.argsort(1)
    out = torch.empty_like(log_p)
    out.scatter_(1, order, pool_log_p.sort(1).values)
    return out


def random_inputs(x_train: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n random points of the input domain, shaped as the stored data."""
    shape = (n, *x_train.shape[1:])
    if x_train.dtype == torch.uint8:  # images
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    xf = x_train.float()
    if bool(((xf == 0) | (xf == 1)).all()):  # binary features (Purchase, Texas)
        return torch.randint(0, 2, shape, generator=gen).to(x_train.dtype)
    lo, hi = xf.min(0).values, xf.max(0).values
    return (lo + (hi - lo) * torch.rand(shape, generator=gen)).to(x_train.dtype)


class HAMP(Defense):
    name = "hamp"
    # answers are rank-replaced scores: gradients of them say nothing about the model
    blocks_signals = frozenset({"grad_x", "grad_w"})
    query_time_params = frozenset({"modify_output", "pool_size"})

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        gamma: float = 0.95,
        alpha: float = 0.001,
        step: float = 0.01,
        kl: str = "batchmean",
        modify_output: bool = True,
        pool_size: int = 10000,
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.gamma = checks.number("defense.gamma", gamma, lo=0.0, hi=1.0)
        self.alpha = checks.number("defense.alpha", alpha, lo=0.0)
        self.step = checks.number("defense.step", step, lo=0.0, hi=0.5, lo_open=True)
        self.kl = checks.choice("defense.kl", kl, KL)
        self.modify_output = checks.flag("defense.modify_output", modify_output)
        self.pool_size = checks.integer("defense.pool_size", pool_size, lo=1)
        if not self.modify_output:  # plain answers: the white-box signals are the model's
            self.blocks_signals = frozenset()
        self.top1 = soft_label_top1(num_classes, self.gamma, self.step)
        self.pool: torch.Tensor | None = None  # sorted log-probabilities of random inputs

    def loss(self, logits, targets, *, epoch: int, features=None) -> torch.Tensor:
        """KL(y_soft || p) - alpha H(p) (HAMP Sec. IV-B)."""
        soft = soft_labels(targets, self.num_classes, self.top1)
        return hamp_loss(logits, soft, self.alpha, self.kl)

    def after_training(self, model: nn.Module, ctx: DefenseContext | None) -> None:
        """Answer `pool_size` random inputs once; their outputs replace the queries'."""
        if not self.modify_output:
            return
        from mia_bench.signals.logits import predict_logits

        ctx = ctx or self.attached_context("the random inputs of its output modification")
        gen = torch.Generator().manual_seed(ctx.seed)
        x_train = ctx.x[ctx.train_idx]
        xr = random_inputs(x_train, self.pool_size, gen)
        z = predict_logits(
            model, xr, preprocess=ctx.preprocess, device=ctx.device, batch_size=ctx.eval_batch_size
        )
        self.pool = F.log_softmax(z.float(), 1).to(ctx.device)

    @torch.no_grad()
    def postprocess(self, logits: torch.Tensor) -> torch.Tensor:
        """Rank-preserving replacement by a pool entry chosen by a hash of the query's output
        (the same query, the same answer)."""
        if self.pool is None:
            return logits
        log_p = F.log_softmax(logits.float(), 1)
        rows = log_p.detach().cpu().numpy().astype(np.float32)
        idx = torch.tensor(
            [
                int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little")
                % self.pool_size
                for r in rows
            ],
            device=logits.device,
        )
        return rank_replace(log_p, self.pool.to(logits.device)[idx])

    def describe(self) -> dict:
        return {
            "name": self.name,
            "gamma": self.gamma,
            "alpha": self.alpha,
            "top1": self.top1,
            "kl": self.kl,
            "modify_output": self.modify_output,
            "models_trained": 1,
            "not_applicable": sorted(self.blocks_signals) if self.modify_output else [],
        }
