"""One trainer for every model and every defense.

The whole training set sits on the device as tensors; each epoch is a seeded permutation cut
into batches. The loss of each step is kept on the device (no `.item()` per step), so a GPU is
never stalled waiting for the host. On CUDA, `FastPath` adds bf16 autocast, channels_last,
cuDNN autotuning and a fused optimiser step; on the CPU it changes nothing, so CPU runs stay
bit-for-bit repeatable.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import Defense
from mia_bench.errors import DivergenceError


@dataclass
class TrainLog:
    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class FastPath:
    """Speed settings of `cfg.trainer` that apply on CUDA only.

    amp: "bf16" runs forward and loss under bf16 autocast (the one setting that changes the
    arithmetic); "none" keeps fp32. channels_last: NHWC memory layout for 4-D inputs and conv
    weights (same values, faster cuDNN kernels). compile: `torch.compile` of the forward pass,
    honoured on every device because the user asks for it explicitly.
    """

    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False

    @classmethod
    def from_cfg(cls, cfg: DictConfig, device: torch.device) -> FastPath:
        on_cuda = torch.device(device).type == "cuda"
        if on_cuda and bool(cfg.get("cudnn_benchmark", True)):
            torch.backends.cudnn.benchmark = True
        return cls(
            amp_dtype=torch.bfloat16 if on_cuda and cfg.get("amp", "bf16") == "bf16" else None,
            channels_last=on_cuda and bool(cfg.get("channels_last", True)),
            compile=bool(cfg.get("compile", False)),
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
        return torch.compile(fn) if self.compile else fn


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
) -> TrainLog:
    """Train `model` in place on (x, y) for `cfg.epochs` epochs with the defense's objective.

    SGD with momentum and weight decay; the learning rate is multiplied by `gamma` at each
    epoch in `milestones` (torch's MultiStepLR, stepped once per epoch). `FastPath` settings
    apply on CUDA.
    """
    import time

    t0 = time.perf_counter()
    fast = FastPath.from_cfg(cfg, device)
    fast.model(model.to(device)).train()
    defense.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, cfg, device)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=list(cfg.milestones), gamma=cfg.gamma
    )
    defense.setup(model, opt, (x, y))
    extra = defense.extra_optimizers()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed)
    n, bs = len(y), int(cfg.batch_size)
    log = TrainLog()
    forward = fast.forward(model.forward_with_features if defense.needs_features else model)
    bar = tqdm(
        range(cfg.epochs),
        desc=desc,
        disable=not (progress and sys.stderr.isatty()),
        leave=False,
        dynamic_ncols=True,
    )
    for epoch in bar:
        perm = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            xb = fast.batch(preprocess(x[idx], train=True, generator=aug_gen))
            yb = y[idx]
            with fast.autocast(device):
                if defense.needs_features:
                    logits, feats = forward(xb)
                else:
                    logits, feats = forward(xb), None
                loss = defense.loss(logits, yb, epoch=epoch, features=feats)
            opt.zero_grad(set_to_none=True)
            for o in extra:
                o.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for o in extra:
                o.step()
            total += loss.detach() * len(idx)
        sched.step()
        mean_loss = float(total) / n  # one host sync per epoch
        if not math.isfinite(mean_loss):
            raise DivergenceError(
                f"{desc}: loss is {mean_loss} at epoch {epoch} with defense "
                f"{defense.describe()}; lower trainer.lr or change the defense's parameters"
            )
        log.epoch_loss.append(mean_loss)
        bar.set_postfix(loss=f"{mean_loss:.4f}")
    bar.close()
    model.eval()
    defense.eval()
    log.seconds = time.perf_counter() - t0
    return log


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    preprocess: Preprocess,
    device: torch.device,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Logits of the model in eval mode for every row of x, computed in large batches (CPU)."""
    model.to(device).eval()
    out = [
        model(preprocess(x[i : i + batch_size].to(device))).float()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out).cpu() if out else torch.zeros(0)
