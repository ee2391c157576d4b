"""Canaries: the most vulnerable samples, planted on purpose (Aerni, Zhang & Tramer, "Evaluations
of Machine Learning Privacy Defenses are Misleading", CCS 2024, Sec. 4).

`num_canaries` samples of the attack population (target queries + shadow pool) are taken out of
every usual query set, so the usual metrics never see them, and made easy to memorise:

- mislabel: a wrong label, uniform over the other classes (Aerni et al.'s canaries);
- duplicate: the true label, but a model that trains on the canary sees it `copies` times;
- ood_noise (images only): uniform noise pixels with a uniformly random label.

Every trained model (target, shadows, LiRA / RMIA reference models) trains on each canary with
probability 1/2, independently across canaries, drawn from the run seed and the model's role,
so the membership game on canaries is balanced (as in the one-run audit of Steinke, Nasr &
Jagielski, NeurIPS 2023) and every reference model is IN for about half of them. The target and
the shadows toss a fair coin per canary; the reference models share the coins so that each
canary is IN for exactly half of them (`Canaries.reference_rows`), as LiRA's online attack needs
IN and OUT models for every sample. The rows drawn are kept in
a keep matrix that the run saves as canaries.npz.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from mia_bench import checks
from mia_bench.data.base import TensorData
from mia_bench.data.splits import Split
from mia_bench.errors import ConfigError
from mia_bench.io import atomic_write_npz

KINDS = ("mislabel", "duplicate", "ood_noise")


def role_seed(seed: int, name: str) -> int:
    """A reproducible seed per (run seed, purpose)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4], "little")


def audit_settings(cfg: DictConfig) -> dict | None:
    """The checked `audit` settings, or None when no audit runs (`audit=none`). Raises
    ConfigError naming the key for a bad value."""
    audit = checks.setting(cfg, "audit")
    if audit is None:  # conf/audit/none.yaml
        return None

    def get(key: str):
        return checks.setting(audit, key, "audit")

    if get("name") == "none":
        return None
    if get("name") != "canaries":
        raise ConfigError("audit", f"choose none or canaries, got {get('name')!r}")
    n = checks.integer("audit.num_canaries", get("num_canaries"), lo=10)
    kind = checks.choice("audit.kind", get("kind"), KINDS)
    copies = checks.integer("audit.copies", get("copies"), lo=1)
    delta = checks.number("audit.delta", get("delta"), lo=0.0, hi=1.0, hi_open=True)
    alpha = checks.number("audit.alpha", get("alpha"), lo=0.0, hi=1.0, hi_open=True)
    if alpha == 0.0:
        raise ConfigError("audit.alpha", "must be > 0 (a bound at 100% confidence is vacuous)")
    return {
        "num_canaries": n,
        "kind": kind,
        "copies": copies if kind == "duplicate" else 1,
        "delta": delta,
        "alpha": alpha,
    }


