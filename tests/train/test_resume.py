"""Crash and resume: a run killed mid-training continues from its last per-epoch checkpoint
and ends with exactly the weights and results of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import FAST
from omegaconf import OmegaConf

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses import build
from mia_bench.models.mlp import MLP
from mia_bench.train.loop import train_model
from mia_bench.train.resume import Checkpointer

TRAINER = OmegaConf.create(
    {
        "epochs": 7,
        "batch_size": 32,
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "milestones": [4],
        "gamma": 0.1,
        "eval_batch_size": 512,
    }
)
DEFENSES = {
    "relaxloss": {
        "name": "relaxloss",
        "_target_": "mia_bench.defenses.relaxloss.RelaxLoss",
        "alpha": 1.0,
        "upper": 1.0,
        "form": "paper",
    },
    "crl": OmegaConf.to_container(OmegaConf.load("conf/defense/crl.yaml")),
}


class Crash(Exception):
    pass


def _train(defense_name, ckpt, crash_at=None):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(200, 12, generator=g), torch.randint(0, 4, (200,), generator=g)
    # dropout draws from torch's global RNG: the checkpoint must restore it too
    model = MLP((12,), 4, hidden=[32, 16], dropout=0.3)
    defense = build(DEFENSES[defense_name], 4, model.feature_dim)
    if crash_at is not None:
        real = defense.loss

        def loss(logits, targets, *, epoch, **kw):
            if epoch == crash_at:
                raise Crash
            return real(logits, targets, epoch=epoch, **kw)

        defense.loss = loss
    log = train_model(
        model,
        defense,
        x,
        y,
        TRAINER,
        preprocess=Preprocess("tabular"),
        seed=3,
        device=torch.device("cpu"),
        progress=False,
        checkpointer=ckpt,
    )
    return model, defense, log


@pytest.mark.parametrize("defense_name", ["relaxloss", "crl"])
def test_resume_after_crash_equals_uninterrupted(tmp_path, defense_name):
    ref_model, ref_def, ref_log = _train(defense_name, None)
    ckpt = Checkpointer(tmp_path / "m.ckpt", every=2)
    with pytest.raises(Crash):
        _train(defense_name, ckpt, crash_at=5)  # dies in epoch 5 (odd: RelaxLoss parity)
    assert ckpt.path.exists()
    assert torch.load(ckpt.path, weights_only=True)["epochs_done"] == 4
    model, defense, log = _train(defense_name, ckpt)
    for a, b in zip(ref_model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(ref_def.state_dict().values(), defense.state_dict().values()):
        assert torch.equal(a, b)  # CRL's centers
    assert log.epoch_loss == ref_log.epoch_loss


def test_damaged_checkpoint_starts_over(tmp_path, caplog):
    ckpt = Checkpointer(tmp_path / "m.ckpt", every=2)
    ckpt.path.write_bytes(b"not a checkpoint")
    ref = _train("relaxloss", None)[0]
    model = _train("relaxloss", ckpt)[0]
    assert "unusable" in caplog.text
    for a, b in zip(ref.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def _cli(args, cwd, cache):
    env = {**os.environ, "MIA_BENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mia_bench", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_during_training_then_rerun_gives_same_results(tmp_path):
    args = [
        *FAST,
        "trainer.epochs=60",
        "trainer.milestones=[40]",
        "trainer.checkpoint_every=1",
        "defense=relaxloss",
    ]
    ref = _cli([*args, "hydra.run.dir=ref"], tmp_path, tmp_path / "cache_ref")
    assert ref.wait(timeout=600) == 0, ref.stderr.read()
    # Same command with its own cache, killed as soon as a training checkpoint exists.
    cache = tmp_path / "cache"
    p = _cli([*args, "hydra.run.dir=run"], tmp_path, cache)
    deadline = time.time() + 300
    while not list(cache.glob("models/*/*.ckpt")) and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert p.poll() is None, "the run ended before a checkpoint appeared"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "run" / "results.json").exists()
    again = _cli([*args, "hydra.run.dir=run"], tmp_path, cache)
    assert again.wait(timeout=600) == 0, again.stderr.read()
    assert "resuming" in again.stdout.read() + again.stderr.read()
    a = json.loads((tmp_path / "ref" / "results.json").read_text())
    b = json.loads((tmp_path / "run" / "results.json").read_text())
    assert a["attacks"] == b["attacks"] and a["target"] == b["target"]
    assert not list(cache.glob("models/*/*.ckpt"))  # spent checkpoints are removed
