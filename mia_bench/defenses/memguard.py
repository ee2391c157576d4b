"""MemGuard (Jia et al., CCS 2019): a test-time defense that turns each answer into an
adversarial example for the defender's own membership classifier, without changing the label.

After training (`after_training`), a surrogate NN attack g is fit on the target's outputs for
its training set (members) and for an equal number of reference-fold samples (non-members); its
input is the sorted log-probability vector (label-free, as MemGuard's defense classifier).
Each query's output s = softmax(z) then goes through

- Phase I: search logits z' minimising |g(z')| + c2 * max(0, max_{j != l} z'_j - z'_l)
  + c3 * ||softmax(z') - s||_1 (g is the surrogate's logit, so 0 means a 0.5 score; l the
  predicted label) by `steps` Adam steps from z; keep, per row, the iterate with the smallest
  |g| among those whose argmax is still l (z itself if none: the label never changes);
- Phase II: with d = ||softmax(z') - s||_1, answer softmax(z') with probability
  min(1, budget / d) and s otherwise, so that the expected L1 distortion is at most `budget`
  (Jia et al. Sec. 4.3). The draw is a hash of the query's logits and the model's seed, so a
  repeated query gets the same answer.

Answers are log-probabilities (logits normalised by log-softmax), for protected and untouched
rows alike, so that the scale of the logits does not reveal which rows were changed. The
budget is in L1 distance between probability vectors (0 to 2), as in Jia et al.; RelaxLoss
App. B.5 sweeps it from 0 until the NN attack is at AUC 0.5.

Gradient-based attacks (grad_x, grad_w) are not applicable: the defense only changes answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mia_bench import checks
from mia_bench.defenses.base import DefenseContext
from mia_bench.defenses.none import NoDefense


def surrogate_input(logits: torch.Tensor) -> torch.Tensor:
    """Sorted (descending) log-probabilities: invariant to adding a constant to the logits."""
    return F.log_softmax(logits, dim=1).sort(dim=1, descending=True).values


class Surrogate(nn.Module):
    """MLP on standardised `surrogate_input`, one membership logit per row."""

    def __init__(
        self, num_classes: int, hidden: Sequence[int], mu: torch.Tensor, sd: torch.Tensor
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))
        self.register_buffer("mu", mu)
        self.register_buffer("sd", sd)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return self.net((surrogate_input(logits) - self.mu) / self.sd).squeeze(1)


def fit_surrogate(
    member_logits: torch.Tensor,
    nonmember_logits: torch.Tensor,
    hidden: Sequence[int],
    epochs: int,
    lr: float,
    seed: int,
    batch_size: int = 256,
) -> Surrogate:
    """Train the surrogate attack (Adam, binary cross-entropy, member = 1), seeded."""
    z = torch.cat([member_logits, nonmember_logits]).float()
    y = torch.cat([torch.ones(len(member_logits)), torch.zeros(len(nonmember_logits))]).to(z.device)
    feats = surrogate_input(z)
    with torch.random.fork_rng(devices=[z.device] if z.device.type == "cuda" else []):
        torch.manual_seed(seed)
        g = Surrogate(z.shape[1], hidden, feats.mean(0), feats.std(0) + 1e-6).to(z.device)
        opt = torch.optim.Adam(g.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            perm = torch.randperm(len(y), generator=gen).to(z.device)
            for i in range(0, len(y), batch_size):
                idx = perm[i : i + batch_size]
                loss = F.binary_cross_entropy_with_logits(g(z[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    g.eval()
    for p in g.parameters():
        p.requires_grad_(False)
    return g


def phase_one(
    g: Surrogate,
    logits: torch.Tensor,
    steps: int,
    lr: float,
    c2: float,
    c3: float,
    tol: float = 1e-2,
) -> torch.Tensor:
    """Log-probabilities of the protected vector of each row (Phase I, module docstring).

    Rows are independent (the loss is a sum over rows and Adam acts elementwise), so a row's
    answer does not depend on the other queries of the batch. A row stops improving once its
    |g| < `tol` (a score within 0.0025 of 0.5); the search ends when every row has.
    """
    z0 = F.log_softmax(logits.float(), dim=1)
    s = z0.exp()
    label = z0.argmax(1)
    onehot = F.one_hot(label, z0.shape[1]).bool()
    with torch.no_grad():
        best, best_g = z0.clone(), g(z0).abs()
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            done = best_g < tol
            if bool(done.all()):
                break
            other = z.masked_fill(onehot, float("-inf")).max(1).values
            keep_label = F.relu(other - z.gather(1, label[:, None]).squeeze(1))
            dist = (F.softmax(z, dim=1) - s).abs().sum(1)
            loss = (g(z).abs() + c2 * keep_label + c3 * dist).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                cur = F.log_softmax(z, dim=1)
                cur_g = g(cur).abs()
                better = (cur.argmax(1) == label) & (cur_g < best_g) & ~done
                best[better], best_g[better] = cur[better], cur_g[better]
    return best.detach()


def row_uniforms(logits: torch.Tensor, seed: int) -> torch.Tensor:
    """One U[0, 1) number per row, a function of the row's values and `seed` only: the same
    query always gets the same Phase II draw (no averaging over repeated queries), whatever
    else is in the batch."""
    rows = logits.detach().float().cpu().contiguous().numpy()
    out = []
    for row in rows:
        digest = hashlib.sha256(seed.to_bytes(8, "little", signed=True) + row.tobytes()).digest()
        out.append(int.from_bytes(digest[:8], "little") / 2.0**64)
    return torch.tensor(out, dtype=torch.float64)


def phase_two(
    z0: torch.Tensor, protected: torch.Tensor, budget: float, u: torch.Tensor
) -> torch.Tensor:
    """Row i answers `protected` if u_i < min(1, budget / d_i), d_i its L1 distortion between
    probability vectors, else `z0`: the expected distortion of each row is min(d_i, budget)."""
    d = (protected.exp() - z0.exp()).abs().sum(1).double()
    p = torch.where(d > 0, (budget / d.clamp(min=1e-12)).clamp(max=1.0), torch.ones_like(d))
    use = u.to(d.device) < p
    return torch.where(use[:, None], protected, z0)


class MemGuard(NoDefense):
    name = "memguard"
    uses_reference = True
    blocks_signals = frozenset({"grad_x", "grad_w"})
    # Training is plain CE: every parameter acts after training, so the whole budget sweep
    # shares one trained target (and shadow) through the cache.
    query_time_params = frozenset(
        {
            "budget",
            "steps",
            "lr",
            "c2",
            "c3",
            "surrogate_hidden",
            "surrogate_epochs",
            "surrogate_lr",
        }
    )

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        budget: float = 0.5,
        steps: int = 300,
        lr: float = 0.1,
        c2: float = 10.0,
        c3: float = 0.1,
        surrogate_hidden: Sequence[int] = (100,),
        surrogate_epochs: int = 100,
        surrogate_lr: float = 1e-3,
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.budget = checks.number("defense.budget", budget, lo=0.0)
        self.steps = checks.integer("defense.steps", steps, lo=0)
        self.lr = checks.number("defense.lr", lr, lo=0.0, lo_open=True)
        self.c2 = checks.number("defense.c2", c2, lo=0.0)
        self.c3 = checks.number("defense.c3", c3, lo=0.0)
        self.surrogate_hidden = [
            checks.integer("defense.surrogate_hidden", h, lo=1) for h in surrogate_hidden
        ]
        self.surrogate_epochs = checks.integer("defense.surrogate_epochs", surrogate_epochs, lo=1)
        self.surrogate_lr = checks.number(
            "defense.surrogate_lr", surrogate_lr, lo=0.0, lo_open=True
        )
        # Fit after training and refit after a cache load (seeded, so identical): kept in a
        # list so that it is not part of the model's checkpoint.
        self._surrogate: list[Surrogate] = []
        self._seed = 0

    def after_training(self, model: nn.Module, ctx: DefenseContext | None) -> None:
        """Fit the surrogate on members (training set) vs an equal-size reference sample."""
        from mia_bench.signals.logits import predict_logits

        if ctx is None:
            raise RuntimeError(
                "memguard needs a DefenseContext for the training and reference data"
            )
        kw = {"preprocess": ctx.preprocess, "device": ctx.device, "batch_size": ctx.eval_batch_size}
        members = predict_logits(model, ctx.train[0], **kw)
        x_ref = ctx.reference[0]
        gen = torch.Generator().manual_seed(ctx.seed)
        pick = torch.randperm(len(x_ref), generator=gen)[: len(members)]
        nonmembers = predict_logits(model, x_ref[torch.sort(pick).values], **kw)
        self._seed = ctx.seed
        self._surrogate = [
            fit_surrogate(
                members.to(ctx.device),
                nonmembers.to(ctx.device),
                self.surrogate_hidden,
                self.surrogate_epochs,
                self.surrogate_lr,
                ctx.seed,
            )
        ]

    @property
    def surrogate(self) -> Surrogate | None:
        return self._surrogate[0] if self._surrogate else None

    def postprocess(self, logits: torch.Tensor) -> torch.Tensor:
        """Protected answers as log-probabilities (module docstring); identity before fitting."""
        g = self.surrogate
        if g is None:
            return logits
        logits = logits.to(g.mu.device)
        z0 = F.log_softmax(logits.float(), dim=1)
        if self.budget == 0 or self.steps == 0:
            return z0
        protected = phase_one(g, logits, self.steps, self.lr, self.c2, self.c3)
        return phase_two(z0, protected, self.budget, row_uniforms(logits, self._seed))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "budget": self.budget,
            "budget_norm": "L1 between probability vectors",
            "steps": self.steps,
            "c2": self.c2,
            "c3": self.c3,
            "surrogate": f"MLP {self.surrogate_hidden} on sorted log-probabilities",
            "not_applicable": sorted(self.blocks_signals),
        }
