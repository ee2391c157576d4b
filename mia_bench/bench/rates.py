"""Part (e) of the benchmark: training rate of every setting the paper targets train.

A setting (mia_bench.repro.plan.SpeedSetting) is a model config, an input shape, a class count and a batch
size: what decides how fast a model trains. For each, one epoch of `steps` full batches of
random data goes through the real trainer (`train_model`, no defense, the speed settings of
conf/trainer/default.yaml and the command line) after a warm-up epoch of the same shapes, so cuDNN's
autotuning and the allocator are paid before the clock starts. The rates, in images (samples)
per second, turn `python -m mia_bench.repro.plan --rates` volumes into hours.

Left out, so the hours are lower bounds: evaluation and the attacks' own work, defenses that
cost more than a forward + backward (DP-SGD's per-sample clipping, Adv-Reg's inference model,
distillation's teacher forward), and data loading (the data is on the device before training).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from mia_bench.bench.common import MEAN, STD, timed, trainer_cfg
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.none import NoDefense
from mia_bench.models import build_model
from mia_bench.train.loop import train_model


def _data(shape: list[int], classes: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if len(shape) == 3:  # images are stored as uint8, as the loaders store them
        x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
    else:
        x = (torch.rand(n, *shape, generator=g) < 0.5).float()  # binary features (Purchase)
    return x, torch.randint(0, classes, (n,), generator=g)


def _preprocess(shape: list[int]) -> Preprocess:
    if len(shape) != 3:
        return Preprocess("tabular")
    c = shape[0]
    return Preprocess(
        "image", MEAN[:c] if c == 3 else (0.5,) * c, STD[:c] if c == 3 else (0.25,) * c
    )


def measure(row: dict, steps: int, device: torch.device, speed: dict) -> float:
    """Seconds of one epoch of `steps` full batches of the setting `row` (plan JSON row)."""
    shape, classes, batch = row["shape"], int(row["classes"]), int(row["batch_size"])
    cfg = trainer_cfg(1, speed, batch_size=batch, checkpoint_every=0)
    x, y = _data(shape, classes, batch * steps)
    x, y = x.to(device), y.to(device)
    pre = _preprocess(shape)
    mcfg = OmegaConf.create(row["model"])
    torch.manual_seed(0)
    # one model object for both runs, so torch.compile's cache is hit in the timed one
    model = build_model(mcfg, tuple(shape), classes)

    def epoch(n: int) -> None:
        train_model(
            model,
            NoDefense(classes, 1),
            x[:n],
            y[:n],
            cfg,
            preprocess=pre,
            seed=0,
            device=device,
            progress=False,
        )

    timed(lambda: epoch(min(len(x), batch * 4)), device)  # warm-up on 4 batches
    return timed(lambda: epoch(len(x)), device)


def part_e(
    settings_path: str | None,
    steps: int,
    device: torch.device,
    device_name: str,
    out,
    speed: dict,
) -> dict:
    """Measure every setting; returns the JSON report (device, rates) that `plan --rates` reads."""
    if settings_path:
        rows = json.loads(Path(settings_path).read_text())
    else:
        import tempfile

        from mia_bench.repro import plan
        from mia_bench.repro.targets import TARGETS

        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "settings.json")
            plan.write_settings(path, plan.settings(list(TARGETS)))
            rows = json.loads(Path(path).read_text())
    out(f"(e) training rate per setting of the paper targets: {steps} batches, no defense")
    out(f"    {'setting':36s} {'images/s':>10s} {'epoch s':>8s} {'hours of its volume':>20s}")
    rates = []
    for row in rows:
        sec = measure(row, steps, device, speed)
        rate = steps * int(row["batch_size"]) / sec
        hours = row["sample_epochs"] / rate / 3600
        rates.append({"key": row["key"], "images_per_s": rate, "seconds": sec, "steps": steps})
        out(f"    {row['key']:36s} {rate:10.0f} {sec:8.2f} {hours:20.2f}")
    used = trainer_cfg(1, speed)
    return {
        "device": device_name,
        "torch": torch.__version__,
        "speed": {"amp": used.amp, "compile": used.compile},
        "rates": rates,
    }
