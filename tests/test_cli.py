"""The command line as a user types it, in a subprocess."""

import json

from conftest import FAST, run_cli


def test_help_lists_groups(tmp_path):
    r = run_cli(["--help"], tmp_path)
    assert r.returncode == 0
    for group in ["dataset", "model", "defense", "attack", "trainer"]:
        assert group in r.stdout


def test_cfg_job_shows_overrides(tmp_path):
    r = run_cli(["--cfg", "job", "trainer.epochs=5", "seed=3", "attack=[loss,nn]"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "epochs: 5" in r.stdout and "seed: 3" in r.stdout
    assert "nn:" in r.stdout and "entropy:" not in r.stdout


def test_run_prints_table_and_writes_files(tmp_path):
    r = run_cli([*FAST, "hydra.run.dir=run"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "| loss |" in r.stdout and "results written to" in r.stdout
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["config"]["trainer"]["epochs"] == 8
    assert (tmp_path / "run" / ".hydra" / "config.yaml").exists()


def test_unknown_option_is_refused(tmp_path):
    r = run_cli(["defense=nosuchdefense"], tmp_path)
    assert r.returncode != 0
    assert "defense" in r.stderr and "nosuchdefense" in r.stderr


def test_wrong_type_is_refused_before_training(tmp_path):
    r = run_cli(["trainer.epochs=abc", "hydra.run.dir=run"], tmp_path)
    assert r.returncode == 2
    assert "trainer.epochs" in r.stderr and "integer" in r.stderr
    assert not (tmp_path / "run" / "results.json").exists()
