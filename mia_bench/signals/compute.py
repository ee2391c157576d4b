"""Model -> per-sample outputs, computed once per (model, query set) and read by every attack.

What is computed follows what the selected attacks need (`Attack.needs`): logits always;
per-sample gradient norms ("grad_x", "grad_w") only when a white-box attack asks for them;
reference-model outputs on a population ("reference") only for LiRA / RMIA.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mia_bench.data.transforms import Preprocess
from mia_bench.signals.gradnorms import per_sample_grad_norms
from mia_bench.signals.logits import predict_logits

__all__ = [
    "GRAD_SIGNALS",
    "PopulationView",
    "ReferenceSignals",
    "Signals",
    "compute_signals",
    "label_correctness",
    "per_sample_grad_norms",
    "true_class_stats",
]

# signal name in Attack.needs -> the `wrt` of per_sample_grad_norms; results land in
# Signals.extra as "<name>_l1" and "<name>_l2"
GRAD_SIGNALS = {"grad_x": "inputs", "grad_w": "params"}


def true_class_stats(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p_y, phi) per row, in float64.

    phi = log(p_y / (1 - p_y)) = z_y - logsumexp_{c != y} z_c, the logit-scaled confidence of
    LiRA (Carlini et al. 2022, Sec. IV-B); this form stays finite when p_y rounds to 1.
    """
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(z))
    zy = z[rows, labels]
    zmax = z.max(1)
    log_py = zy - (zmax + np.log(np.exp(z - zmax[:, None]).sum(1)))
    others = z.copy()
    others[rows, labels] = -np.inf
    omax = others.max(1)
    lse_others = omax + np.log(np.exp(others - omax[:, None]).sum(1))
    return log_py, zy - lse_others


@dataclass
class PopulationView:
    """An audited model's outputs on the reference population (for LiRA / RMIA).

    index: (n,) position of each query of the owning `Signals` in the population;
    logits: (n_pop, C) this model's logits on every population sample.
    """

    index: np.ndarray
    logits: np.ndarray


@dataclass
class ReferenceSignals:
    """Outputs of N reference models on a population of n_pop samples.

    keep: (N, n_pop) bool, True where the sample was in the model's training set;
    labels: (n_pop,); log_py, phi: (N, n_pop) float64, see `true_class_stats`.
    """

    keep: np.ndarray
    labels: np.ndarray
    log_py: np.ndarray
    phi: np.ndarray

    @classmethod
    def from_logits(
        cls, logits: list[np.ndarray], labels: np.ndarray, keep: np.ndarray
    ) -> ReferenceSignals:
        stats = [true_class_stats(z, labels) for z in logits]
        return cls(
            keep=np.asarray(keep, dtype=bool),
            labels=np.asarray(labels),
            log_py=np.stack([s[0] for s in stats]),
            phi=np.stack([s[1] for s in stats]),
        )

    @property
    def num_models(self) -> int:
        return len(self.keep)


@dataclass
class Signals:
    """What an attacker observes about a set of queries.

    logits: (n, C) float (after any test-time defense); labels: (n,) true classes;
    member: (n,) bool, known for shadow models, the ground truth for the target.
    extra: further per-sample signals by name (e.g. "grad_x_l2"; "inputs": the queries as the
    model sees them, flattened, for attacks that learn from the inputs).
    population: the same model's outputs on the reference population, when an attack needs it.
    public: the same model's signals on public non-members (the split's reference fold), with
    their "inputs", when an attack needs them ("public": the quantile-regression attack).
    """

    logits: np.ndarray
    labels: np.ndarray
    member: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    population: PopulationView | None = None
    public: Signals | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def log_probs(self) -> np.ndarray:
        z = self.logits.astype(np.float64)
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self.log_probs)

    @property
    def loss(self) -> np.ndarray:
        """Per-sample cross-entropy."""
        return -self.log_probs[np.arange(len(self)), self.labels]

    @staticmethod
    def concat(parts: list[Signals]) -> Signals:
        """Pool the signals of several models (shadows); population views and public signals
        are per model and are dropped."""
        keys = set.intersection(*(set(p.extra) for p in parts)) if parts else set()
        return Signals(
            logits=np.concatenate([p.logits for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            member=np.concatenate([p.member for p in parts]),
            extra={k: np.concatenate([p.extra[k] for p in parts]) for k in keys},
        )


def label_correctness(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    views: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    *,
    preprocess: Preprocess,
    device: torch.device,
    postprocess=None,
    batch_size: int = 4096,
) -> np.ndarray:
    """(n, len(views)) float64, 1.0 where the answer's label on view_k(x) (x as stored, before
    `preprocess`) is the true label: the label-only attacker's observation (Choquette-Choo et
    al. 2021)."""
    yy = y.cpu().numpy()
    cols = [
        predict_logits(
            model,
            view(x),
            preprocess=preprocess,
            device=device,
            postprocess=postprocess,
            batch_size=batch_size,
        )
        .argmax(1)
        .numpy()
        == yy
        for view in views
    ]
    return np.stack(cols, 1).astype(np.float64) if cols else np.zeros((len(yy), 0))


def compute_signals(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    member: np.ndarray,
    *,
    preprocess: Preprocess,
    device: torch.device,
    postprocess=None,
    batch_size: int = 4096,
    needs: frozenset[str] = frozenset(),
    views: Mapping[str, Sequence[Callable[[torch.Tensor], torch.Tensor]]] | None = None,
) -> Signals:
    """Logits of `model` (in eval mode) for queries (x, y), with the defense's test-time change,
    plus the gradient norms named in `needs` (see GRAD_SIGNALS), of the model's own loss, and
    for each `views` entry the label correctness on those augmented queries
    (`label_correctness`), stored in `extra` under its key."""
    logits = predict_logits(
        model,
        x,
        preprocess=preprocess,
        device=device,
        postprocess=postprocess,
        batch_size=batch_size,
    )
    extra: dict[str, np.ndarray] = {}
    for name, wrt in GRAD_SIGNALS.items():
        if name not in needs:
            continue
        parts = []
        for i in range(0, len(x), batch_size):
            xb = preprocess(x[i : i + batch_size].to(device))
            parts.append(per_sample_grad_norms(model, xb, y[i : i + batch_size].to(device), wrt))
        for order in ("l1", "l2"):
            extra[f"{name}_{order}"] = (
                torch.cat([p[order] for p in parts]).cpu().numpy().astype(np.float64)
            )
    if "inputs" in needs:
        extra["inputs"] = np.concatenate(
            [
                preprocess(x[i : i + batch_size].to(device)).flatten(1).float().cpu().numpy()
                for i in range(0, len(x), batch_size)
            ]
        )
    for key, vs in (views or {}).items():
        extra[key] = label_correctness(
            model,
            x,
            y,
            vs,
            preprocess=preprocess,
            device=device,
            postprocess=postprocess,
            batch_size=batch_size,
        )
    return Signals(
        logits=logits.numpy().astype(np.float32),
        labels=y.cpu().numpy().astype(np.int64),
        member=np.asarray(member, dtype=bool),
        extra=extra,
    )
