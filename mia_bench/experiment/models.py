"""Step 2 of a run: the models. Each is built for its role (seed, architecture, defense with its
`DefenseContext`, cache key), trained or loaded from the model cache, and made ready to query.
Several with one defense config can train side by side (`trainer.stack`, mia_bench.train.stacked);
a defense's teachers are trained here too, on demand, as models of their own role."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from mia_bench.cache import indices_digest
from mia_bench.defenses import Defense, build
from mia_bench.experiment.context import RunContext, container
from mia_bench.experiment.defense_context import build_context, teacher_role, training_config
from mia_bench.experiment.trained import TrainedModel, derive_seed
from mia_bench.models import Classifier, build_model
from mia_bench.train.loop import train_model, trainer_identity
from mia_bench.train.resume import Checkpointer
from mia_bench.train.stacked import train_stacked, trains_alone


@dataclass
class Built:
    """A model of one role before training: its seed, fresh model and defense (attached to its
    context) and the model cache's key spec."""

    seed: int
    model: Classifier
    defense: Defense
    spec: dict[str, Any]


class Models:
    """Builds, trains (or loads) and finishes the models of one run."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        # (role, defense config) -> teacher, in the order the defenses first asked for them
        self.teachers: dict[tuple[str, str], TrainedModel] = {}

    def build(
        self,
        role: str,
        defense_cfg: DictConfig,
        train_idx: np.ndarray,
        test_idx: np.ndarray | None = None,
    ) -> Built:
        """Model `role` with `defense_cfg`, seeded by role; `test_idx` (its non-members) is what
        its teachers are evaluated on."""
        ctx, cfg, data = self.ctx, self.ctx.cfg, self.ctx.data
        seed = derive_seed(cfg.seed, role)
        torch.manual_seed(seed)
        model = build_model(cfg.model, data.input_shape, data.num_classes)
        defense = build(defense_cfg, data.num_classes, model.feature_dim)
        model = defense.wrap_model(model)
        teacher = self.teacher_of(role, train_idx, test_idx)
        defense.attach(build_context(ctx, role, seed, train_idx, teacher))
        # Stacked or alone, compiled or not, checkpointed or not: one model, one key.
        spec = {
            "dataset": ctx.data_key,
            "train_indices": indices_digest(train_idx),
            "model": {**container(cfg.model), "source": ctx.model_source},
            "trainer": trainer_identity(cfg.trainer),
            "defense": training_config(defense, defense_cfg),
            "seed": seed,
            "role": role,
        }
        if defense.uses_reference:
            spec["reference_indices"] = indices_digest(ctx.split.reference)
        if ctx.canaries is not None:  # canary labels / inputs change the trained weights
            spec["audit"] = ctx.canaries.identity()
        return Built(seed, model, defense, spec)

    def train(
        self, role: str, defense_cfg: DictConfig, train_idx: np.ndarray, test_idx: np.ndarray
    ) -> TrainedModel:
        """Model `role` trained on `train_idx` (plus its canaries) with `defense_cfg`, or loaded
        from the cache; resumable from a per-epoch checkpoint (`trainer.checkpoint_every`)."""
        ctx, cfg, data = self.ctx, self.ctx.cfg, self.ctx.data
        fit_idx = ctx.fit_indices(role, train_idx)
        b = self.build(role, defense_cfg, fit_idx, test_idx)
        ckpt_path = ctx.cache.checkpoint_path(b.spec)
        checkpointer = (
            Checkpointer(ckpt_path, int(cfg.trainer.checkpoint_every))
            if ckpt_path is not None
            else None
        )

        def make() -> tuple[dict, dict]:
            log = train_model(
                b.model,
                b.defense,
                data.x[fit_idx],
                data.y[fit_idx],
                cfg.trainer,
                preprocess=ctx.preprocess,
                seed=b.seed,
                device=ctx.device,
                desc=role,
                progress=ctx.progress,
                snapshot_epochs=b.defense.snapshot_epochs,
                checkpointer=checkpointer,
            )
            state = {"model": b.model.state_dict(), "defense": b.defense.state_dict()}
            if log.snapshots:
                state["snapshots"] = {str(e): sd for e, sd in log.snapshots.items()}
            return state, {"seconds": log.seconds, "epoch_loss": log.epoch_loss}

        t0 = time.perf_counter()
        state, meta, hit = ctx.cache.get_or_make(b.spec, make)
        if checkpointer is not None:
            checkpointer.clear()  # the finished model is stored; its checkpoint is spent
        self.finish(b, state, hit)
        snapshots = {int(e): sd for e, sd in state.get("snapshots", {}).items()}
        return TrainedModel(
            role,
            b.model,
            b.defense,
            train_idx,
            test_idx,
            hit,
            time.perf_counter() - t0,
            meta.get("epoch_loss", []),
            snapshots,
        )

    def train_many(
        self, jobs: list[tuple[str, np.ndarray, np.ndarray]], defense_cfg: DictConfig
    ) -> list[TrainedModel]:
        """Models (role, train_idx, test_idx) with one defense config; with `trainer.stack` > 1
        they are trained in groups of that size side by side (mia_bench.train.stacked), unless
        the defense `trains_alone`."""
        ctx = self.ctx
        stack = int(ctx.cfg.trainer.stack)
        probe = build(defense_cfg, ctx.data.num_classes, ctx.feature_dim)
        if stack <= 1 or trains_alone(probe) is not None:
            return [self.train(role, defense_cfg, tr, te) for role, tr, te in jobs]
        out: list[TrainedModel] = []
        for g in range(0, len(jobs), stack):
            out += self._train_group(jobs[g : g + stack], defense_cfg)
        return out

    def _train_group(
        self, jobs: list[tuple[str, np.ndarray, np.ndarray]], defense_cfg: DictConfig
    ) -> list[TrainedModel]:
        """One group: models found in the cache (alone or stacked: the key is the same) are
        loaded, the rest trained together by `train_stacked`; each gets an even share of the
        group's seconds."""
        ctx, data = self.ctx, self.ctx.data
        built = [self.build(role, defense_cfg, tr) for role, tr, _ in jobs]

        def make_many(todo: list[int]) -> list[tuple[dict, dict]]:
            logs = train_stacked(
                [built[i].model for i in todo],
                [built[i].defense for i in todo],
                [(data.x[jobs[i][1]], data.y[jobs[i][1]]) for i in todo],
                ctx.cfg.trainer,
                seeds=[built[i].seed for i in todo],
                preprocess=ctx.preprocess,
                device=ctx.device,
                desc="+".join(jobs[i][0] for i in todo),
                progress=ctx.progress,
            )
            return [
                (
                    {
                        "model": built[i].model.state_dict(),
                        "defense": built[i].defense.state_dict(),
                    },
                    {"seconds": lg.seconds, "epoch_loss": lg.epoch_loss, "group_size": len(todo)},
                )
                for i, lg in zip(todo, logs)
            ]

        t0 = time.perf_counter()
        got = ctx.cache.get_or_make_many([b.spec for b in built], make_many)
        share = (time.perf_counter() - t0) / len(jobs)
        out = []
        for (role, tr, te), b, (state, meta, hit) in zip(jobs, built, got):
            self.finish(b, state, hit)
            out.append(
                TrainedModel(
                    role, b.model, b.defense, tr, te, hit, share, meta.get("epoch_loss", [])
                )
            )
        return out

    def finish(self, b: Built, state: dict, hit: bool) -> None:
        """Make a trained model (or, on a cache hit, the stored `state`) ready to query: on the
        device, in eval mode, after the defense's `after_training`."""
        if hit:
            b.model.load_state_dict(state["model"])
            b.defense.load_state_dict(state["defense"])
        b.model.to(self.ctx.device).eval()
        b.defense.to(self.ctx.device).eval()
        b.defense.after_training(b.model, b.defense.ctx)

    def teacher_of(
        self, role: str, train_idx: np.ndarray, test_idx: np.ndarray | None
    ) -> Callable[..., nn.Module]:
        """`DefenseContext.teacher` of model `role`: a teacher trained by `train` on the
        student's training indices (or the positions `subset` of them, SELENA's sub-models,
        role <role>.<name>), once per role and defense config in this run."""

        def teacher(
            defense_cfg: Mapping[str, Any],
            subset: np.ndarray | None = None,
            name: str = "teacher",
        ) -> nn.Module:
            sub_role = teacher_role(role) if name == "teacher" else f"{role}.{name}"
            sub_idx = train_idx if subset is None else train_idx[np.asarray(subset)]
            as_dict = OmegaConf.to_container(OmegaConf.create(dict(defense_cfg)))
            key = (sub_role, json.dumps(as_dict, sort_keys=True))
            tm = self.teachers.get(key)
            if tm is None and test_idx is None:
                raise RuntimeError(f"{role}: a teacher needs the model's test indices")
            if tm is None:
                # The student's own training has already drawn from the global RNG (model
                # init); training or loading the teacher must not change what it draws next,
                # or a cache hit and a miss of the teacher would give different students.
                device = self.ctx.device
                devices = [device] if device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    tm = self.train(
                        sub_role, OmegaConf.create(dict(defense_cfg)), sub_idx, test_idx
                    )
                self.teachers[key] = tm
            return tm.model

        return teacher
