"""Quantile-regression membership inference (Bertran, Tang, Kearns, Morgenstern, Roth & Wu,
NeurIPS 2023, "Scalable Membership Inference Attacks via Quantile Regression").

No shadow or reference models. The attacker holds public data known to be non-members (here
the split's reference fold) and queries the audited model on it. Its score is the hinge
(logit-margin) score s(x, y) = z_y - max_{y' != y} z_{y'} (Sec. 4). A regressor q(x) is fitted
on the public samples to the (1 - alpha) quantile of s given x by minimising the pinball loss

    L_tau(q, s) = max(tau (s - q), (tau - 1)(s - q)),   tau = 1 - alpha,

whose minimiser is the conditional tau-quantile, so that a public non-member exceeds its own
q(x) with probability alpha (the target false-positive rate, Sec. 3). Decision: member iff
s(x, y) > q(x); the reported score is s(x, y) - q(x), whose ROC the tables read.

`loss: gaussian` is the parametrisation in the authors' released code: the regressor predicts
a mean mu(x) and log standard deviation of s given x, fitted by Gaussian negative
log-likelihood, and q(x) = mu(x) + sigma(x) Phi^{-1}(1 - alpha).

The regressor here is an MLP on the flattened, normalised input (and the label's one-hot,
`use_label`), trained on 1 - `val_fraction` of the public data, keeping the epoch of lowest
loss on the rest (early stopping). The paper uses a network at least as large as the
target's (a ConvNeXt on images), so on images this is a weaker, CPU-sized instance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import norm
from torch import nn

from mia_bench import checks
from mia_bench.attacks.base import Attack
from mia_bench.signals.compute import Signals

LOSSES = ("pinball", "gaussian")


def hinge_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """s(x, y) = z_y - max_{y' != y} z_{y'} (float64): positive iff correctly classified."""
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(z))
    zy = z[rows, labels]
    others = z.copy()
    others[rows, labels] = -np.inf
    return zy - others.max(1)


def pinball_loss(q: torch.Tensor, s: torch.Tensor, tau: float) -> torch.Tensor:
    """Mean of max(tau (s - q), (tau - 1)(s - q)) (Koenker & Bassett 1978; Bertran et al.
    Sec. 3): under-predicting s costs tau per unit, over-predicting costs 1 - tau."""
    d = s - q
    return torch.maximum(tau * d, (tau - 1.0) * d).mean()


def gaussian_nll(mu: torch.Tensor, log_sd: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Mean of log sigma + (s - mu)^2 / (2 sigma^2), the Gaussian NLL without its constant."""
    return (log_sd + 0.5 * ((s - mu) * torch.exp(-log_sd)) ** 2).mean()


