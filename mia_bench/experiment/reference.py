"""Step 3b of a run: the reference models of LiRA / RMIA, trained once per run on random halves
of the population (mia_bench/data/population.py) through the cached training path
(`Models.train_many`), and their outputs, which the run hands to every attack that reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from mia_bench.attacks.base import Attack
from mia_bench.audit.canaries import Canaries
from mia_bench.data.population import lira_keep_matrix, nested_keep_matrix, population_indices
from mia_bench.data.splits import Split
from mia_bench.errors import ConfigError
from mia_bench.experiment.context import RunContext
from mia_bench.experiment.models import Models
from mia_bench.experiment.trained import TrainedModel, derive_seed
from mia_bench.io import atomic_write_npz
from mia_bench.signals.compute import PopulationView, ReferenceSignals, Signals
from mia_bench.signals.logits import predict_logits


def _agreed(users: list[Attack], attr: str) -> set:
    """The values of `attr` among the attacks that share the reference models; they must be
    one value, since the models are trained once for all of them."""
    values = {getattr(a, attr) for a in users}
    if len(values) > 1:
        listing = ", ".join(f"attack.{a.name}.{attr}={getattr(a, attr)}" for a in users)
        raise ConfigError(
            f"attack.{users[-1].name}.{attr}",
            f"attacks share one set of reference models, so the {attr} settings must agree "
            f"({listing})",
        )
    return values


def reference_model_count(attacks: list[Attack]) -> int | None:
    """The number of reference models the selected attacks share; None if none needs them."""
    users = [a for a in attacks if "reference" in a.needs]
    if not users:
        return None
    reference_design(attacks)  # refused here, before training, when the designs disagree
    return _agreed(users, "num_models").pop()


def reference_design(attacks: list[Attack]) -> str:
    """How the shared reference models' training halves are drawn; the attacks must agree."""
    designs = _agreed([a for a in attacks if "reference" in a.needs], "design")
    return designs.pop() if designs else "balanced"


class ReferenceModels:
    """Population, keep-matrix and trained reference models of one experiment."""

    def __init__(
        self,
        split: Split,
        attacks: list[Attack],
        seed: int,
        canaries: Canaries | None,
        num_models: int,
    ) -> None:
        self.population = population_indices(split)
        make_keep = (
            nested_keep_matrix if reference_design(attacks) == "nested" else lira_keep_matrix
        )
        self.keep = make_keep(len(self.population), num_models, derive_seed(seed, "keep"))
        # Canaries (audit=canaries) join the population; model i is IN for the canaries of
        # its own keep row, half of the models per canary (mia_bench/audit/canaries.py).
        self.canary = np.zeros(len(self.population), bool)
        if canaries is not None:
            rows = canaries.reference_rows(num_models)
            pop = np.r_[self.population, canaries.index]
            order = np.argsort(pop, kind="stable")
            self.population = pop[order]
            self.keep = np.c_[self.keep, rows][:, order]
            self.canary = np.r_[self.canary, np.ones(len(canaries.index), bool)][order]
        self.models: list[TrainedModel] = []

    def train(self, models: Models, defense_cfg: DictConfig) -> None:
        """Train (or load from the cache) every reference model with `defense_cfg` (the
        shadows'). With `trainer.stack` > 1 they train that many at a time side by side (every
        model has a training set of the same size)."""
        pop = self.population
        usual = ~self.canary  # canaries are added per model by `RunContext.fit_indices`
        jobs = [
            (f"reference{i}", pop[keep & usual], pop[~keep & usual])
            for i, keep in enumerate(self.keep)
        ]
        self.models = models.train_many(jobs, defense_cfg)

    def collect(self, ctx: RunContext) -> ReferenceSignals:
        """Outputs of the reference models as their weights are now (called again when
        checkpoints swap in earlier weights), for the attacks that read them."""
        pop = self.population
        logits = [attacker_logits(ctx, tm, pop) for tm in self.models]
        return ReferenceSignals.from_logits(logits, ctx.data.y[pop].numpy(), self.keep)

    def attach(
        self, ctx: RunContext, tm: TrainedModel, sig: Signals, idx: np.ndarray | None = None
    ) -> None:
        """Give `sig` (the queries of audited model `tm`: its train + test sets unless `idx`
        says which) its view of the population."""
        if idx is None:
            idx = np.concatenate([tm.train_idx, tm.test_idx])
        pos = np.searchsorted(self.population, idx)
        inside = pos < len(self.population)
        if not inside.all() or np.any(self.population[pos] != idx):
            raise ValueError(f"{tm.role}: some queries are not in the reference population")
        sig.population = PopulationView(index=pos, logits=attacker_logits(ctx, tm, self.population))

    def save(self, path: str | Path) -> None:
        atomic_write_npz(path, population=self.population, keep=self.keep, **self._canary_mask())

    def _canary_mask(self) -> dict[str, np.ndarray]:
        # reference.npz as before when no canaries run
        return {"canary": self.canary} if self.canary.any() else {}


def attacker_logits(ctx: RunContext, tm: TrainedModel, idx: np.ndarray) -> np.ndarray:
    """What the attacker sees of model `tm` on the run's samples `idx`: its logits after any
    test-time defense (MemGuard, HAMP)."""
    return predict_logits(
        tm.model,
        ctx.data.x[idx],
        preprocess=ctx.preprocess,
        device=ctx.device,
        postprocess=tm.defense.postprocess,
        batch_size=ctx.eval_batch_size,
    ).numpy()