@dataclass
class Canaries:
    """The canaries of one run.

    index: (m,) sorted dataset indices of the canaries; labels: (m,) the labels they train with;
    copies: how often a canary appears in a training set it enters; seed: the run seed, from
    which each role's keep row is drawn; keep: role -> (m,) bool, filled as models are built.
    """

    index: np.ndarray
    labels: np.ndarray
    kind: str
    copies: int
    seed: int
    keep: dict[str, np.ndarray] = field(default_factory=dict)
    inputs_digest: str | None = None

    def keep_row(self, role: str) -> np.ndarray:
        """(m,) bool: which canaries model `role` trains on; independent fair coins per
        (canary, model), reproducible from the run seed and the role."""
        if role not in self.keep:
            rng = np.random.default_rng(role_seed(self.seed, f"canary-keep:{role}"))
            self.keep[role] = rng.random(len(self.index)) < 0.5
        return self.keep[role]

    def reference_rows(self, num_models: int) -> np.ndarray:
        """(num_models, m) bool keep rows of the LiRA / RMIA reference models "reference{i}":
        each canary is IN for exactly half of them, a random half drawn per canary, as in
        Carlini et al. 2022's keep matrix, so that every canary has IN and OUT reference models
        for the online attack; each model is still IN for each canary with probability 1/2,
        independently across canaries. The rows are registered under the models' roles."""
        rng = np.random.default_rng(role_seed(self.seed, "canary-keep:reference"))
        rows = rng.random((num_models, len(self.index))).argsort(0).argsort(0) < num_models // 2
        for i, row in enumerate(rows):
            self.keep[f"reference{i}"] = row
        return rows

    def training_indices(self, role: str, train_idx: np.ndarray) -> np.ndarray:
        """`train_idx` plus the canaries model `role` trains on (each `copies` times). A set
        that holds canaries already (a teacher trained on its student's set) is left as is, so
        teacher and student agree on which canaries are IN."""
        if np.isin(train_idx, self.index).any():
            return np.asarray(train_idx)
        # "target.teacher" shares the row of "target" (it trains on its student's set)
        kept = np.repeat(self.index[self.keep_row(role.split(".")[0])], self.copies)
        return np.concatenate([np.asarray(train_idx), kept]).astype(np.int64)

    def identity(self) -> dict:
        """What the canaries change in a model's training data, for its cache key (the
        canary indices themselves are in the training indices)."""
        out = {
            "kind": self.kind,
            "copies": self.copies,
            "labels": hashlib.sha256(np.ascontiguousarray(self.labels).tobytes()).hexdigest(),
        }
        if self.inputs_digest is not None:
            out["inputs"] = self.inputs_digest
        return out

    def save(self, path: str | Path) -> None:
        roles = sorted(self.keep)
        atomic_write_npz(
            path,
            index=self.index,
            labels=self.labels,
            roles=np.array(roles, dtype=str),
            keep=np.stack([self.keep[r] for r in roles])
            if roles
            else np.zeros((0, len(self.index)), bool),
        )


def plant(
    data: TensorData, split: Split, population: np.ndarray, settings: dict, seed: int
) -> tuple[TensorData, Split, Canaries]:
    """Draw the canaries from `population`, change their samples as `settings["kind"]` says,
    and take them out of every set of `split`. Returns (data with the canaries' labels and,
    for ood_noise, inputs changed; the split without the canaries; the canaries)."""
    m, kind = settings["num_canaries"], settings["kind"]
    if kind == "ood_noise" and data.kind != "image":
        raise ConfigError("audit.kind", "ood_noise needs image data; use mislabel or duplicate")
    if m > len(population) // 4:
        raise ConfigError(
            "audit.num_canaries",
            f"{m} canaries would take more than a quarter of the {len(population)} samples "
            "the attacks query and shadows train on; use fewer canaries or more samples",
        )
    rng = np.random.default_rng(role_seed(seed, "canaries"))
    index = np.sort(rng.choice(population, m, replace=False))
    y = data.y.clone()
    x = data.x
    inputs_digest = None
    k = data.num_classes
    if kind == "mislabel":
        shift = torch.from_numpy(rng.integers(1, k, m))
        y[index] = (y[index] + shift) % k
    elif kind == "ood_noise":
        x = x.clone()
        noise = rng.integers(0, 256, (m, *data.input_shape), dtype=np.uint8)
        x[index] = torch.from_numpy(noise).to(x.dtype)
        y[index] = torch.from_numpy(rng.integers(0, k, m))
        inputs_digest = hashlib.sha256(noise.tobytes()).hexdigest()
    planted = replace(data, x=x, y=y)

    def drop(a: np.ndarray) -> np.ndarray:
        return a[~np.isin(a, index)]

    clean = Split(
        drop(split.target_train),
        drop(split.target_test),
        [(drop(tr), drop(te)) for tr, te in split.shadows],
        drop(split.reference),
    )
    canaries = Canaries(
        index=index,
        labels=y[index].numpy().astype(np.int64),
        kind=kind,
        copies=settings["copies"],
        seed=seed,
        inputs_digest=inputs_digest,
    )
    return planted, clean, canaries
