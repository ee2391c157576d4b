"""The run's side of `DefenseContext`: the data a defense may read and its teachers.

A teacher (self-distillation, DMP) is trained by `Models.train` (mia_bench.experiment.models)
under the role `<role>.teacher` on the student's own training indices, so it goes through the
model cache like any other model: every sweep point of a distillation or DMP curve, and both
defenses, share one teacher per role and seed. It is reported in results.json under `models`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from torch import nn

from mia_bench.attacks.base import Attack
from mia_bench.data.splits import Split
from mia_bench.defenses.base import Defense, DefenseContext
from mia_bench.errors import ConfigError
from mia_bench.experiment.context import RunContext


def teacher_role(role: str) -> str:
    return f"{role}.teacher"


def build_context(
    ctx: RunContext,
    role: str,
    seed: int,
    train_idx: np.ndarray,
    teacher: Callable[..., nn.Module],
) -> DefenseContext:
    """Everything a defense of model `role` may read (see `DefenseContext`); `teacher` trains
    or loads its teachers (`Models.teacher_of`)."""
    return DefenseContext(
        role=role,
        seed=seed,
        device=ctx.device,
        preprocess=ctx.preprocess,
        x=ctx.data.x,
        y=ctx.data.y,
        train_idx=train_idx,
        reference_idx=ctx.split.reference,
        teacher=teacher,
        batch_size=int(ctx.cfg.trainer.batch_size),
        eval_batch_size=ctx.eval_batch_size,
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


def training_config(defense: Defense, defense_cfg: Any) -> dict[str, Any]:
    """The defense config as far as it determines the trained model (its part of the cache
    key): parameters that only act at query time (`Defense.query_time_params`, MemGuard's
    budget) are left out, so a sweep over them trains the model once."""
    cfg = OmegaConf.to_container(OmegaConf.create(defense_cfg), resolve=True)
    return {k: v for k, v in cfg.items() if k not in defense.query_time_params}
