"""Reference models for LiRA / RMIA: trained once per run on random halves of the population
(mia_bench/data/population.py), through the pipeline's cached training path, and shared by
every attack that needs them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mia_bench.attacks.base import Attack
from mia_bench.data.population import lira_keep_matrix, nested_keep_matrix, population_indices
from mia_bench.errors import ConfigError
from mia_bench.experiment.trained import TrainedModel, derive_seed
from mia_bench.io import atomic_write_npz
from mia_bench.signals.compute import PopulationView, ReferenceSignals, Signals

if TYPE_CHECKING:
    from mia_bench.experiment.run import Experiment


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

    def __init__(self, exp: Experiment, num_models: int) -> None:

        self.exp = exp
        self.population = population_indices(exp.split)
        make_keep = (
            nested_keep_matrix if reference_design(exp.attacks) == "nested" else lira_keep_matrix
        )
        self.keep = make_keep(len(self.population), num_models, derive_seed(exp.cfg.seed, "keep"))
        # Canaries (audit=canaries) join the population; model i is IN for the canaries of
        # its own keep row, half of the models per canary (mia_bench/audit/canaries.py).
        self.canary = np.zeros(len(self.population), bool)
        if exp.canaries is not None:
            can = exp.canaries
            rows = can.reference_rows(num_models)
            pop = np.r_[self.population, can.index]
            order = np.argsort(pop, kind="stable")
            self.population = pop[order]
            self.keep = np.c_[self.keep, rows][:, order]
            self.canary = np.r_[self.canary, np.ones(len(can.index), bool)][order]
        self.models: list[TrainedModel] = []
        self.signals: ReferenceSignals | None = None

    def train(self) -> ReferenceSignals:
        """Train (or load from the cache) every reference model, with the shadows' defense,
        then `collect` their outputs. With `trainer.stack` > 1 they train that many at a time
        side by side (every model has a training set of the same size)."""
        exp, pop = self.exp, self.population
        usual = ~self.canary  # canaries are added per model by `Experiment.fit_indices`
        jobs = [
            (f"reference{i}", pop[keep & usual], pop[~keep & usual])
            for i, keep in enumerate(self.keep)
        ]
        self.models = exp.train_many(jobs, exp.shadow_defense_cfg)
        return self.collect()

    def collect(self) -> ReferenceSignals:
        """Outputs of the reference models as their weights are now, handed to every attack
        that reads them (called again when checkpoints swap in earlier weights)."""
        exp, pop = self.exp, self.population
        logits = [exp.logits(tm, pop) for tm in self.models]
        self.signals = ReferenceSignals.from_logits(logits, exp.data.y[pop].numpy(), self.keep)
        for attack in exp.attacks:
            if "reference" in attack.needs:
                attack.set_reference(self.signals)
        return self.signals

    def attach(self, tm: TrainedModel, sig: Signals, idx: np.ndarray | None = None) -> None:
        """Give `sig` (the queries of audited model `tm`: its train + test sets unless `idx`
        says which) its view of the population."""
        if idx is None:
            idx = np.concatenate([tm.train_idx, tm.test_idx])
        pos = np.searchsorted(self.population, idx)
        inside = pos < len(self.population)
        if not inside.all() or np.any(self.population[pos] != idx):
            raise ValueError(f"{tm.role}: some queries are not in the reference population")
        sig.population = PopulationView(index=pos, logits=self.exp.logits(tm, self.population))

    def save(self, path: str | Path) -> None:
        atomic_write_npz(path, population=self.population, keep=self.keep, **self._canary_mask())

    def _canary_mask(self) -> dict[str, np.ndarray]:
        # reference.npz as before when no canaries run
        return {"canary": self.canary} if self.canary.any() else {}
