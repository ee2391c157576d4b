"""What every part of the benchmark (`python -m mia_bench.bench`) shares: the config folder,
CIFAR-10's channel statistics, the RelaxLoss CIFAR training recipe, random CIFAR-shaped data,
a device-synchronised timer, and the trainer config with one run's speed settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from omegaconf import DictConfig, OmegaConf

from mia_bench import conf_dir
from mia_bench.train.core import compile_mode

CONF = conf_dir()
# CIFAR-10 channel statistics, as the papers' code normalises with them.
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
# RelaxLoss App. B.3: SGD, momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at epochs
# 150 and 225 of 300; no augmentation. Batch 128 as in their public code.
RECIPE = {
    "batch_size": 128,
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "milestones": [150, 225],
    "gamma": 0.1,
}


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds `fn()` takes, the device's queued work waited for on both sides (CUDA runs
    asynchronously, so the host clock alone would miss it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def random_images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n CIFAR-shaped uint8 images with labels in 0..9."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return x, torch.randint(0, 10, (n,), generator=g)


def speed_settings(compile_: str | bool | None = None, amp: str | None = None) -> dict:
    """The trainer's speed settings of one benchmark run (`--compile`, `--amp`), passed to
    every part: `trainer.compile` (False, True or a torch.compile mode; checked by the
    trainer's `compile_mode`) and `trainer.amp` when given."""
    speed: dict = {"compile": compile_mode(compile_) or False}
    if amp:
        speed["amp"] = amp
    return speed


def trainer_cfg(epochs: int, speed: dict | None = None, **extra) -> DictConfig:
    """conf/trainer/default.yaml (speed settings included) with the RelaxLoss CIFAR recipe,
    the run's `speed` settings and `extra` keys."""
    base = OmegaConf.load(CONF / "trainer" / "default.yaml")
    return OmegaConf.merge(base, RECIPE, {"epochs": epochs}, speed or {}, extra)
