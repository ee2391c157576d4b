"""Shared fixtures: configs composed with Hydra's compose API, sized to run in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")

# Small enough for seconds on 2 CPU cores, large enough for a visible membership leak.
FAST = [
    "dataset.n_samples=2000",
    "attack.nn.epochs=10",
    "trainer.epochs=8",
    "trainer.milestones=[6]",
    "progress=false",
]


# Applied after composition, only where the key exists (other datasets / attack lists).
SMALL = {"dataset.n_samples": 2000, "attack.nn.epochs": 10}


def compose_cfg(overrides: list[str] | None = None, tmp_path: Path | None = None) -> DictConfig:
    """The app's config as `python -m mia_bench <overrides>` would see it, shrunk by SMALL
    unless an override sets the same key."""
    overrides = list(overrides or [])
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[*FAST[2:], *overrides], return_hydra_config=False)
    for key, value in {"trainer.epochs": 8, "trainer.milestones": [6], **SMALL}.items():
        if OmegaConf.select(cfg, key) is not None and not any(
            o.startswith(key + "=") for o in overrides
        ):
            OmegaConf.update(cfg, key, value)
    if tmp_path is not None:
        with open_dict(cfg):
            cfg.paths.cache_dir = str(tmp_path / "cache")
            cfg.paths.output_dir = str(tmp_path / "out")
    return cfg


@pytest.fixture
def cfg_factory(tmp_path):
    return lambda overrides=None: compose_cfg(overrides, tmp_path)


def run_cli(args: list[str], cwd: Path, env_extra: dict | None = None, timeout: int = 300):
    """`python -m mia_bench ARGS` in a subprocess, with a private model cache."""
    env = {**os.environ, "MIA_BENCH_CACHE": str(cwd / "cache"), "MPLBACKEND": "Agg"}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "mia_bench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_thread():
    """For tests of tiny models and tensors: one intra-op thread is fastest, and on a shared
    2-core machine it is several times faster than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))
