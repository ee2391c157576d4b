"""Training-speed benchmark: `python -m mia_bench.bench` (or `make bench-train`).

Measured side by side in one run, on CIFAR-shaped random data (uint8 3x32x32, 10 classes):

a. one epoch of one model: our trainer (data on the device, batched preprocessing, the CUDA
   fast path) vs a loop written the way the papers' public code trains: a Dataset that turns
   each image into a PIL image, `ToTensor` + `Normalize` per sample, a DataLoader with 4 worker
   processes, fp32, `loss.item()` every step for logging. Images/second of each and the ratio.
b. k models: stacked (`trainer.stack`, mia_bench.stacked) vs one after another.
c. the whole RelaxLoss CIFAR-10 setting (target + shadow, the paper's recipe, every attack in
   conf/attack): wall time by pipeline stage.

Full size (the default on CUDA): 12,000 images per model (one RelaxLoss fold of CIFAR-10),
batch 128, k = 8, 300 epochs in (c). On the CPU it runs a smoke-test size (--size smoke).
Random data has no signal, so (c) measures time only; its accuracies mean nothing.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf, open_dict

from mia_bench.data import LOADERS, TensorData
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.none import NoDefense
from mia_bench.errors import ConfigError
from mia_bench.models import build_model
from mia_bench.stacked import train_stacked
from mia_bench.training import train_model

CONF = Path(__file__).resolve().parent.parent / "conf"
# CIFAR-10 channel statistics, as the papers' code normalises with them.
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
SIZES = {
    "full": {"n": 12_000, "k": 8, "epochs_c": 300},
    "smoke": {"n": 512, "k": 2, "epochs_c": 1},
}
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


def _random_images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return x, torch.randint(0, 10, (n,), generator=g)


def load_random_cifar(data_dir=None, n_samples: int = 60_000, seed: int = 0) -> TensorData:
    """CIFAR-10-shaped random data, registered as dataset `bench_random` for part (c)."""
    x, y = _random_images(n_samples, seed)
    return TensorData("bench_random", x, y, 10, "image", MEAN, STD)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model_cfg(name: str, notes: list[str]) -> DictConfig:
    path = CONF / "model" / f"{name}.yaml"
    if not path.exists():
        notes.append(f"model {name} is not in conf/model/: small_cnn stands in for it")
        path = CONF / "model" / "small_cnn.yaml"
    return OmegaConf.load(path)


def _trainer_cfg(epochs: int, **extra) -> DictConfig:
    base = OmegaConf.load(CONF / "trainer" / "default.yaml")
    return OmegaConf.merge(base, RECIPE, {"epochs": epochs}, extra)


class _PerSampleDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 dataset does per item: HWC uint8 array -> PIL -> transform."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform) -> None:
        self.x = x.permute(0, 2, 3, 1).contiguous().numpy()
        self.y = y.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def reference_epoch(model, x, y, device: torch.device, augment: bool, workers: int = 4) -> float:
    """One epoch the papers' way; returns seconds (worker start-up included, as every epoch
    of their loop pays it)."""
    import warnings

    from torchvision import transforms as T

    # torch warns when workers outnumber cores; 4 workers is the setting being reproduced.
    warnings.filterwarnings("ignore", message="This DataLoader will create")

    steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
    tf = T.Compose([*steps, T.ToTensor(), T.Normalize(MEAN, STD)])
    loader = torch.utils.data.DataLoader(
        _PerSampleDataset(x, y, tf),
        batch_size=RECIPE["batch_size"],
        shuffle=True,
        num_workers=workers,
    )
    model.to(device).train()
    opt = torch.optim.SGD(
        model.parameters(),
        lr=RECIPE["lr"],
        momentum=RECIPE["momentum"],
        weight_decay=RECIPE["weight_decay"],
    )
    _sync(device)
    t0 = time.perf_counter()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # their loops log the running loss every step
    _sync(device)
    return time.perf_counter() - t0


def _ours(model, x, y, device, augment: bool, seed: int = 0) -> float:
    pre = Preprocess("image", MEAN, STD, crop_padding=4 if augment else 0, flip=augment)
    _sync(device)
    t0 = time.perf_counter()
    train_model(
        model,
        NoDefense(10, 1),
        x,
        y,
        _trainer_cfg(1),
        preprocess=pre,
        seed=seed,
        device=device,
        progress=False,
    )
    _sync(device)
    return time.perf_counter() - t0


def part_a(mcfg, n: int, device, augment: bool, out) -> None:
    x, y = _random_images(n)
    torch.manual_seed(0)
    model = build_model(mcfg, (3, 32, 32), 10)
    ref_model = copy.deepcopy(model)
    # Warm-up on 4 batches: CUDA context, cuDNN autotuning, allocator; not what is compared.
    _ours(copy.deepcopy(model), x[:512], y[:512], device, augment)
    reference_epoch(copy.deepcopy(model), x[:512], y[:512], device, augment, workers=0)
    t_ours = _ours(model, x, y, device, augment)
    t_ref = reference_epoch(ref_model, x, y, device, augment)
    out(
        f"(a) one epoch, {n} images, batch {RECIPE['batch_size']}, augmentation {'on' if augment else 'off'}"
    )
    out(f"    ours:       {n / t_ours:10.0f} images/s  ({t_ours:.2f} s)")
    out(f"    reference:  {n / t_ref:10.0f} images/s  ({t_ref:.2f} s; DataLoader, 4 workers, fp32)")
    out(f"    ratio:      {t_ref / t_ours:10.2f} x")


def part_b(mcfg, n: int, k: int, device, out) -> None:
    x, y = _random_images(n)
    x, y = x.to(device), y.to(device)
    pre = Preprocess("image", MEAN, STD)
    cfg = _trainer_cfg(1, stack=k)

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
        fn(x[:256], y[:256])  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        fn(x, y)
        _sync(device)
        timings[name] = time.perf_counter() - t0
    out(f"(b) {k} models, one epoch of {n} images each")
    for name, t in timings.items():
        out(f"    {name + ':':12s}{k * n / t:10.0f} images/s  ({t:.2f} s)")
    out(f"    ratio:      {timings['one by one'] / timings['stacked']:10.2f} x")


def part_c(model_name: str, epochs: int, pool: int, device, out) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mia_bench_bench_") as tmp:
        _part_c(model_name, epochs, pool, device, out, Path(tmp))


def _part_c(model_name: str, epochs: int, pool: int, device, out, out_dir: Path) -> None:
    from hydra import compose, initialize_config_dir

    from mia_bench import pipeline
    from mia_bench.config import validate

    LOADERS["bench_random"] = load_random_cifar
    attacks = sorted(p.stem for p in (CONF / "attack").glob("*.yaml"))
    defense = "relaxloss" if (CONF / "defense" / "relaxloss.yaml").exists() else "none"
    notes = [] if defense == "relaxloss" else ["defense relaxloss is not in conf/defense/: none"]
    while True:
        over = [
            f"defense={defense}",
            f"attack=[{','.join(attacks)}]",
            "progress=false",
            "cache=false",
            f"device={device}",
        ]
        if (CONF / "model" / f"{model_name}.yaml").exists():
            over.append(f"model={model_name}")
        else:
            over.append("model=small_cnn")
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("config", overrides=over)
        with open_dict(cfg):
            cfg.dataset = {"name": "bench_random", "kind": "image", "n_samples": pool}
            cfg.trainer = _trainer_cfg(epochs)
            if defense == "relaxloss":
                cfg.defense.alpha = 1.0  # RelaxLoss App. C.3, CIFAR-10 ResNet20
            cfg.paths.cache_dir = None
            cfg.paths.output_dir = str(out_dir)
        try:
            validate(cfg)
            exp = pipeline.Experiment(cfg, out_dir)
            exp.prepare()
            break
        except ConfigError as err:  # an attack this setting cannot run: drop it, say so
            name = err.key.split(".")[1] if err.key.startswith("attack.") else None
            if name not in attacks:
                raise
            attacks.remove(name)
            notes.append(f"attack {name} left out: {err}")
    t0 = time.perf_counter()
    res = exp.run()
    total = time.perf_counter() - t0 + exp.stages.seconds.get("data", 0.0)
    out(
        f"(c) RelaxLoss setting: {cfg.model.name}, defense {defense}, {epochs} epochs, "
        f"{len(exp.split.target_train)} members per model, attacks {attacks}"
    )
    for stage, s in res["timing"].items():
        out(f"    {stage + ':':16s}{s:9.1f} s")
    out(f"    {'total:':16s}{total:9.1f} s")
    for n_ in notes:
        out(f"    note: {n_}")


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
    ap.add_argument("--epochs-c", type=int, help="epochs in (c) (overrides --size)")
    ap.add_argument(
        "--record", metavar="DIR", help="also write the report to DIR/train-<date>-<device>.txt"
    )
    args = ap.parse_args(argv)
    from mia_bench.pipeline import resolve_device

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
    if "a" in args.parts:
        part_a(mcfg, size["n"], device, args.augment, out)
    if "b" in args.parts:
        part_b(mcfg, size["n"], size["k"], device, out)
    if "c" in args.parts:
        part_c(args.model, size["epochs_c"], 5 * size["n"], device, out)
    if args.record:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name(device)).strip("-").lower()
        path = Path(args.record) / f"train-{dt.date.today().isoformat()}-{device.type}-{slug}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        from mia_bench.io import atomic_write_text

        atomic_write_text(path, "\n".join(lines) + "\n")
        print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
