"""What every training loop shares (one model, `loop.train_model`, or k stacked,
`stacked.train_stacked`): the CUDA fast path, SGD and its learning-rate schedule, the seeded
generators, one optimiser step, the progress bar and the end of an epoch (the divergence
error). Each is written here once; the two loops differ only in how they run the forward pass.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from mia_bench import conf_dir
from mia_bench.config import COMPILE_MODES, lr_schedule
from mia_bench.defenses.base import Defense
from mia_bench.errors import DivergenceError


@functools.cache
def _yaml_trainer() -> DictConfig:
    return OmegaConf.load(conf_dir() / "trainer" / "default.yaml")


def setting(cfg: DictConfig, key: str) -> Any:
    """`cfg[key]` of a trainer config. Hydra's config always holds every key, but a trainer
    config built outside Hydra (a user's own DictConfig, a benchmark's) may leave out the
    optional ones (speed settings, `lr_schedule`): their default is then read from
    conf/trainer/default.yaml, so that each default is written once."""
    return cfg[key] if key in cfg else _yaml_trainer()[key]


@dataclass
class TrainLog:
    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # epoch count -> CPU copy of the model's state_dict after that many epochs
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def compile_mode(value: object) -> str | None:
    """The torch.compile mode of a `trainer.compile` value (None: eager)."""
    if value is None or value is False or value in ("false", "none"):
        return None
    if value is True or value == "true":
        return "default"
    if value in COMPILE_MODES:
        return str(value)
    raise ValueError(f"trainer.compile must be true, false or one of {COMPILE_MODES}: {value!r}")


@dataclass(frozen=True)
class FastPath:
    """Speed settings of `cfg.trainer` that apply on CUDA only.

    amp: "bf16" runs forward and loss under bf16 autocast (the one setting that changes the
    arithmetic); "none" keeps fp32. channels_last: NHWC memory layout for 4-D inputs and conv
    weights (same values, faster cuDNN kernels). compile: the `torch.compile` mode of the forward
    pass (None: eager), honoured on every device because the user asks for it explicitly.
    "reduce-overhead" records CUDA graphs: the papers' small models are bound by the host's
    per-kernel launch cost in eager mode, which a replayed graph removes.
    """

    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    compile: str | None = None

    @classmethod
    def from_cfg(cls, cfg: DictConfig, device: torch.device) -> FastPath:
        on_cuda = torch.device(device).type == "cuda"
        if on_cuda and bool(setting(cfg, "cudnn_benchmark")):
            torch.backends.cudnn.benchmark = True
        return cls(
            amp_dtype=torch.bfloat16 if on_cuda and setting(cfg, "amp") == "bf16" else None,
            channels_last=on_cuda and bool(setting(cfg, "channels_last")),
            compile=compile_mode(setting(cfg, "compile")),
        )

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=self.amp_dtype)

    def model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, fn: Callable) -> Callable:
        return torch.compile(fn, mode=self.compile) if self.compile else fn

    def step_begin(self) -> None:
        """Tell CUDA-graph trees that a new training step starts (outputs of the last replay
        may be overwritten); nothing to do without graphs."""
        if self.compile in CUDA_GRAPH_MODES:
            torch.compiler.cudagraph_mark_step_begin()


def make_optimizer(
    model: torch.nn.Module | Iterable[torch.Tensor],
    cfg: DictConfig,
    device: torch.device | str = "cpu",
) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay over a model's parameters (or a list of tensors).

    On CUDA the fused kernel (one launch for every tensor) is used, else the multi-tensor
    `foreach` one; both compute the same update as the default loop, which the CPU keeps.
    """
    params = list(model.parameters() if isinstance(model, torch.nn.Module) else model)
    kw = {"lr": cfg.lr, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay}
    if torch.device(device).type == "cuda":
        try:
            return torch.optim.SGD(params, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.SGD(params, foreach=True, **kw)
    return torch.optim.SGD(params, **kw)


def make_scheduler(
    opt: torch.optim.Optimizer, cfg: DictConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule, stepped once per epoch.

    `trainer.lr_schedule` set: piecewise constant, lr of the range [start, end) holding the
    epoch (a one-epoch warm-up is the range [0, 1)); `trainer.lr` is then only the base that
    LambdaLR scales. Unset: `lr` multiplied by `gamma` at each epoch in `milestones`
    (torch's MultiStepLR).
    """
    pieces = lr_schedule(setting(cfg, "lr_schedule"), int(cfg.epochs))
    if pieces is None:
        return torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=list(cfg.milestones), gamma=cfg.gamma
        )
    base = float(cfg.lr)

    def factor(epoch: int) -> float:
        for start, end, lr in pieces:
            if start <= epoch < end:
                return lr / base
        return pieces[-1][2] / base  # past the last range: keep its rate

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def seeded_generators(seed: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """(batch order on the CPU, augmentation on the device), both seeded with the model's seed,
    so a model draws the same batches and augmentations alone or stacked."""
    return (
        torch.Generator(device="cpu").manual_seed(seed),
        torch.Generator(device=device).manual_seed(seed),
    )


def optimiser_step(loss: torch.Tensor, optimizers: Sequence[torch.optim.Optimizer]) -> None:
    """One step: the model's optimiser first, then the defense's own (CRL's class centers)."""
    for o in optimizers:
        o.zero_grad(set_to_none=True)
    loss.backward()
    for o in optimizers:
        o.step()


def epoch_bar(epochs: Iterable[int], desc: str, progress: bool) -> tqdm:
    """The per-model progress bar, shown only on a terminal."""
    return tqdm(
        epochs,
        desc=desc,
        disable=not (progress and sys.stderr.isatty()),
        leave=False,
        dynamic_ncols=True,
    )


def end_epoch(
    sched: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    mean_losses: Sequence[float],
    names: Sequence[str],
    defenses: Sequence[Defense],
    logs: Sequence[TrainLog],
    bar: tqdm,
) -> None:
    """Step the learning-rate schedule and record each model's mean training loss of `epoch`;
    a loss that is not finite stops the run with a `DivergenceError` naming the model and its
    defense."""
    sched.step()
    for name, defense, log, mean_loss in zip(names, defenses, logs, mean_losses):
        if not math.isfinite(mean_loss):
            raise DivergenceError(
                f"{name}: loss is {mean_loss} at epoch {epoch} with defense "
                f"{defense.describe()}; lower trainer.lr or change the defense's parameters"
            )
        log.epoch_loss.append(mean_loss)
    bar.set_postfix(loss=f"{sum(mean_losses) / len(mean_losses):.4f}")
