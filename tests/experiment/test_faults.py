"""Faults and hostile input: damaged cache entries, divergence, full disks, unsafe pickles."""

import errno
import hashlib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, run_cli

from mia_bench import io as mio
from mia_bench.cache import ModelCache
from mia_bench.config import validate
from mia_bench.defenses.none import NoDefense
from mia_bench.errors import DivergenceError
from mia_bench.experiment import models
from mia_bench.experiment import run as pipeline


def _run(cfg, out):
    validate(cfg)
    return pipeline.run(cfg, out)


def _entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "models").glob("*/*.pt"))


def test_damaged_cache_entry_is_detected_and_rebuilt(cfg_factory, tmp_path, caplog):
    first = _run(cfg_factory(), tmp_path / "a")
    entries = _entries(tmp_path / "cache")
    assert len(entries) == 2  # target + shadow
    blob = entries[0].read_bytes()
    entries[0].write_bytes(blob[: len(blob) // 2])  # truncated
    entries[1].write_bytes(blob[:-10] + b"0123456789")  # altered (wrong checksum)
    second = _run(cfg_factory(), tmp_path / "b")
    assert not any(m["cache_hit"] for m in second["models"].values())
    assert "damaged" in caplog.text
    assert second["attacks"] == first["attacks"]  # rebuilt deterministically
    third = _run(cfg_factory(), tmp_path / "c")
    assert all(m["cache_hit"] for m in third["models"].values())


class _Evil:
    def __reduce__(self):  # would run os.system on unpickling if the loader allowed it
        return (os.system, ("echo pwned",))


def test_cache_refuses_pickled_code_even_with_valid_checksum(tmp_path):
    cache = ModelCache(tmp_path)
    key = "ab" * 32
    cache.store(key, {"w": torch.zeros(2)}, {"spec": {}})
    pt = next((tmp_path / "models").glob("*/*.pt"))
    # Swap the pickle inside torch's zip container for one that would call os.system, and
    # give it a matching checksum: only weights_only=True stands between it and execution.
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pt.read_bytes())) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps({"w": _Evil()}, protocol=2)
            zout.writestr(item, data)
    pt.write_bytes(out.getvalue())
    meta = pt.with_suffix(".json")
    m = json.loads(meta.read_text())
    m["sha256"] = hashlib.sha256(pt.read_bytes()).hexdigest()
    meta.write_text(json.dumps(m))
    assert cache.load(key) is None  # refused by weights_only=True; entry dropped for rebuild
    assert not pt.exists()


def test_divergence_names_defense_and_epoch(cfg_factory, tmp_path, monkeypatch):
    real = NoDefense.loss

    def nan_at_epoch_2(self, logits, targets, *, epoch, features=None):
        out = real(self, logits, targets, epoch=epoch, features=features)
        return out * float("nan") if epoch == 2 else out

    monkeypatch.setattr(NoDefense, "loss", nan_at_epoch_2)
    with pytest.raises(DivergenceError, match=r"epoch 2.*'name': 'none'"):
        _run(cfg_factory(["cache=false"]), tmp_path / "r")
    assert not (tmp_path / "r" / "results.json").exists()


def test_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "results.json"

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mio.os, "fsync", no_space)
    with pytest.raises(OSError):
        mio.atomic_write_json(target, {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_same_config_same_bytes_across_processes(tmp_path):
    outs = []
    for name in ["a", "b"]:
        r = run_cli([*FAST, "cache=false", f"hydra.run.dir={name}"], tmp_path)
        assert r.returncode == 0, r.stderr
        res = json.loads((tmp_path / name / "results.json").read_text())
        outs.append(json.dumps({k: res[k] for k in ["target", "attacks"]}, sort_keys=True))
        np.load(tmp_path / name / "scores.npz")
    assert outs[0] == outs[1]
    za, zb = np.load(tmp_path / "a" / "scores.npz"), np.load(tmp_path / "b" / "scores.npz")
    for k in za.files:
        np.testing.assert_array_equal(za[k], zb[k])


def test_no_shell_or_eval_in_the_package():
    src = Path(__file__).resolve().parents[2] / "mia_bench"
    for f in src.rglob("*.py"):
        text = f.read_text()
        assert "shell=True" not in text, f
        assert "eval(" not in text.replace(".eval(", "").replace("_eval(", ""), f


def test_rerun_in_same_folder_skips_complete_job(cfg_factory, tmp_path, monkeypatch):
    first = _run(cfg_factory(), tmp_path / "r")
    mtime = (tmp_path / "r" / "results.json").stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("a complete job must not be run again")

    monkeypatch.setattr(pipeline.Experiment, "prepare", boom)
    again = _run(cfg_factory(), tmp_path / "r")
    assert again == json.loads(json.dumps(first))
    assert (tmp_path / "r" / "results.json").stat().st_mtime_ns == mtime
    # a different config in the same folder is run, not skipped
    monkeypatch.undo()
    other = _run(cfg_factory(["seed=5"]), tmp_path / "r")
    assert other["config"]["seed"] == 5


@pytest.mark.parametrize(
    "override,key",
    [
        ("dataset.n_samples=abc", "dataset.n_samples"),
        ("dataset.flip_y=2.0", "dataset.flip_y"),
        ("attack.nn.epochs=-1", "attack.nn.epochs"),
        ("attack.nn.lr=0", "attack.nn.lr"),
        ("attack.loss.thresholds=sometimes", "attack.loss.thresholds"),
        ("defense=relaxloss defense.alpha=abc", "defense.alpha"),
        ("model=resnet20", "model"),
    ],
)
def test_bad_input_is_refused_before_training(cfg_factory, tmp_path, override, key, monkeypatch):
    from mia_bench.errors import ConfigError
    from mia_bench.train import loop as training

    def no_training(*a, **k):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(training, "train_model", no_training)
    monkeypatch.setattr(models, "train_model", no_training)
    cfg = cfg_factory(override.split())
    with pytest.raises(ConfigError) as err:
        _run(cfg, tmp_path / "r")
    assert err.value.key == key


def test_unwritable_output_folder_is_refused_before_training(cfg_factory, tmp_path):
    from mia_bench.errors import ConfigError

    blocker = tmp_path / "afile"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="hydra.run.dir"):
        _run(cfg_factory(), blocker / "run")
    assert not list((tmp_path / "cache").glob("models/*/*.pt"))  # nothing was trained
