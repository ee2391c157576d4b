"""Training-speed benchmark: `python -m mia_bench.bench` (or `make bench-train`).

Measured side by side in one run, on CIFAR-shaped random data (uint8 3x32x32, 10 classes):

a. one epoch of one model: our trainer (data on the device, batched preprocessing, the CUDA
   fast path) vs a loop written the way the papers' public code trains: a Dataset that turns
   each image into a PIL image, `ToTensor` + `Normalize` per sample, a DataLoader with 4 worker
   processes, fp32, `loss.item()` every step for logging (mia_bench.bench.baseline_loop).
   Images/second of each and the ratio.
b. k models: stacked (`trainer.stack`, mia_bench.train.stacked) vs one after another.
   (a) and (b): mia_bench.bench.trainer_speed.
c. the whole RelaxLoss CIFAR-10 setting (target + shadow, the paper's recipe, every attack in
   conf/attack): wall time by pipeline stage (mia_bench.bench.pipeline).
d. (only with --parts d) the same protocol on a real dataset (--dataset) with bf16 autocast
   and in fp32: test accuracy and every attack's AUC side by side.
e. (only with --parts e) the training rate of every setting (model, input shape, batch) that
   the paper targets train (mia_bench.bench.rates), written as JSON for
   `python -m mia_bench.repro.plan --rates`, which turns each target's volume into hours.

Full size (the default on CUDA): 12,000 images per model (one RelaxLoss fold of CIFAR-10),
batch 128, k = 8, 300 epochs in (c) and (d). On the CPU it runs a smoke-test size
(--size smoke). Random data has no signal, so (c) measures time only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from mia_bench.bench.common import CONF, speed_settings
from mia_bench.bench.pipeline import part_c, part_d
from mia_bench.bench.rates import part_e
from mia_bench.bench.trainer_speed import part_a, part_b

SIZES = {
    "full": {"n": 12_000, "k": 8, "epochs_c": 300},
    "smoke": {"n": 512, "k": 2, "epochs_c": 1},
}


def _model_cfg(name: str, notes: list[str]) -> DictConfig:
    path = CONF / "model" / f"{name}.yaml"
    if not path.exists():
        notes.append(f"model {name} is not in conf/model/: small_cnn stands in for it")
        path = CONF / "model" / "small_cnn.yaml"
    return OmegaConf.load(path)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def header(device: torch.device) -> list[str]:
    import torchvision

    name = device_name(device)
    lines = [
        f"mia_bench.bench {dt.datetime.now().isoformat(timespec='seconds')}",
        f"device: {device} ({name}); CPU cores: {os.cpu_count()}; torch threads: {torch.get_num_threads()}",
        f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"numpy {np.__version__}",
    ]
    if device.type == "cuda":
        lines.append(f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m mia_bench.bench", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--size",
        choices=["auto", "full", "smoke"],
        default="auto",
        help="full on CUDA, smoke on the CPU by default",
    )
    ap.add_argument(
        "--model", default="resnet20", help="a conf/model/<name>.yaml (default resnet20)"
    )
    ap.add_argument("--parts", default="abc", help="which parts to run, e.g. 'ab'")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ap.add_argument("--augment", action="store_true", help="random crop + flip in (a), both loops")
    ap.add_argument("--images", type=int, help="images per model (overrides --size)")
    ap.add_argument("--k", type=int, help="models in (b) (overrides --size)")
    ap.add_argument("--epochs-c", type=int, help="epochs in (c) and (d) (overrides --size)")
    ap.add_argument("--dataset", help="conf/dataset/<name> for (d); default cifar10, else digits")
    ap.add_argument(
        "--attacks",
        help="comma-separated conf/attack names for (c) and (d) (default: every one)",
    )
    ap.add_argument("--defense", default="relaxloss", help="conf/defense name for (d)")
    ap.add_argument(
        "--compile",
        default="false",
        help="trainer.compile of our trainer in every part (false, true or a torch.compile "
        "mode, e.g. reduce-overhead)",
    )
    ap.add_argument("--amp", choices=["bf16", "none"], help="trainer.amp in every part")
    ap.add_argument("--seed", type=int, default=0, help="seed of (d)")
    ap.add_argument(
        "--stack", type=int, default=1, help="trainer.stack in (c): reference models side by side"
    )
    ap.add_argument(
        "--settings",
        metavar="JSON",
        help="settings for (e), from `python -m mia_bench.repro.plan --write-settings` "
        "(default: computed from every target, which takes a minute)",
    )
    ap.add_argument("--steps", type=int, default=50, help="timed batches per setting in (e)")
    ap.add_argument(
        "--record", metavar="DIR", help="also write the report to DIR/train-<date>-<device>.txt"
    )
    args = ap.parse_args(argv)
    from mia_bench.experiment.setup import resolve_device

    device = resolve_device(args.device)
    auto = "full" if device.type == "cuda" else "smoke"
    size = dict(SIZES[args.size if args.size != "auto" else auto])
    for key, value in [("n", args.images), ("k", args.k), ("epochs_c", args.epochs_c)]:
        if value is not None:
            size[key] = value
    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    for line in header(device):
        out(line)
    notes: list[str] = []
    mcfg = _model_cfg(args.model, notes)
    out(f"model: {mcfg.name}; size: {size}")
    for n_ in notes:
        out(f"note: {n_}")
    speed = speed_settings(args.compile, args.amp)
    out(f"speed settings: {speed}")
    if "a" in args.parts:
        part_a(mcfg, size["n"], device, args.augment, out, speed)
    if "b" in args.parts:
        part_b(mcfg, size["n"], size["k"], device, out, speed)
    attacks = args.attacks.split(",") if args.attacks else None
    if "c" in args.parts:
        part_c(args.model, size["epochs_c"], 5 * size["n"], device, out, speed, attacks, args.stack)
    if "d" in args.parts:
        dataset = args.dataset or (
            "cifar10" if (CONF / "dataset" / "cifar10.yaml").exists() else "digits"
        )
        part_d(
            args.model,
            dataset,
            size["epochs_c"],
            device,
            out,
            speed,
            attacks,
            args.defense,
            args.seed,
        )
    rates = None
    if "e" in args.parts:
        rates = part_e(args.settings, args.steps, device, device_name(device), out, speed)
    if args.record:
        from mia_bench.io import atomic_write_text

        slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name(device)).strip("-").lower()
        # one file per run: date, device, parts, and the settings that change the figures
        stem = f"{dt.date.today().isoformat()}-{device.type}-{slug}-{args.parts}"
        if speed["compile"]:
            stem += f"-{speed['compile']}"
        if args.amp:
            stem += f"-{args.amp}"
        if "d" in args.parts:
            stem += f"-{args.dataset or 'default'}-seed{args.seed}"
        path = Path(args.record) / f"train-{stem}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "\n".join(lines) + "\n")
        print(f"written to {path}")
        if rates is not None:
            rpath = Path(args.record) / f"rates-{stem}.json"
            atomic_write_text(rpath, json.dumps(rates, indent=1) + "\n")
            print(f"written to {rpath}")
    return 0
