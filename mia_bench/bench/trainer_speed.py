"""Trainer parts of the benchmark (`python -m mia_bench.bench`):

(a) one epoch of one model: our trainer vs the plain baseline loop (`baseline_loop`);
(b) k models one epoch each: stacked (`trainer.stack`) vs one after another.
"""

from __future__ import annotations

import copy

import torch

from mia_bench.bench.baseline_loop import baseline_epoch
from mia_bench.bench.common import MEAN, RECIPE, STD, random_images, timed, trainer_cfg
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.none import NoDefense
from mia_bench.models import build_model
from mia_bench.train.loop import train_model
from mia_bench.train.stacked import train_stacked


def _ours(model, x, y, device, augment: bool, speed: dict, seed: int = 0) -> float:
    pre = Preprocess("image", MEAN, STD, crop_padding=4 if augment else 0, flip=augment)
    cfg = trainer_cfg(1, speed)
    return timed(
        lambda: train_model(
            model,
            NoDefense(10, 1),
            x,
            y,
            cfg,
            preprocess=pre,
            seed=seed,
            device=device,
            progress=False,
        ),
        device,
    )


def part_a(mcfg, n: int, device, augment: bool, out, speed: dict) -> None:
    """One epoch of one model: our trainer vs the plain baseline loop (`baseline_loop`)."""
    x, y = random_images(n)
    torch.manual_seed(0)
    model = build_model(mcfg, (3, 32, 32), 10)
    base_model = copy.deepcopy(model)
    base = {"mean": MEAN, "std": STD, "recipe": RECIPE}
    # Warm-up on 4 batches and one of the epoch's last (smaller) batch size: CUDA context,
    # cuDNN autotuning of both shapes, allocator, compilation; not what is compared.
    warm = 4 * RECIPE["batch_size"] + n % RECIPE["batch_size"]
    # The same model object as the timed run, so torch.compile's cache is hit then.
    _ours(model, x[:warm], y[:warm], device, augment, speed)
    baseline_epoch(copy.deepcopy(model), x[:warm], y[:warm], device, augment, **base, workers=0)
    t_ours = _ours(model, x, y, device, augment, speed)
    t_base = baseline_epoch(base_model, x, y, device, augment, **base)
    out(
        f"(a) one epoch, {n} images, batch {RECIPE['batch_size']}, augmentation {'on' if augment else 'off'}"
    )
    out(f"    ours:       {n / t_ours:10.0f} images/s  ({t_ours:.2f} s)")
    out(
        f"    baseline:   {n / t_base:10.0f} images/s  ({t_base:.2f} s; DataLoader, 4 workers, fp32)"
    )
    out(f"    ratio:      {t_base / t_ours:10.2f} x")


def part_b(mcfg, n: int, k: int, device, out, speed: dict) -> None:
    """k models one epoch each: stacked vs one after another."""
    x, y = random_images(n)
    x, y = x.to(device), y.to(device)
    pre = Preprocess("image", MEAN, STD)
    cfg = trainer_cfg(1, speed, stack=k)

    def models():
        out_ = []
        for i in range(k):
            torch.manual_seed(i)
            out_.append(build_model(mcfg, (3, 32, 32), 10))
        return out_

    def stacked(xs, ys):
        ms = models()
        train_stacked(
            ms,
            [NoDefense(10, 1) for _ in ms],
            [(xs, ys)] * k,
            cfg,
            seeds=list(range(k)),
            preprocess=pre,
            device=device,
            progress=False,
        )

    def sequential(xs, ys):
        for i, m in enumerate(models()):
            train_model(
                m,
                NoDefense(10, 1),
                xs,
                ys,
                cfg,
                preprocess=pre,
                seed=i,
                device=device,
                progress=False,
            )

    timings = {}
    for name, fn in [("stacked", stacked), ("one by one", sequential)]:
        warm = 2 * RECIPE["batch_size"] + n % RECIPE["batch_size"]
        fn(x[:warm], y[:warm])  # warm-up, the epoch's last batch size included
        timings[name] = timed(lambda fn=fn: fn(x, y), device)
    out(f"(b) {k} models, one epoch of {n} images each")
    for name, t in timings.items():
        out(f"    {name + ':':12s}{k * n / t:10.0f} images/s  ({t:.2f} s)")
    out(f"    ratio:      {timings['one by one'] / timings['stacked']:10.2f} x")
