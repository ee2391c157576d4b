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

import time
from collections.abc import Iterable, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import BatchSampler, Defense, TrainingParts
from mia_bench.train.core import (
    FastPath,
    TrainLog,
    end_epoch,
    epoch_bar,
    make_optimizer,
    make_scheduler,
    optimiser_step,
    seeded_generators,
)
from mia_bench.train.resume import Checkpointer

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
    t0 = time.perf_counter()
    fast = FastPath.from_cfg(cfg, device)
    fast.model(model.to(device)).train()
    defense.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, cfg, device)
    sched = make_scheduler(opt, cfg)
    parts = defense.setup(model, opt, (x, y)) or TrainingParts()
    net = parts.model if parts.model is not None else model
    optimizers = [parts.optimizer if parts.optimizer is not None else opt]
    optimizers += defense.extra_optimizers()
    if parts.data is not None:
        x, y = (t.to(device) for t in parts.data)
    batches = parts.batches or shuffled_batches(int(cfg.batch_size))
    gen, aug_gen = seeded_generators(seed, device)
    snaps = {int(e) for e in snapshot_epochs}
    epochs = max(snaps) if snaps else int(cfg.epochs)
    log = TrainLog()
    resume = checkpointer if checkpointer is not None and checkpointer.active() else None
    if resume is not None and not defense.resumable:
        resume = None
    state_parts = {
        "model": model,
        "defense": defense,
        "optimizers": optimizers,
        "scheduler": sched,
        "generators": [gen, aug_gen],
    }
    start = 0
    if resume is not None:
        start, log.epoch_loss, log.snapshots = resume.restore(**state_parts)
    forward = fast.forward(net.forward_with_features if defense.needs_features else net)
    bar = epoch_bar(range(start, epochs), desc, progress)
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
            optimiser_step(loss, optimizers)
            total += loss.detach() * len(idx)
            seen += len(idx)
        mean_loss = float(total) / max(seen, 1)  # one host sync per epoch
        end_epoch(sched, epoch, [mean_loss], [desc], [defense], [log], bar)
        if epoch + 1 in snaps:
            log.snapshots[epoch + 1] = _state_copy(model)
        if resume is not None and (epoch + 1) % resume.every == 0 and epoch + 1 < epochs:
            resume.save(
                epoch + 1, epoch_loss=log.epoch_loss, snapshots=log.snapshots, **state_parts
            )
    bar.close()
    defense.end_training()
    model.eval()
    defense.eval()
    log.seconds = time.perf_counter() - t0
    return log
