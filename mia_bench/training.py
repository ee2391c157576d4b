"""One trainer for every model and every defense.

The whole training set sits on the device as tensors; each epoch is a seeded permutation cut
into batches. The loss of each step is kept on the device (no `.item()` per step), so a GPU is
never stalled waiting for the host.
"""

from __future__ import annotations

import math
import sys
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


def make_optimizer(model: torch.nn.Module, cfg: DictConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )


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
    epoch in `milestones` (torch's MultiStepLR, stepped once per epoch).
    """
    import time

    t0 = time.perf_counter()
    model.to(device).train()
    defense.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=list(cfg.milestones), gamma=cfg.gamma
    )
    defense.setup(model, opt, (x, y))
    extra = defense.extra_optimizers()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed)
    n, bs = len(y), int(cfg.batch_size)
    log = TrainLog()
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
            xb = preprocess(x[idx], train=True, generator=aug_gen)
            yb = y[idx]
            if defense.needs_features:
                logits, feats = model.forward_with_features(xb)
            else:
                logits, feats = model(xb), None
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
