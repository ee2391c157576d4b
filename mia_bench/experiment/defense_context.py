"""The pipeline's side of `DefenseContext`: the data a defense may read and its teachers.

A teacher (self-distillation, DMP) is trained by `Experiment.train` under the role
`<role>.teacher` on the student's own training indices, so it goes through the model cache like
any other model: every sweep point of a distillation or DMP curve, and both defenses, share one
teacher per role and seed. It is reported in results.json under `models`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from mia_bench.attacks.base import Attack
from mia_bench.data.splits import Split
from mia_bench.defenses.base import Defense, DefenseContext
from mia_bench.errors import ConfigError

if TYPE_CHECKING:
    from mia_bench.experiment.run import Experiment
    from mia_bench.experiment.trained import TrainedModel


def teacher_role(role: str) -> str:
    return f"{role}.teacher"


def build_context(
    exp: Experiment, role: str, seed: int, train_idx: np.ndarray, test_idx: np.ndarray | None
) -> DefenseContext:
    """Everything a defense of model `role` may read (see `DefenseContext`); `test_idx` (the
    model's non-members) is what its teachers are evaluated on."""
    data = exp.data

    def teacher(
        defense_cfg: Mapping[str, Any],
        subset: np.ndarray | None = None,
        name: str = "teacher",
    ) -> nn.Module:
        # `subset` (positions in train_idx) and `name`: SELENA's sub-models, role <role>.<name>
        sub_role = teacher_role(role) if name == "teacher" else f"{role}.{name}"
        sub_idx = train_idx if subset is None else train_idx[np.asarray(subset)]
        key = (
            sub_role,
            json.dumps(OmegaConf.to_container(OmegaConf.create(dict(defense_cfg))), sort_keys=True),
        )
        tm = exp.teachers.get(key)
        if tm is None and test_idx is None:
            raise RuntimeError(f"{role}: a teacher needs the model's test indices")
        if tm is None:
            # The student's own training has already drawn from the global RNG (model init);
            # training or loading the teacher must not change what it draws next, or a cache
            # hit and a miss of the teacher would give different students.
            devices = [exp.device] if exp.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                tm = exp.train(sub_role, OmegaConf.create(dict(defense_cfg)), sub_idx, test_idx)
            exp.teachers[key] = tm
        return tm.model

    return DefenseContext(
        role=role,
        seed=seed,
        device=exp.device,
        preprocess=exp.preprocess,
        x=data.x,
        y=data.y,
        train_idx=train_idx,
        reference_idx=exp.split.reference,
        teacher=teacher,
        batch_size=int(exp.cfg.trainer.batch_size),
        eval_batch_size=int(exp.cfg.trainer.eval_batch_size),
    )


def check_defense(
    defense: Defense, cfg: Any, split: Split, attacks: list[Attack]
) -> tuple[list[Attack], dict[str, str]]:
    """Refuse a defense the run cannot serve (before training); split the attacks into those
    that run and, by result name, those the defense makes inapplicable with the reason.

    An attack needing a signal the defense cannot give (white-box gradients through MemGuard's
    test-time noise) is reported as not applicable, as RelaxLoss Sec. 6.2 does, rather than
    failing the run, so a sweep over defenses with white-box attacks runs through.
    """
    name = cfg.defense.get("name")
    if defense.snapshot_epochs and max(defense.snapshot_epochs) > int(cfg.trainer.epochs):
        raise ConfigError(
            "defense.epochs",
            f"checkpoint epochs {list(defense.snapshot_epochs)} go past "
            f"trainer.epochs={cfg.trainer.epochs}; raise trainer.epochs or drop them",
        )
    if defense.uses_reference and len(split.reference) == 0:
        raise ConfigError("split", f"defense {name} needs a reference fold; this split has none")
    for a in attacks:
        if "public" in a.needs and len(split.reference) == 0:
            raise ConfigError(
                "split",
                f"attack {a.name} needs a reference fold (public data); this split has none",
            )
    blocked = defense.blocks_signals
    kept, skipped = [], {}
    for a in attacks:
        if a.needs & blocked:
            reason = f"needs {sorted(a.needs & blocked)}, which defense {name} cannot give"
            skipped.update({result: reason for result in a.result_names()})
        else:
            kept.append(a)
    return kept, skipped


def trains_alone(defense: Defense) -> bool:
    """Whether models of this defense must be trained one by one by `Experiment.train`, not in a
    stacked group: snapshots, teachers, Opacus, `after_training` and batch inputs all live
    in that path."""
    hooks = ("attach", "setup", "end_training", "after_training")
    overridden = any(getattr(type(defense), h) is not getattr(Defense, h) for h in hooks)
    return overridden or bool(defense.snapshot_epochs) or defense.needs_inputs


def training_config(defense: Defense, defense_cfg: Any) -> dict[str, Any]:
    """The defense config as far as it determines the trained model (its part of the cache
    key): parameters that only act at query time (`Defense.query_time_params`, MemGuard's
    budget) are left out, so a sweep over them trains the model once."""
    cfg = OmegaConf.to_container(OmegaConf.create(defense_cfg), resolve=True)
    return {k: v for k, v in cfg.items() if k not in defense.query_time_params}


def auxiliary_models(exp: Experiment) -> list[TrainedModel]:
    """Teachers trained or loaded during this run, in the order they were first needed."""
    return list(exp.teachers.values())
