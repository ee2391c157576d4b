"""Checks on the composed config that Hydra cannot make: types and ranges, with messages that
name the key to change. Run before any data is loaded or any model trained."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from numbers import Integral, Real

from omegaconf import DictConfig

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


def _int(cfg: DictConfig, key: str, lo: int | None = None, hi: int | None = None) -> int:
    v = cfg_get(cfg, key)
    if isinstance(v, bool) or not isinstance(v, Integral):
        raise ConfigError(key, f"must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise ConfigError(key, f"must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ConfigError(key, f"must be <= {hi}, got {v}")
    return int(v)


def _real(
    cfg: DictConfig, key: str, lo: float | None = None, hi: float | None = None, lo_open=False
) -> float:
    v = cfg_get(cfg, key)
    if isinstance(v, bool) or not isinstance(v, Real):
        raise ConfigError(key, f"must be a number, got {v!r}")
    if not math.isfinite(v):
        raise ConfigError(key, f"must be a finite number, got {v}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(key, f"must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise ConfigError(key, f"must be <= {hi}, got {v}")
    return float(v)


def _choice(cfg: DictConfig, key: str, options: Sequence[str]) -> str:
    v = cfg_get(cfg, key)
    if v not in options:
        raise ConfigError(key, f"choose one of {list(options)}, got {v!r}")
    return v


def _bool(cfg: DictConfig, key: str) -> bool:
    v = cfg_get(cfg, key)
    if not isinstance(v, bool):
        raise ConfigError(key, f"must be true or false, got {v!r}")
    return v


def cfg_get(cfg: DictConfig, dotted: str):
    node = cfg
    for part in dotted.split("."):
        if node is None or part not in node:
            raise ConfigError(dotted, "is missing from the config")
        node = node[part]
    return node


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first bad setting."""
    _int(cfg, "seed", 0, MAX_SEED)
    device = cfg_get(cfg, "device")
    if not isinstance(device, str) or not (device in ("auto", "cpu") or device.startswith("cuda")):
        raise ConfigError("device", f"use auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "device", f"{device} requested but CUDA is not available; use device=auto"
            )
    _int(cfg, "trainer.epochs", 1, MAX_EPOCHS)
    _int(cfg, "trainer.batch_size", 1)
    _int(cfg, "trainer.eval_batch_size", 1)
    lr = _real(cfg, "trainer.lr", 0.0, lo_open=True)
    if lr > LARGE_LR:
        log.warning(
            "trainer.lr=%g is far above the papers' SGD rates (0.01-0.1); expect the run to "
            "diverge or to learn nothing",
            lr,
        )
    _real(cfg, "trainer.momentum", 0.0, 1.0)
    _real(cfg, "trainer.weight_decay", 0.0)
    _real(cfg, "trainer.gamma", 0.0, lo_open=True)
    milestones = cfg_get(cfg, "trainer.milestones")
    if not all(isinstance(m, Integral) and not isinstance(m, bool) and m > 0 for m in milestones):
        raise ConfigError(
            "trainer.milestones", f"must be a list of positive epochs, got {list(milestones)}"
        )
    lr_schedule(cfg_get(cfg, "trainer").get("lr_schedule"), _int(cfg, "trainer.epochs", 1))
    _validate_speed(cfg)
    if cfg.get("cpu_threads") is not None:
        _int(cfg, "cpu_threads", 1)
    if "checkpoint_every" in cfg.trainer:
        _int(cfg, "trainer.checkpoint_every", 0)
    _choice(cfg, "shadow.defense", ["same", "none"])
    _int(cfg, "shadow.count", 1)
    if not cfg.get("attack"):
        raise ConfigError("attack", "select at least one attack, e.g. attack=[loss,nn]")
    max_samples = cfg.split.get("max_samples")
    if max_samples is not None:
        _int(cfg, "split.max_samples", 10)


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


def _validate_speed(cfg: DictConfig) -> None:
    """The trainer's speed keys; optional, so trainer configs written before them still load."""
    trainer = cfg_get(cfg, "trainer")
    if "amp" in trainer:
        _choice(cfg, "trainer.amp", ["bf16", "none"])
    for key in ("channels_last", "cudnn_benchmark"):
        if key in trainer:
            _bool(cfg, f"trainer.{key}")
    if "compile" in trainer and not isinstance(trainer.compile, bool):
        if trainer.compile not in COMPILE_MODES:
            raise ConfigError(
                "trainer.compile",
                f"must be true, false or a torch.compile mode {list(COMPILE_MODES)}, "
                f"got {trainer.compile!r}",
            )
    if "stack" in trainer:
        _int(cfg, "trainer.stack", 1)
