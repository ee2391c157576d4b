"""Sweeps through Hydra launchers, GPU choice per job, and a model cache shared by processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from mia_bench.devices import job_device

TINY = ["dataset.n_samples=1000", "trainer.epochs=2", "trainer.milestones=[1]", "attack=[loss]"]


def _sweep(tmp_path: Path, launcher: list[str]) -> list[dict]:
    r = run_cli(
        ["-m", "seed=0,1", *launcher, "hydra.sweep.dir=sweep", *TINY], tmp_path, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    results = [
        json.loads((tmp_path / "sweep" / str(j) / "results.json").read_text()) for j in (0, 1)
    ]
    assert [res["config"]["seed"] for res in results] == [0, 1]
    for res in results:
        assert res["env"]["device"] == "cpu" and 0 < res["target"]["test_acc"] <= 1
        assert 0 <= res["attacks"]["loss"]["auc"] <= 1
    # different seeds, different splits: the jobs really ran their own settings
    assert results[0]["attacks"] != results[1]["attacks"]
    return results


def test_submitit_local_sweep_runs_two_jobs(tmp_path):
    _sweep(tmp_path, ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"])
    # submitit ran them as its own jobs (it keeps one log folder per job)
    assert len([p for p in (tmp_path / "sweep" / ".submitit").iterdir() if p.name.isdigit()]) == 2


@pytest.mark.slow
def test_joblib_sweep_runs_two_jobs(tmp_path):
    _sweep(tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])


def test_slurm_launcher_config_sets_gpu_partition_timeout_parallelism(tmp_path):
    r = run_cli(
        [
            "--cfg",
            "hydra",
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.timeout_min=30",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    launcher = r.stdout.split("  launcher:\n", 1)[1].split("\n  sweeper:", 1)[0]
    for line in [
        "_target_: hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
        "partition: gpu",
        "gpus_per_node: 1",
        "timeout_min: 30",
        "array_parallelism: 32",
    ]:
        assert f"    {line}\n" in launcher + "\n", line


@pytest.mark.parametrize(
    "device,job,n_gpus,expected",
    [
        ("auto", 5, 4, "cuda:1"),  # local launcher, 4 GPUs visible: round-robin
        ("auto", 3, 4, "cuda:3"),
        ("auto", 7, 1, "auto"),  # scheduler gave the job its one GPU
        ("auto", 2, 0, "auto"),  # no GPU: auto falls back to the CPU later
        ("auto", None, 4, "auto"),  # not a sweep job
        ("cpu", 1, 4, "cpu"),  # explicit choices are kept
        ("cuda:2", 1, 4, "cuda:2"),
    ],
)
def test_job_device(device, job, n_gpus, expected):
    assert job_device(device, job, n_gpus) == expected


# A worker process: waits for the start signal, then asks the cache for the models in argv.
WORKER = r"""
import json, os, sys, time
from pathlib import Path
import torch
from mia_bench.cache import ModelCache

root, start, roles = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(",")
while not start.exists():
    time.sleep(0.01)
cache = ModelCache(root)

def weights(role):
    (root / f"trained-{role}-{os.getpid()}").touch()
    time.sleep(1.0)  # long enough for the other process to be waiting meanwhile
    return {"w": torch.full((3,), float(len(role)))}, {"seconds": 1.0}

if len(roles) == 1:
    got = [cache.get_or_make({"role": roles[0]}, lambda: weights(roles[0]))]
else:
    got = cache.get_or_make_many(
        [{"role": r} for r in roles], lambda todo: [weights(roles[i]) for i in todo]
    )
print(json.dumps([[hit, state["w"].tolist()] for state, _, hit in got]))
"""


def _race(tmp_path: Path, role_lists: list[str]) -> list[list]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = tmp_path / "start"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(start), roles],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for roles in role_lists
    ]
    time.sleep(0.5)
    start.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    return outs


def test_two_processes_same_model_trained_once(tmp_path):
    a, b = _race(tmp_path, ["target", "target"])
    assert len(list(tmp_path.glob("trained-target-*"))) == 1
    assert sorted([a[0][0], b[0][0]]) == [False, True]  # one trained, the other loaded
    assert a[0][1] == b[0][1] == [6.0, 6.0, 6.0]


def test_overlapping_groups_in_two_processes_no_deadlock_each_trained_once(tmp_path):
    a, b = _race(tmp_path, ["shadow0,shadow1", "shadow1,shadow0"])
    for role in ["shadow0", "shadow1"]:
        assert len(list(tmp_path.glob(f"trained-{role}-*"))) == 1
    # the group that got the locks first trained both; the other loaded both
    assert sorted([[h for h, _ in a], [h for h, _ in b]]) == [[False, False], [True, True]]


def test_ray_launcher_composes_when_installed(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    r = run_cli(
        ["--cfg", "hydra", "hydra/launcher=ray", "+hydra.launcher.ray.remote.num_gpus=1"], tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert "RayLauncher" in r.stdout and "num_gpus: 1" in r.stdout
