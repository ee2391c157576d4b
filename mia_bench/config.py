"""Checks on the composed config that Hydra cannot make: types and ranges, with messages that
name the key to change. Run before any data is loaded or any model trained."""

from __future__ import annotations

import logging
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

from omegaconf import DictConfig

from mia_bench import checks
from mia_bench.errors import ConfigError

# trainer.compile values: false (eager), true (= "default") or a torch.compile mode.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
log = logging.getLogger("mia_bench")
# numpy's and torch's generators take seeds below 2**32 (torch: below 2**63; the nn attack
# passes the run seed on), so a larger seed would fail only after training.
MAX_SEED = 2**32 - 1
# No recipe of the papers trains longer than 300 epochs; 100,000 is far beyond any use and
# stops a typo (epochs=1000000000) from starting a run that never ends.
MAX_EPOCHS = 100_000
# SGD learning rates of the papers' recipes are 0.01-0.1; above this one the run is legal but
# almost surely diverges or learns nothing (lr=1e30 ends at chance-level accuracy).
LARGE_LR = 10.0


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first bad setting. Every key read here is defined in conf/
    (a missing one is refused, not defaulted)."""

    def get(key: str):
        return checks.setting(cfg, key)

    checks.integer("seed", get("seed"), lo=0, hi=MAX_SEED)
    device = get("device")
    if not isinstance(device, str) or not (device in ("auto", "cpu") or device.startswith("cuda")):
        raise ConfigError("device", f"use auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "device", f"{device} requested but CUDA is not available; use device=auto"
            )
    epochs = checks.integer("trainer.epochs", get("trainer.epochs"), lo=1, hi=MAX_EPOCHS)
    checks.integer("trainer.batch_size", get("trainer.batch_size"), lo=1)
    checks.integer("trainer.eval_batch_size", get("trainer.eval_batch_size"), lo=1)
    lr = checks.number("trainer.lr", get("trainer.lr"), lo=0.0, lo_open=True)
    if lr > LARGE_LR:
        log.warning(
            "trainer.lr=%g is far above the papers' SGD rates (0.01-0.1); expect the run to "
            "diverge or to learn nothing",
            lr,
        )
    checks.number("trainer.momentum", get("trainer.momentum"), lo=0.0, hi=1.0)
    checks.number("trainer.weight_decay", get("trainer.weight_decay"), lo=0.0)
    checks.number("trainer.gamma", get("trainer.gamma"), lo=0.0, lo_open=True)
    milestones = get("trainer.milestones")
    if not all(isinstance(m, Integral) and not isinstance(m, bool) and m > 0 for m in milestones):
        raise ConfigError(
            "trainer.milestones", f"must be a list of positive epochs, got {list(milestones)}"
        )
    lr_schedule(get("trainer.lr_schedule"), epochs)
    _validate_speed(get)
    checks.optional_integer("cpu_threads", get("cpu_threads"), lo=1)
    checks.integer("trainer.checkpoint_every", get("trainer.checkpoint_every"), lo=0)
    checks.choice("shadow.defense", get("shadow.defense"), ["same", "none"])
    checks.integer("shadow.count", get("shadow.count"), lo=1)
    if not get("attack"):
        raise ConfigError("attack", "select at least one attack, e.g. attack=[loss,nn]")
    checks.optional_integer("split.max_samples", get("split.max_samples"), lo=10)


def lr_schedule(value: object, epochs: int) -> list[tuple[int, int, float]] | None:
    """`trainer.lr_schedule` as (start, end, lr) triples, or None when it is unset.

    A piecewise-constant learning rate: ranges [start, end) of 0-based epochs, contiguous from
    epoch 0, with no overlap, covering every epoch below `epochs` (ranges past the last epoch
    are allowed, so a shortened run keeps the recipe's start). Refuses anything else with a
    ConfigError naming the key.
    """
    key = "trainer.lr_schedule"
    if value is None:
        return None
    pieces: list[tuple[int, int, float]] = []
    try:
        rows = [(r["start"], r["end"], r["lr"]) for r in value]  # type: ignore[union-attr]
    except (TypeError, KeyError, AttributeError):
        raise ConfigError(
            key, f"must be a list of {{start, end, lr}} ranges or null, got {value!r}"
        ) from None
    if not rows:
        raise ConfigError(key, "must list at least one {start, end, lr} range, or be null")
    expected = 0
    for start, end, lr in rows:
        ints = all(isinstance(v, Integral) and not isinstance(v, bool) for v in (start, end))
        if not ints or start != expected or end <= start:
            raise ConfigError(
                key,
                f"ranges must be contiguous [start, end) epochs from 0 with start < end; "
                f"expected one starting at {expected}, got [{start}, {end})",
            )
        if isinstance(lr, bool) or not isinstance(lr, Real) or not 0 < lr < float("inf"):
            raise ConfigError(
                key, f"lr must be a finite number > 0, got {lr!r} for [{start}, {end})"
            )
        pieces.append((int(start), int(end), float(lr)))
        expected = end
    if expected < epochs:
        raise ConfigError(
            key, f"ranges end at epoch {expected} but trainer.epochs is {epochs}; extend the last"
        )
    return pieces


def _validate_speed(get: Callable[[str], Any]) -> None:
    """The trainer's speed keys (conf/trainer/default.yaml)."""
    checks.choice("trainer.amp", get("trainer.amp"), ["bf16", "none"])
    for key in ("channels_last", "cudnn_benchmark"):
        checks.flag(f"trainer.{key}", get(f"trainer.{key}"))
    compile_ = get("trainer.compile")
    if not isinstance(compile_, bool) and compile_ not in COMPILE_MODES:
        raise ConfigError(
            "trainer.compile",
            f"must be true, false or a torch.compile mode {list(COMPILE_MODES)}, got {compile_!r}",
        )
    checks.integer("trainer.stack", get("trainer.stack"), lo=1)
