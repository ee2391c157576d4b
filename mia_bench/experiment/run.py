"""One experiment, top to bottom, following the RelaxLoss protocol (Chen et al. 2022, Sec. 6.1):

1. load the dataset as tensors and cut the split (saved as split.npz);
2. train the target on target-train and each shadow on its shadow-train set, with the target's
   defense (adaptive attacker, `shadow.defense=same`) or without (`none`); models come from the
   cache when an identical one was trained before;
3. compute signals (logits, and the gradient norms that a selected attack needs) of each
   shadow on its own members / non-members and of the target on target-train (members) /
   target-test (non-members);
3b. if LiRA / RMIA are selected: train the reference models on random halves of the
   population (mia_bench/experiment/reference.py) and add each audited model's population view;
4. every attack fits on the shadow signals and scores the target's queries;
5. metrics -> results.json, scores.npz, summary.md.

This file is that order; each step's work lives in its own module: setup.py (1), models.py
(2: build, train one or many, teachers, cache key), queries.py (3), reference.py (3b),
attacking.py (4), results.py and summary.py (5). They read a `RunContext` (context.py), not the
experiment.

Defenses hook in without the protocol knowing which one runs: each model's defense gets a
`DefenseContext` (reference fold, teachers through the cache; `defense_context.py`) and an
`after_training` call once the model is final; a defense with `snapshot_epochs` (early
stopping) has every snapshot evaluated as one more point (`snapshots.py`); attacks that
need a signal the target's defense blocks are reported as not applicable.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from mia_bench.attacks import build_attacks
from mia_bench.audit.canaries import audit_settings, plant
from mia_bench.audit.results import audit_results, most_vulnerable
from mia_bench.cache import ModelCache
from mia_bench.data import content_key
from mia_bench.data.population import population_indices
from mia_bench.data.splits import check_query_sets, make_split
from mia_bench.defenses import NO_DEFENSE, build
from mia_bench.errors import ConfigError
from mia_bench.experiment.attacking import attack_all
from mia_bench.experiment.context import RunContext, container
from mia_bench.experiment.defense_context import check_defense
from mia_bench.experiment.models import Models
from mia_bench.experiment.queries import (
    answer_accuracies,
    canary_signals,
    join_queries,
    model_signals,
)
from mia_bench.experiment.reference import ReferenceModels, reference_model_count
from mia_bench.experiment.results import (
    accuracies,
    assemble,
    completed_results,
    model_entry,
    target_summary,
)
from mia_bench.experiment.setup import (
    Stages,
    check_features,
    check_writable,
    load_data,
    resolve_device,
    warn_large_batch,
)
from mia_bench.experiment.snapshots import evaluate_checkpoints
from mia_bench.experiment.summary import format_summary
from mia_bench.experiment.trained import TrainedModel
from mia_bench.io import atomic_write_json, atomic_write_npz, atomic_write_text
from mia_bench.metrics import min_queries
from mia_bench.models import build_model, source_digest
from mia_bench.signals.compute import Signals


class Experiment:
    """One run: `prepare()` checks everything and builds the `RunContext`, `run()` executes
    the protocol above."""

    def __init__(self, cfg: DictConfig, output_dir: str | Path) -> None:
        self.cfg = cfg
        self.out = Path(output_dir)
        self.stages = Stages()
        self.device = resolve_device(cfg.device)
        self.attack_cache = ModelCache(cfg.paths.cache_dir, enabled=bool(cfg.cache), kind="attacks")

    # -- 1. set-up: everything that can fail on bad input happens here, before training -------
    def prepare(self) -> None:
        cfg = self.cfg
        check_writable(self.out)
        with self.stages("data"):
            data, preprocess = load_data(cfg)
        split = make_split(len(data), data.kind, cfg.split, cfg.seed, int(cfg.shadow.count))
        self.audit = audit_settings(cfg)
        canaries = None
        if self.audit is not None:
            if int(cfg.trainer.stack) > 1:
                raise ConfigError(
                    "trainer.stack",
                    "canaries give every model a training set of its own size; use trainer.stack=1",
                )
            data, split, canaries = plant(
                data, split, population_indices(split), self.audit, int(cfg.seed)
            )
        check_query_sets(split, cfg.split, cfg.dataset, len(data), min_queries())
        warn_large_batch(cfg, split)
        self.split = split
        # Build once now so that a model / defense / attack that cannot work fails before training.
        probe = build_model(cfg.model, data.input_shape, data.num_classes)
        self.defense_cfg = cfg.defense
        self.shadow_defense_cfg = cfg.defense if cfg.shadow.defense == "same" else NO_DEFENSE
        self.ctx = RunContext(
            cfg=cfg,
            data=data,
            split=split,
            preprocess=preprocess,
            device=self.device,
            cache=ModelCache(cfg.paths.cache_dir, enabled=bool(cfg.cache)),
            progress=bool(cfg.progress),
            canaries=canaries,
            # the model cache keys weights by the data's content and the model's code too
            data_key=content_key(cfg.dataset, data),
            model_source=source_digest(probe),
            feature_dim=probe.feature_dim,
        )
        self.models = Models(self.ctx)
        for dcfg in (self.defense_cfg, self.shadow_defense_cfg):
            # feature_dim None (a model without nn.Linear): built with 1 so that the check below
            # names the model, not the defense's constructor.
            check_features(build(dcfg, data.num_classes, probe.feature_dim or 1), probe, cfg)
        attacks = build_attacks(cfg.attack, seed=cfg.seed)
        defense = build(self.defense_cfg, data.num_classes, probe.feature_dim)
        # attack result name -> why the target's defense cannot be attacked by it
        self.attacks, self.not_applicable = check_defense(defense, cfg, split, attacks)
        # signals are computed only when an attack that runs reads them
        self.needs: frozenset[str] = frozenset().union(*(a.needs for a in self.attacks))
        # augmented query sets of label-only attacks, answered once per audited model
        self.views = {
            k: v
            for a in self.attacks
            if hasattr(a, "query_views")
            for k, v in a.query_views(data.kind).items()
        }
        self.num_reference = reference_model_count(self.attacks)

    def train(
        self, role: str, defense_cfg: DictConfig, train_idx: np.ndarray, test_idx: np.ndarray
    ) -> TrainedModel:
        """Model `role` of this run, trained or from the cache (`Models.train`)."""
        return self.models.train(role, defense_cfg, train_idx, test_idx)

    # -- the protocol ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg, ctx, split, stages = self.cfg, self.ctx, self.split, self.stages
        self.out.mkdir(parents=True, exist_ok=True)
        split.save(self.out / "split.npz")
        # 2. the target and the shadows
        with stages("train_target"):
            target = self.train("target", self.defense_cfg, split.target_train, split.target_test)
        with stages("train_shadows"):
            jobs = [(f"shadow{i}", tr, te) for i, (tr, te) in enumerate(split.shadows)]
            shadows = self.models.train_many(jobs, self.shadow_defense_cfg)
        # 3b. LiRA / RMIA: the reference models, whose outputs the run hands to those attacks
        refs = None
        if self.num_reference:
            with stages("train_reference"):
                refs = ReferenceModels(
                    split, self.attacks, cfg.seed, ctx.canaries, self.num_reference
                )
                refs.train(self.models, self.shadow_defense_cfg)
                self.give_reference(refs)
                refs.save(self.out / "reference.npz")
        # 3. signals of every audited model; the target's canaries join its queries
        with stages("signals"):
            all_sigs = [self.signals(tm, refs) for tm in [target, *shadows]]
            target_sig, *shadow_sigs = all_sigs
        canary_sig = None
        if ctx.canaries is not None:
            canary_sig = canary_signals(ctx, target, self.needs, self.views, refs)
        query_sig = target_sig if canary_sig is None else join_queries(target_sig, canary_sig)
        # 4. every attack: fit on the shadows, score the target's queries
        scores: dict[str, np.ndarray] = {"member": query_sig.member}
        with stages("attacks"):
            attacks, attack_scores, attack_hits = self.attack_all(
                query_sig, shadow_sigs, usual=len(target_sig)
            )
        scores.update(attack_scores)

        # 5. results. The target's and shadows' accuracies come from their signals (the same
        # answers), so their queries are not answered twice (MemGuard's search is costly).
        accs = {tm.role: accuracies(sig) for tm, sig in zip([target, *shadows], all_sigs)}
        teachers = list(self.models.teachers.values())
        models = {
            tm.role: model_entry(tm, *(accs.get(tm.role) or answer_accuracies(ctx, tm)))
            for tm in [target, *shadows, *teachers, *(refs.models if refs else [])]
        }
        results = assemble(
            cfg, target, target_sig, len(shadows), refs, attacks, models, attack_hits, self.device
        )
        if canary_sig is not None:
            with stages("audit"):
                results["audit"] = audit_results(
                    self.audit,
                    {k: v[len(target_sig) :] for k, v in attack_scores.items()},
                    canary_sig.member,
                    target.defense,
                    adaptive=cfg.shadow.defense == "same",
                )
            scores["canary"] = np.r_[
                np.zeros(len(target_sig), bool), np.ones(len(canary_sig), bool)
            ]
            ctx.canaries.save(self.out / "canaries.npz")
            image = ctx.data.kind == "image"
            atomic_write_npz(
                self.out / "vulnerable.npz",
                **most_vulnerable(
                    attack_scores,
                    query_sig.member,
                    np.r_[target.train_idx, target.test_idx, ctx.canaries.index],
                    query_sig.labels,
                    scores["canary"],
                    ctx.data.x.numpy() if image else None,
                ),
            )
        if target.snapshots:
            # One point per snapshot; the last one is the final model, i.e. the keys above.
            with stages("checkpoints"):
                results["checkpoints"] = self.checkpoints(target, shadows, refs, results)
        results["timing"] = {k: round(v, 3) for k, v in stages.seconds.items()}
        scores["target_loss"] = query_sig.loss
        atomic_write_npz(self.out / "scores.npz", **scores)
        atomic_write_text(self.out / "summary.md", format_summary(results))
        # results.json last: its presence marks a complete run.
        atomic_write_json(self.out / "results.json", results)
        return results

    # -- what the steps share ---------------------------------------------------------------
    def signals(self, tm: TrainedModel, refs: ReferenceModels | None) -> Signals:
        return model_signals(self.ctx, tm, self.needs, self.views, refs)

    def give_reference(self, refs: ReferenceModels) -> None:
        """Hand the reference models' outputs, as their weights are now, to the attacks that
        read them (LiRA, RMIA)."""
        ref_sig = refs.collect(self.ctx)
        for attack in self.attacks:
            if "reference" in attack.needs:
                attack.set_reference(ref_sig)

    def attack_all(
        self, target_sig: Signals, shadow_sigs: list[Signals], usual: int | None = None
    ) -> tuple[dict, dict, dict]:
        cfgs = {a.name: container(self.cfg.attack[a.name]) for a in self.attacks}
        return attack_all(
            self.attacks,
            cfgs,
            int(self.cfg.seed),
            self.attack_cache,
            target_sig,
            shadow_sigs,
            self.not_applicable,
            usual,
        )

    def checkpoints(
        self,
        target: TrainedModel,
        shadows: list[TrainedModel],
        refs: ReferenceModels | None,
        final: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """Early stopping: every snapshot of the target attacked like the final model, with
        the shadows and reference models (LiRA / RMIA) of the same epoch (snapshots.py)."""

        def evaluate() -> dict[str, Any]:
            if refs is not None:
                self.give_reference(refs)
            target_sig = self.signals(target, refs)
            shadow_sigs = [self.signals(s, refs) for s in shadows]
            attacks, _, _ = self.attack_all(target_sig, shadow_sigs)
            return {"target": target_summary(target_sig), "attacks": attacks}

        models = [target, *shadows, *(refs.models if refs else [])]
        try:
            return evaluate_checkpoints(target, models, final, evaluate)
        finally:
            if refs is not None:  # the final weights are back: so are the attacks' inputs
                self.give_reference(refs)


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """Validate-and-prepare, then run one experiment; returns the results dict.

    A folder that already holds the results of the same config is not run again.
    """
    done = completed_results(cfg, output_dir)
    if done is not None:
        logging.getLogger(__name__).info("%s already holds complete results; skipping", output_dir)
        return done
    exp = Experiment(cfg, output_dir)
    exp.prepare()
    return exp.run()
