"""Real `-m` sweeps in a subprocess, with the basic and the joblib launcher: a failing job does
not lose the others, a repeated sweep trains no model, and the report reads the folder."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import run_cli

# Tiny: 400 members per model, 3 epochs; each job takes well under a second of training.
TINY = [
    "+experiment=sweep_embedded",
    "dataset.n_samples=2000",
    "attack.nn.epochs=10",
    "trainer.epochs=0,3",
    "seed=0,1",
]


def _results(folder):
    return json.loads((folder / "results.json").read_text())


def check_sweep(r, sweep) -> None:
    """Jobs 0, 1 (epochs=0) are refused by validation; jobs 2, 3 run. All are reported."""
    out = r.stdout + r.stderr
    assert r.returncode == 1, out  # failed jobs make the sweep's exit status non-zero
    for job in (0, 1):
        assert f"job {job} FAILED" in out and "trainer.epochs" in out
        err = json.loads((sweep / str(job) / "error.json").read_text())
        assert err["error"].startswith("ConfigError") and "trainer.epochs=0" in err["overrides"]
        assert not (sweep / str(job) / "results.json").exists()
    for job in (2, 3):
        assert f"job {job} done" in out
        res = _results(sweep / str(job))
        assert res["config"]["trainer"]["epochs"] == 3
        assert res["config"]["progress"] is False  # no tqdm bars inside multirun workers
    assert "sweep finished: 2 of 4 jobs have results" in out
    assert "  job 1 failed: ConfigError: trainer.epochs" in out
    assert f"report: python -m mia_bench.report {sweep.name}" in out


def test_basic_launcher_sweep_keeps_going_reuses_models_and_reports(tmp_path):
    # Batches of 2: Hydra's basic sweeper alone would stop after the failed first batch.
    r = run_cli(["-m", *TINY, "hydra.sweep.dir=sweep", "hydra.sweeper.max_batch_size=2"], tmp_path)
    check_sweep(r, tmp_path / "sweep")
    first = [_results(tmp_path / "sweep" / j)["models"] for j in ("2", "3")]
    assert not any(m["cache_hit"] for models in first for m in models.values())

    r = run_cli(["-m", *TINY, "hydra.sweep.dir=again"], tmp_path)
    check_sweep(r, tmp_path / "again")
    for j in ("2", "3"):
        models = _results(tmp_path / "again" / j)["models"]
        assert set(models) == {"target", "shadow0"}
        assert all(m["cache_hit"] for m in models.values()), models  # trains no model
        hits = _results(tmp_path / "again" / j)["attack_cache_hits"]
        assert len(hits) == 5 and all(hits.values()), hits  # and fits no attack model

    rep = subprocess.run(
        [sys.executable, "-m", "mia_bench.report", "sweep", "--no-pdf"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rep.returncode == 0, rep.stderr
    assert "failed: sweep/0" in rep.stderr
    md = (tmp_path / "sweep" / "summary.md").read_text()
    assert "| none | mlp | 2 |" in md and md.count("| failed |") == 2
    for name in ["summary.csv", "summary.tex", "privacy_utility.png", "roc.png", "loss_hist.png"]:
        assert (tmp_path / "sweep" / name).stat().st_size > 0


def test_joblib_launcher_sweep(tmp_path):
    r = run_cli(
        ["-m", *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.dir=sweep"],
        tmp_path,
    )
    assert "Joblib.Parallel(n_jobs=2" in r.stdout + r.stderr
    check_sweep(r, tmp_path / "sweep")
