"""Whole-pipeline parts of the benchmark (`python -m mia_bench.bench`):

(c) the RelaxLoss CIFAR-10 setting on CIFAR-shaped random data, timed by pipeline stage;
(d) the same protocol on a real dataset with `trainer.amp=bf16` and with `none`: the effect of
    bf16 on test accuracy and on every attack's AUC (only meaningful on CUDA, where amp acts).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, open_dict

from mia_bench.bench.common import CONF, MEAN, STD, random_images, trainer_cfg
from mia_bench.data import TensorData
from mia_bench.errors import ConfigError


def load_random_cifar(data_dir=None, n_samples: int = 60_000, seed: int = 0) -> TensorData:
    """CIFAR-10-shaped random data, part (c)'s dataset (its `_target_`)."""
    x, y = random_images(n_samples, seed)
    return TensorData("bench_random", x, y, 10, "image", MEAN, STD)


def _run(
    overrides: list[str],
    edit: Callable[[DictConfig], None],
    out_dir: Path,
    notes: list[str],
    attacks: list[str] | None = None,
    defense: str = "relaxloss",
) -> tuple[DictConfig, dict]:
    """(config, results) of one experiment run through the product's entry point
    (`mia_bench.experiment.run.run`), with the given attacks (default: every one of
    conf/attack) that the setting can run (the others are named in `notes`) and the given
    defense (RelaxLoss with alpha 1 by default; plain cross-entropy where RelaxLoss is
    missing). A setting an attack cannot run fails before training, so dropping it costs
    nothing."""
    from hydra import compose, initialize_config_dir

    from mia_bench.config import validate
    from mia_bench.experiment.run import run

    attacks = sorted(attacks or (p.stem for p in (CONF / "attack").glob("*.yaml")))
    if not (CONF / "defense" / f"{defense}.yaml").exists():
        notes.append(f"defense {defense} is not in conf/defense/: none")
        defense = "none"
    while True:
        over = [
            f"defense={defense}",
            f"attack=[{','.join(attacks)}]",
            "progress=false",
            "cache=false",
        ]
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("config", overrides=over + overrides)
        with open_dict(cfg):
            if defense == "relaxloss":
                cfg.defense.alpha = 1.0  # RelaxLoss App. C.3, CIFAR-10 ResNet20
            cfg.paths.cache_dir = None
            cfg.paths.output_dir = str(out_dir)
            edit(cfg)
        try:
            validate(cfg)
            return cfg, run(cfg, out_dir)
        except ConfigError as err:  # an attack this setting cannot run: drop it, say so
            name = err.key.split(".")[1] if err.key.startswith("attack.") else None
            if name not in attacks:
                raise
            attacks.remove(name)
            notes.append(f"attack {name} left out: {err}")


def _model_override(name: str) -> str:
    return f"model={name if (CONF / 'model' / f'{name}.yaml').exists() else 'small_cnn'}"


def part_c(
    model_name: str,
    epochs: int,
    pool: int,
    device: torch.device,
    out,
    speed: dict,
    attacks: list[str] | None = None,
    stack: int = 1,
) -> None:
    """The RelaxLoss setting on random data, wall time by pipeline stage."""
    notes: list[str] = []

    def edit(cfg: DictConfig) -> None:
        cfg.dataset = {
            "_target_": "mia_bench.bench.pipeline.load_random_cifar",
            "name": "bench_random",
            "kind": "image",
            "n_samples": pool,
        }
        cfg.trainer = trainer_cfg(epochs, speed, stack=stack)
        cfg.split.min_queries = 1  # a timing: small pools (tests, --size small) are fine

    with tempfile.TemporaryDirectory(prefix="mia_bench_bench_") as tmp:
        t0 = time.perf_counter()
        over = [_model_override(model_name), f"device={device}"]
        cfg, res = _run(over, edit, Path(tmp), notes, attacks)
        total = time.perf_counter() - t0
    out(
        f"(c) RelaxLoss setting on random data: {cfg.model.name}, defense {cfg.defense.name}, "
        f"{epochs} epochs, {res['target']['n_members']} members per model, "
        f"trainer.stack={stack}, attacks {sorted(cfg.attack)}"
    )
    for stage, s in res["timing"].items():
        out(f"    {stage + ':':16s}{s:9.1f} s")
    out(f"    {'total:':16s}{total:9.1f} s")
    for n in notes:
        out(f"    note: {n}")


def part_d(
    model_name: str,
    dataset: str,
    epochs: int,
    device: torch.device,
    out,
    speed: dict,
    attacks: list[str] | None = None,
    defense: str = "relaxloss",
    seed: int = 0,
) -> None:
    """Target + shadow trained with bf16 autocast and in fp32, same seed: accuracy and AUCs."""
    notes: list[str] = []
    rows = {}
    for amp in ["bf16", "none"]:

        def edit(cfg: DictConfig, amp=amp) -> None:
            cfg.trainer = trainer_cfg(epochs, speed, amp=amp)

        over = [_model_override(model_name), f"dataset={dataset}", f"device={device}"]
        over.append(f"seed={seed}")
        with tempfile.TemporaryDirectory(prefix="mia_bench_bench_") as tmp:
            res = _run(over, edit, Path(tmp), notes, attacks, defense)[1]
        rows[amp] = res
    first = rows["bf16"]
    out(
        f"(d) bf16 vs fp32: {first['config']['model']['name']} on {dataset}, {epochs} epochs, "
        f"defense {first['config']['defense']['name']}, seed {seed}"
    )
    attacks = sorted(first["attacks"])
    out("    amp   test_acc  train_s  " + "  ".join(f"{a}_auc" for a in attacks))
    for amp, res in rows.items():
        secs = res["timing"].get("train_target", 0.0) + res["timing"].get("train_shadows", 0.0)
        aucs = "  ".join(f"{res['attacks'][a]['auc']:.4f}" for a in attacks)
        out(f"    {amp:5s} {res['target']['test_acc']:8.4f} {secs:8.1f}  {aucs}")
    if device.type != "cuda":
        out("    note: on the CPU trainer.amp is ignored, so both rows are the same fp32 run")
    for n in sorted(set(notes)):
        out(f"    note: {n}")
