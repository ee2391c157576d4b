"""Label-only attacks (Choquette-Choo, Tramer, Carlini & Papernot, ICML 2021, "Label-Only
Membership Inference Attacks").

The attacker sees only the predicted label (argmax of the answer, after any test-time defense),
so output-perturbing defenses that keep the label (MemGuard, HAMP) do not hide it.

- gap attack (Sec. 3, the "gap attack" baseline of Yeom et al.): member iff the query is
  classified correctly. Its balanced accuracy is 1/2 + (train acc - test acc)/2; a defense
  that only hides confidences must beat it.
- augmentation attack (Sec. 4, "data augmentation"): query the model on a set of augmented
  copies of x and record, per copy, whether the label is still y; members are classified
  correctly more robustly. Images: horizontal flip x translations by d pixels (all shifts with
  |i| + |j| = d, plus the identity: 4d + 1 positions, 2(4d + 1) copies with flips, the
  paper's CIFAR set with d = 1). Tabular data: the identity plus `noise_samples` copies with
  Gaussian noise of standard deviation `noise_sigma` (in the feature units), as the paper's
  noise-robustness variant. The correctness vector is combined on the shadows by a threshold
  on the fraction correct (`combine: count`) or by a logistic regression on the vector
  (`combine: logistic`, the "small model" of Sec. 4).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mia_bench import checks
from mia_bench.attacks.base import Attack
from mia_bench.metrics import best_threshold
from mia_bench.signals.compute import Signals

COMBINE = ("count", "logistic")
# A view maps a whole query set (raw tensors, as stored) to its augmented copy.
View = Callable[[torch.Tensor], torch.Tensor]


def correct(s: Signals) -> np.ndarray:
    """1.0 where the answer's label is the true one, else 0.0."""
    return (s.logits.argmax(1) == s.labels).astype(np.float64)


class GapAttack(Attack):
    """Member iff correctly classified; the score is that indicator."""

    def __init__(self) -> None:
        """No parameters: the decision rule is fixed."""

    def fit(self, shadow: list[Signals]) -> None:
        """Nothing to learn: the decision rule is fixed."""

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        return {self.name: correct(target)}

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        return {self.name: correct(target) > 0.5}


def shift(x: torch.Tensor, di: int, dj: int) -> torch.Tensor:
    """Translate NCHW images by (di rows, dj columns), filling the uncovered border with 0
    (black, as the zero padding of training's random crop)."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    rs, rd = (slice(0, h - di), slice(di, h)) if di >= 0 else (slice(-di, h), slice(0, h + di))
    cs, cd = (slice(0, w - dj), slice(dj, w)) if dj >= 0 else (slice(-dj, w), slice(0, w + dj))
    out[..., rd, cd] = x[..., rs, cs]
    return out


def image_views(d: int, flip: bool) -> list[View]:
    """The identity first, then every shift with |i| + |j| = d, each also flipped if `flip`."""
    offsets = [(0, 0)]
    if d > 0:
        offsets += sorted(
            {(i, s * (d - abs(i))) for i in range(-d, d + 1) for s in (1, -1)} - {(0, 0)}
        )
    views: list[View] = []
    for flipped in (False, True) if flip else (False,):
        for di, dj in offsets:

            def view(x: torch.Tensor, di: int = di, dj: int = dj, f: bool = flipped):
                y = shift(x, di, dj) if (di or dj) else x
                return y.flip(-1) if f else y

            views.append(view)
    return views


def noise_views(samples: int, sigma: float, seed: int) -> list[View]:
    """The identity, then `samples` copies x + sigma * N(0, I), each from its own seeded
    generator (the same noise for every model queried on the same set)."""

    def noisy(k: int) -> View:
        def view(x: torch.Tensor) -> torch.Tensor:
            gen = torch.Generator().manual_seed(seed * 1000003 + k)
            return x.float() + sigma * torch.randn(x.shape, generator=gen)

        return view

    return [lambda x: x, *(noisy(k) for k in range(samples))]


class AugmentationAttack(Attack):
    """Robustness of the label under augmentations; see the module docstring."""

    def __init__(
        self,
        shift: int = 1,
        flip: bool = True,
        noise_samples: int = 20,
        noise_sigma: float = 0.3,
        combine: str = "count",
        seed: int = 0,
    ) -> None:
        self.shift = checks.integer("shift", shift, lo=0)
        self.flip = checks.flag("flip", flip)
        self.noise_samples = checks.integer("noise_samples", noise_samples, lo=1)
        self.noise_sigma = checks.number("noise_sigma", noise_sigma, lo=0.0, lo_open=True)
        self.combine = checks.choice("combine", combine, COMBINE)
        self.seed = seed
        self._thr = 0.0
        self._model = None

    @property
    def key(self) -> str:
        """Name of the correctness matrix in `Signals.extra`."""
        return f"label_views.{self.name}"

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({self.key})

    def query_views(self, kind: str) -> dict[str, list[View]]:
        """The augmented query sets this attack needs answers on, by `Signals.extra` key."""
        if kind == "image":
            views = image_views(self.shift, self.flip)
        else:
            views = noise_views(self.noise_samples, self.noise_sigma, self.seed)
        return {self.key: views}

    def _vectors(self, s: Signals) -> np.ndarray:
        if self.key not in s.extra:
            raise KeyError(f"attack {self.name} needs signal {self.key}; compute_signals(views=)")
        return s.extra[self.key]

    def fit(self, shadow: list[Signals]) -> None:
        pooled = Signals.concat(shadow)
        v = self._vectors(pooled)
        if self.combine == "count":
            self._thr = best_threshold(v.mean(1), pooled.member)
            return
        from sklearn.linear_model import LogisticRegression

        self._model = LogisticRegression(max_iter=1000, class_weight="balanced").fit(
            v, pooled.member
        )

    def score(self, target: Signals) -> dict[str, np.ndarray]:
        v = self._vectors(target)
        if self.combine == "count":
            return {self.name: v.mean(1)}
        return {self.name: self._model.decision_function(v).astype(np.float64)}

    def predict(self, target: Signals) -> dict[str, np.ndarray]:
        sc = self.score(target)[self.name]
        return {self.name: sc >= self._thr if self.combine == "count" else sc > 0.0}
