"""Bad input, as a user types it: each case ends in one line `mia_bench: invalid setting
<key>: ...` and exit status 2 before any model is trained; values that are legal but useless
run with a warning that names the key. The CLI runs in this process (Hydra's own entry point)
so that the whole list costs seconds; `train_model` is replaced by a tripwire."""

from __future__ import annotations

import errno
import io
import logging
import os
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mia_bench import cli
from mia_bench.experiment import run as pipeline

CIFAR_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
# Tiny but valid: 1,000 synthetic samples give 200 target members and 200 non-members.
TINY = ["dataset.n_samples=1000", "trainer.epochs=1", "attack=[loss]", "progress=false"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo this-must-not-run",))


def _cifar_folder(root: Path, batch: bytes) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in CIFAR_FILES:
        (folder / name).write_bytes(batch)
    return root


def _truncated_pickle(root: Path) -> Path:
    good = pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 3]})
    return _cifar_folder(root, good[:100])


def _malicious_pickle(root: Path) -> Path:
    return _cifar_folder(root, pickle.dumps(_Evil()))


def _random_tar(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "cifar-10-python.tar.gz").write_bytes(np.random.default_rng(0).bytes(4096))
    return root


def _traversal_tar(root: Path) -> Path:
    root.mkdir(parents=True)
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return root


DATA = {
    "truncated": _truncated_pickle,
    "malicious": _malicious_pickle,
    "random_tar": _random_tar,
    "traversal_tar": _traversal_tar,
}
CIFAR = ["dataset=cifar10", "model=small_cnn", "dataset.verify=false"]


@pytest.fixture
def cli_run(tmp_path, monkeypatch, capsys):
    """cli.main(args) -> (exit status, stderr); training raises if it is ever reached."""

    def tripwire(*args, **kwargs):
        raise AssertionError("a model was trained before the bad setting was refused")

    monkeypatch.setattr("mia_bench.experiment.models.train_model", tripwire)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("MIA_BENCH_CACHE", str(tmp_path / "cache"))

    def run(args: list[str]) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["mia_bench", *args])
        code = 0
        try:
            cli.main()
        except SystemExit as exit_:
            code = exit_.code
        return code, capsys.readouterr().err

    return run


BAD = [
    # (overrides, key named in the message)
    (["trainer.lr=nan"], "trainer.lr"),
    (["trainer.lr=inf"], "trainer.lr"),
    (["trainer.momentum=nan"], "trainer.momentum"),
    (["trainer.weight_decay=inf"], "trainer.weight_decay"),
    (["trainer.gamma=nan"], "trainer.gamma"),
    (["dataset.n_samples=10"], "dataset.n_samples"),
    (["split.max_samples=60"], "split.max_samples"),
    (["dataset.n_classes=1"], "dataset.n_classes"),
    (["seed=100000000000000000000000"], "seed"),
    (["trainer.epochs=1000000000"], "trainer.epochs"),
    (["trainer.amp=fp8"], "trainer.amp"),
    # every group's settings, through the one instantiate helper and the shared checks
    (["attack=[nn]", "attack.nn.lr=-1"], "attack.nn.lr"),
    (["attack=[nn]", "attack.nn.input=raw"], "attack.nn.input"),
    (["attack=[nn]", "+attack.nn.lrr=0.1"], "attack.nn.lrr"),
    (["split.shuffle=maybe"], "split.shuffle"),
    (["split=crl", "split.reference_fraction=1"], "split.reference_fraction"),
    (["defense=relaxloss", "+defense.alhpa=1"], "defense.alhpa"),
    (["+model.depthh=3"], "model.depthh"),
    (["audit=canaries", "audit.copies=0"], "audit.copies"),
    ([*CIFAR, "data=truncated"], "paths.data_dir"),
    ([*CIFAR, "data=malicious"], "paths.data_dir"),
    ([*CIFAR, "data=random_tar"], "paths.data_dir"),
    ([*CIFAR, "data=traversal_tar"], "paths.data_dir"),
    (["hydra.run.dir=FILE/run"], "hydra.run.dir"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_input_is_one_line_and_exit_2_before_training(overrides, key, cli_run, tmp_path):
    args = [*TINY] if "dataset=cifar10" not in overrides else TINY[1:]
    if any(o.startswith("attack=") for o in overrides):
        args.remove("attack=[loss]")
    for o in overrides:
        if o.startswith("data="):
            args.append(f"paths.data_dir={DATA[o[5:]](tmp_path / 'data')}")
        elif o == "hydra.run.dir=FILE/run":
            (tmp_path / "a_file").write_text("")
            args.append(f"hydra.run.dir={tmp_path / 'a_file' / 'run'}")
        else:
            args.append(o)
    if not any(a.startswith("hydra.run.dir=") for a in args):
        args.append(f"hydra.run.dir={tmp_path / 'run'}")
    code, err = cli_run(args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mia_bench: invalid setting {key}: "), lines[0]
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_one_line(cli_run, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, err = cli_run([*TINY, f"hydra.run.dir={ro / 'run'}"])
    finally:
        ro.chmod(0o700)
    assert code == 2
    assert err.strip().startswith("mia_bench: invalid setting hydra.run.dir: ")
    assert "not writable" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("folder", "key"), [("run", "hydra.run.dir"), ("cache", "paths.cache_dir")]
)
def test_full_disk_is_one_line_naming_the_folder(folder, key, cli_run, tmp_path, monkeypatch):
    """ENOSPC while writing into the run folder or the model cache: one line with the folder
    and the setting that moves it; the atomic write leaves no partial file."""
    real_replace = os.replace

    def replace(src, dst):
        if (tmp_path / folder) in Path(dst).parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr("mia_bench.experiment.models.train_model", _untrained)
    monkeypatch.setattr("mia_bench.io.os.replace", replace)
    code, err = cli_run([*TINY, f"hydra.run.dir={tmp_path / 'run'}"])
    monkeypatch.setattr("mia_bench.io.os.replace", real_replace)
    lines = err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mia_bench: no space left on device writing to {tmp_path / folder}")
    assert f"{key}=..." in lines[0]
    assert not list((tmp_path / folder).rglob("*.tmp"))


def _untrained(model, defense, x, y, cfg, **kwargs):
    from mia_bench.train.loop import TrainLog

    return TrainLog(epoch_loss=[0.0], seconds=0.0)


WARN = [
    (["trainer.lr=1e30"], "trainer.lr=1e+30"),
    (["trainer.batch_size=100000000"], "trainer.batch_size=100000000"),
    (["split.max_samples=100000000"], "split.max_samples=100000000"),
]


@pytest.mark.parametrize(("overrides", "text"), WARN, ids=[" ".join(o) for o, _ in WARN])
def test_legal_but_useless_value_warns_and_runs(overrides, text, cfg_factory, tmp_path, caplog):
    from mia_bench.config import validate

    cfg = cfg_factory([*TINY, *overrides])
    with caplog.at_level(logging.WARNING, logger="mia_bench"):
        validate(cfg)
        pipeline.Experiment(cfg, tmp_path / "out").prepare()
    assert any(text in r.getMessage() for r in caplog.records), caplog.text
