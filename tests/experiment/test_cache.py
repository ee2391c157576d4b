"""The content-addressed model cache: what the key covers, damaged entries, one training per
key under concurrent jobs, and shadows shared across sweep points."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import torch
from omegaconf import open_dict

from mia_bench.cache import ModelCache, spec_key
from mia_bench.experiment import run as pipeline

SPEC = {
    "dataset": {"name": "synthetic", "n_samples": 10},
    "train_indices": "ab",
    "model": {"name": "mlp"},
    "trainer": {"epochs": 3},
    "defense": {"name": "none"},
    "seed": 1,
    "role": "target",
}


def test_key_changes_with_every_part_of_the_spec():
    assert spec_key(SPEC) == spec_key(dict(reversed(list(SPEC.items()))))  # order-free
    changed = [
        {**SPEC, "dataset": {"name": "synthetic", "n_samples": 11}},
        {**SPEC, "train_indices": "ac"},
        {**SPEC, "model": {"name": "cnn"}},
        {**SPEC, "trainer": {"epochs": 4}},
        {**SPEC, "defense": {"name": "relaxloss", "alpha": 1}},
        {**SPEC, "seed": 2},
        {**SPEC, "role": "shadow0"},
    ]
    keys = {spec_key(s) for s in changed}
    assert len(keys) == len(changed) and spec_key(SPEC) not in keys


def _make():
    return {"model": {"w": torch.arange(3.0)}}, {"seconds": 0.0, "epoch_loss": [1.0]}


def test_hit_after_store_and_damaged_entry_is_rebuilt(tmp_path):
    cache = ModelCache(tmp_path)
    state, _, hit = cache.get_or_make(SPEC, _make)
    assert not hit and not list(Path(tmp_path).rglob("*.lock"))
    calls = []
    state2, meta, hit = cache.get_or_make(SPEC, lambda: calls.append(1) or _make())
    assert hit and not calls and torch.equal(state2["model"]["w"], state["model"]["w"])
    assert meta["epoch_loss"] == [1.0]
    pt = next(Path(tmp_path).rglob("*.pt"))
    pt.write_bytes(pt.read_bytes()[:-8] + b"garbage!")  # checksum no longer matches
    _, _, hit = cache.get_or_make(SPEC, _make)
    assert not hit


def _worker(root: str, log: str) -> None:
    def slow_make():
        with open(log, "a") as f:
            f.write("trained\n")
        time.sleep(0.5)
        return _make()

    ModelCache(root).get_or_make(SPEC, slow_make)


def test_concurrent_jobs_train_a_model_once(tmp_path):
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "c"), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    assert log.read_text() == "trained\n"
    assert not list((tmp_path / "c").rglob("*.lock"))  # released locks leave no file


def test_lock_files_are_removed_and_waiters_still_exclude_each_other(tmp_path):
    """Eight threads take one lock 20 times each; the lock file is removed at every release,
    yet never two holders at once (each checks it locked the file now at the path)."""
    import threading

    from mia_bench.io import locked

    path, inside, worst = tmp_path / "k.lock", [0], [0]

    def take():
        for _ in range(20):
            with locked(path):
                inside[0] += 1
                worst[0] = max(worst[0], inside[0])
                time.sleep(0.0005)
                inside[0] -= 1

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert worst[0] == 1
    assert not path.exists()


def test_shadows_are_shared_between_defenses(cfg_factory, tmp_path):
    """Two sweep points that differ only in the target's defense, with a non-adaptive attacker:
    the second trains its target but loads the shadow."""
    first = pipeline.run(cfg_factory(["shadow.defense=none", "attack=[loss]"]), tmp_path / "a")
    cfg = cfg_factory(["shadow.defense=none", "attack=[loss]"])
    with open_dict(cfg):  # another "defense": same objective, other name, hence other key
        cfg.defense = {"name": "none_renamed", "_target_": "mia_bench.defenses.none.NoDefense"}
    second = pipeline.run(cfg, tmp_path / "b")
    assert not first["models"]["shadow0"]["cache_hit"]
    assert second["models"]["shadow0"]["cache_hit"] and not second["models"]["target"]["cache_hit"]


def test_attack_outputs_are_cached_by_config_and_signals(cfg_factory, tmp_path):
    """A repeat refits no attack; another NN-attack setting refits only that attack."""
    overrides = ["attack=[loss,nn]", "attack.nn.epochs=3"]
    first = pipeline.run(cfg_factory(overrides), tmp_path / "a")
    again = pipeline.run(cfg_factory(overrides), tmp_path / "b")
    other = pipeline.run(cfg_factory(["attack=[loss,nn]", "attack.nn.epochs=4"]), tmp_path / "c")
    assert first["attack_cache_hits"] == {"loss": False, "nn": False}
    assert again["attack_cache_hits"] == {"loss": True, "nn": True}
    assert again["attacks"] == first["attacks"]
    assert other["attack_cache_hits"] == {"loss": True, "nn": False}


def test_speed_settings_reuse_trained_models_and_amp_does_not(cfg_factory, tmp_path):
    common = ["attack=[loss]", "trainer.epochs=2", "trainer.milestones=[1]"]
    first = pipeline.run(cfg_factory(common), tmp_path / "a")
    assert not any(m["cache_hit"] for m in first["models"].values())
    # how fast / how often saved, not what is learned: the same models from the cache
    speed = ["trainer.eval_batch_size=512", "trainer.channels_last=false"]
    speed += ["trainer.cudnn_benchmark=false", "trainer.checkpoint_every=1"]
    speed += ["trainer.compile=reduce-overhead", "trainer.stack=2"]
    again = pipeline.run(cfg_factory([*common, *speed]), tmp_path / "b")
    assert all(m["cache_hit"] for m in again["models"].values())
    # bf16 changes the arithmetic on CUDA, so it is a different model
    bf16 = pipeline.run(cfg_factory([*common, "trainer.amp=bf16"]), tmp_path / "c")
    assert not any(m["cache_hit"] for m in bf16["models"].values())
