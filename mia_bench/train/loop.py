"""One trainer for every model and every defense.

The whole training set sits on the device as tensors; each epoch is a seeded permutation cut
into batches. The loss of each step is kept on the device (no `.item()` per step), so a GPU is
never stalled waiting for the host. On CUDA, `FastPath` adds bf16 autocast, channels_last,
cuDNN autotuning and a fused optimiser step; on the CPU it changes nothing, so CPU runs stay
bit-for-bit repeatable.

A defense can take over parts of the step without the trainer knowing which defense it is:
`Defense.setup` may return `TrainingParts` (another model wrapper, optimiser, training data or
batch sampler; DP-SGD and DMP use this), and `snapshot_epochs` keeps copies of the weights
after given epochs (early stopping).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from mia_bench.config import COMPILE_MODES, lr_schedule
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import BatchSampler, Defense, TrainingParts
from mia_bench.errors import DivergenceError
from mia_bench.train.resume import Checkpointer


@dataclass
class TrainLog:
    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # epoch count -> CPU copy of the model's state_dict after that many epochs
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


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
        if on_cuda and bool(cfg.get("cudnn_benchmark", True)):
            torch.backends.cudnn.benchmark = True
        return cls(
            amp_dtype=torch.bfloat16 if on_cuda and cfg.get("amp", "none") == "bf16" else None,
            channels_last=on_cuda and bool(cfg.get("channels_last", True)),
            compile=compile_mode(cfg.get("compile", False)),
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


# Trainer keys that decide how fast a model trains or how often it is saved, not what it
# learns: left out of the model cache's key, so switching them reuses trained models (like the
# device, which is not in the key either). `amp` stays in: bf16 changes the arithmetic.
SPEED_ONLY_KEYS = (
    "stack",
    "checkpoint_every",
    "eval_batch_size",
    "compile",
    "channels_last",
    "cudnn_benchmark",
)


def trainer_identity(cfg: DictConfig) -> dict:
    """The trainer config as far as it determines the trained model: the model cache's key
    part (and `mia_bench.repro.plan`'s count of distinct models), without `SPEED_ONLY_KEYS`."""
    trainer = OmegaConf.to_container(cfg, resolve=True)
    # An unset lr_schedule leaves the key as it was before the option existed.
    return {
        k: v
        for k, v in trainer.items()
        if k not in SPEED_ONLY_KEYS and not (k == "lr_schedule" and v is None)
    }


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
    pieces = lr_schedule(cfg.get("lr_schedule"), int(cfg.epochs))
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


def shuffled_batches(batch_size: int) -> BatchSampler:
    """The default sampler: each epoch a seeded permutation of the samples, cut into batches
    of `batch_size` (the last one smaller)."""

    def sample(n: int, gen: torch.Generator) -> Iterable[torch.Tensor]:
        perm = torch.randperm(n, generator=gen)
        return (perm[i : i + batch_size] for i in range(0, n, batch_size))

    return sample


def _on_device(batches: Iterable[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """All of an epoch's index batches moved to the device in one transfer."""
    batches = list(batches)
    if device.type == "cpu" or not batches:
        return batches
    return list(torch.cat(batches).to(device).split([len(b) for b in batches]))


def _state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_model(
    model: torch.nn.Module,
    defense: Defense,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: DictConfig,
    *,
    preprocess: Preprocess,
    seed: int,
    device: torch.device,
    desc: str = "train",
    progress: bool = True,
    snapshot_epochs: Sequence[int] = (),
    checkpointer: Checkpointer | None = None,
) -> TrainLog:
    """Train `model` in place on (x, y) for `cfg.epochs` epochs with the defense's objective.

    SGD with momentum and weight decay; the learning rate follows `make_scheduler`
    (`milestones`/`gamma`, or the piecewise `lr_schedule`). `FastPath` settings apply on CUDA.

    `snapshot_epochs`: epoch counts (1 = after the first epoch, at most `cfg.epochs`) after
    which a CPU copy of `model.state_dict()` is kept in `TrainLog.snapshots`. Training then
    stops after the largest of them, since nothing later would be evaluated; the learning-rate
    schedule is the one of a full run, so each snapshot is the checkpoint a run of
    `cfg.epochs` epochs passes through.

    `checkpointer`: resume from its file if there is one, and write one every
    `checkpointer.every` epochs (mia_bench.train.resume), unless the defense is not `resumable`.
    """
    import time

    t0 = time.perf_counter()
    fast = FastPath.from_cfg(cfg, device)
    fast.model(model.to(device)).train()
    defense.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, cfg, device)
    sched = make_scheduler(opt, cfg)
    parts = defense.setup(model, opt, (x, y)) or TrainingParts()
    net = parts.model if parts.model is not None else model
    step_opt = parts.optimizer if parts.optimizer is not None else opt
    if parts.data is not None:
        x, y = (t.to(device) for t in parts.data)
    batches = parts.batches or shuffled_batches(int(cfg.batch_size))
    extra = defense.extra_optimizers()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed)
    snaps = {int(e) for e in snapshot_epochs}
    epochs = max(snaps) if snaps else int(cfg.epochs)
    log = TrainLog()
    resume = checkpointer if checkpointer is not None and checkpointer.active() else None
    if resume is not None and not defense.resumable:
        resume = None
    state_parts = {
        "model": model,
        "defense": defense,
        "optimizers": [step_opt, *extra],
        "scheduler": sched,
        "generators": [gen, aug_gen],
    }
    start = 0
    if resume is not None:
        start, log.epoch_loss, log.snapshots = resume.restore(**state_parts)
    forward = fast.forward(net.forward_with_features if defense.needs_features else net)
    bar = tqdm(
        range(start, epochs),
        desc=desc,
        disable=not (progress and sys.stderr.isatty()),
        leave=False,
        dynamic_ncols=True,
    )
    for epoch in bar:
        total = torch.zeros((), device=device)
        seen = 0
        for idx in _on_device(batches(len(y), gen), device):
            fast.step_begin()
            xb = fast.batch(preprocess(x[idx], train=True, generator=aug_gen))
            yb = y[idx]
            kw = {"inputs": xb} if defense.needs_inputs else {}
            with fast.autocast(device):
                if defense.needs_features:
                    logits, feats = forward(xb)
                else:
                    logits, feats = forward(xb), None
                loss = defense.loss(logits, yb, epoch=epoch, features=feats, **kw)
            step_opt.zero_grad(set_to_none=True)
            for o in extra:
                o.zero_grad(set_to_none=True)
            loss.backward()
            step_opt.step()
            for o in extra:
                o.step()
            total += loss.detach() * len(idx)
            seen += len(idx)
        sched.step()
        mean_loss = float(total) / max(seen, 1)  # one host sync per epoch
        if not math.isfinite(mean_loss):
            raise DivergenceError(
                f"{desc}: loss is {mean_loss} at epoch {epoch} with defense "
                f"{defense.describe()}; lower trainer.lr or change the defense's parameters"
            )
        log.epoch_loss.append(mean_loss)
        if epoch + 1 in snaps:
            log.snapshots[epoch + 1] = _state_copy(model)
        if resume is not None and (epoch + 1) % resume.every == 0 and epoch + 1 < epochs:
            resume.save(
                epoch + 1, epoch_loss=log.epoch_loss, snapshots=log.snapshots, **state_parts
            )
        bar.set_postfix(loss=f"{mean_loss:.4f}")
    bar.close()
    defense.end_training()
    model.eval()
    defense.eval()
    log.seconds = time.perf_counter() - t0
    return log