class QuantileRegression(Attack):
    """See the module docstring; `alpha` is the target false-positive rate."""

    needs = frozenset({"public", "inputs"})

    def __init__(
        self,
        alpha: float = 0.01,
        loss: str = "pinball",
        hidden: Sequence[int] = (256, 128),
        use_label: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 100,
        batch_size: int = 128,
        val_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        self.alpha = checks.number("alpha", alpha, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        self.loss = checks.choice("loss", loss, LOSSES)
        self.hidden = checks.widths("hidden", hidden)
        self.use_label = checks.flag("use_label", use_label)
        epochs = checks.integer("epochs", epochs, lo=1)
        batch_size = checks.integer("batch_size", batch_size, lo=1)
        self.lr = checks.number("lr", lr, lo=0.0, lo_open=True)
        self.weight_decay = checks.number("weight_decay", weight_decay, lo=0.0)
        self.val_fraction = checks.number(
            "val_fraction", val_fraction, lo=0.0, hi=1.0, hi_open=True
        )
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        # the regressor fitted for the last audited model (score and predict share it)
        self._fitted: tuple[str, nn.Module, np.ndarray, np.ndarray, float, float] | None = None

    def _features(self, s: Signals, num_classes: int) -> np.ndarray:
        if "inputs" not in s.extra:
            raise KeyError(f"attack {self.name} needs signal 'inputs'; compute_signals(needs=)")
        x = s.extra["inputs"].astype(np.float32)
        if self.use_label:
            x = np.concatenate([x, np.eye(num_classes, dtype=np.float32)[s.labels]], 1)
        return x

    def regressor(self, x: np.ndarray, s: np.ndarray) -> tuple[nn.Module, np.ndarray, np.ndarray]:
        """Fit the MLP on (x, s) with the chosen loss; returns (net, input mean, input sd), the
        net predicting standardised scores (q, or mu and log sigma)."""
        mu_x, sd_x = x.mean(0), x.std(0) + 1e-6
        xt = torch.from_numpy((x - mu_x) / sd_x)
        st = torch.from_numpy(s.astype(np.float32))
        torch.manual_seed(self.seed)
        layers: list[nn.Module] = []
        width = xt.shape[1]
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        net = nn.Sequential(*layers, nn.Linear(width, 1 if self.loss == "pinball" else 2))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.seed)
        tau = 1.0 - self.alpha

        def objective(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            if self.loss == "pinball":
                return pinball_loss(out[:, 0], target, tau)
            return gaussian_nll(out[:, 0], out[:, 1], target)

        # a held-out part of the public data picks the epoch (early stopping): a regressor
        # that fits its training scores too closely under-predicts the quantile elsewhere
        n_val = int(self.val_fraction * len(st))
        order = torch.randperm(len(st), generator=gen)
        val, fit = order[:n_val], order[n_val:]
        best, best_state = float("inf"), None
        for _ in range(self.epochs):
            net.train()
            perm = fit[torch.randperm(len(fit), generator=gen)]
            for i in range(0, len(perm), self.batch_size):
                idx = perm[i : i + self.batch_size]
                loss = objective(net(xt[idx]), st[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if n_val:
                net.eval()
                with torch.no_grad():
                    v = float(objective(net(xt[val]), st[val]))
                if v < best:
                    best, best_state = v, {k: t.clone() for k, t in net.state_dict().items()}
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return net, mu_x, sd_x

    @torch.no_grad()
    def quantile(self, net: nn.Module, x: np.ndarray, mu_x: np.ndarray, sd_x: np.ndarray):
        """q(x) in standardised score units: the pinball output, or mu + sigma z_{1-alpha}."""
        out = net(torch.from_numpy((x - mu_x) / sd_x)).double().numpy()
        if self.loss == "pinball":
            return out[:, 0]
        return out[:, 0] + np.exp(out[:, 1]) * norm.ppf(1.0 - self.alpha)

    def fit(self, shadow: list[Signals]) -> None:
        """Nothing to learn from shadows: the regressor is fitted per audited model on its
        answers to public data (in `score`)."""

    def _margin(self, target: Signals) -> np.ndarray:
        if target.public is None:
            raise RuntimeError(f"attack {self.name} needs Signals.public (the reference fold)")
        c = target.logits.shape[1]
        # the regressor depends only on the model's answers to the public data
        key = hashlib.sha256(target.public.logits.tobytes()).hexdigest()
        if self._fitted is None or self._fitted[0] != key:
            pub = target.public
            s_pub = hinge_score(pub.logits, pub.labels)
            # standardise the regression target; the pinball minimiser is scale-equivariant
            m, sd = float(s_pub.mean()), float(s_pub.std() + 1e-12)
            net, mu_x, sd_x = self.regressor(self._features(pub, c), (s_pub - m) / sd)
            self._fitted = (key, net, mu_x, sd_x, m, sd)
        _, net, mu_x, sd_x, m, sd = self._fitted
        q = self.quantile(net, self._features(target, c), mu_x, sd_x) * sd + m
        return hinge_score(target.logits, target.labels) - q

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        return {self.name: self._margin(target)}

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        return {self.name: self._margin(target) > 0.0}
