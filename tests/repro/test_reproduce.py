"""The paper targets (`make table-*`): every job of every target composes to a valid config,
the driver builds the commands the Makefile documents, and targets run end to end on fake
files at smoke scale, on the CPU, without downloads."""

from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, ROOT
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from mia_bench.config import validate
from mia_bench.repro import reproduce
from mia_bench.repro.targets import TARGETS


def _args(*extra: str):
    return reproduce.parse_args(["table-relaxloss", *extra])


def _jobs(cmd: list[str]) -> list[list[str]]:
    """Jobs of a `-m` command (without Hydra's own keys) that together take every value of
    every swept key: all keys at their first value, then each other value of each key with
    the rest at their first (the full product is left to Hydra)."""
    overrides = [o for o in cmd[4:] if not o.startswith("hydra")]  # after `-m mia_bench -m`
    parsed = OverridesParser.create().parse_overrides(overrides)
    values = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [o.input_line]
        for o in parsed
    ]
    # Hydra composes the sweep's own config from the overrides that sweep nothing, before any
    # job (so a key that only a job's experiment brings needs `++`).
    jobs = [[o.input_line for o in parsed if not o.is_sweep_override()]]
    first = [v[0] for v in values]
    jobs.append(first)
    for i, vs in enumerate(values):
        jobs += [[*first[:i], v, *first[i + 1 :]] for v in vs[1:]]
    return jobs


def test_merge_replaces_a_key_in_place_and_keeps_the_order():
    got = reproduce.merge(
        ["+experiment=a,b", "defense=none", "attack=[loss,nn]"],
        ["seed=0,1"],
        ["attack=[loss]", "++dataset.verify=false"],
    )
    assert got == [
        "+experiment=a,b",
        "defense=none",
        "attack=[loss]",
        "seed=0,1",
        "++dataset.verify=false",
    ]
    assert reproduce.key_of("++dataset.verify=false") == "dataset.verify"
    assert reproduce.key_of("hydra/launcher=joblib") == "hydra/launcher"


def test_full_scale_command_adds_seeds_launcher_folder_and_user_overrides_last():
    args = _args("--launcher", "joblib", "--jobs", "4", "--seeds", "0,1", "attack=[loss]")
    p = reproduce.plan(TARGETS["table-relaxloss"], args)
    cmd = reproduce.sweep_command(p, TARGETS["table-relaxloss"].sweeps[0], args)
    assert cmd[1:4] == ["-m", "mia_bench", "-m"]
    assert "seed=0,1" in cmd and "hydra/launcher=joblib" in cmd and "hydra.launcher.n_jobs=4" in cmd
    assert "hydra.sweep.dir=outputs/tables/table-relaxloss/seeds-0-1/relaxloss" in cmd
    assert cmd.count("attack=[loss]") == 1 and not any("grad_x" in c for c in cmd)
    assert p.out == Path("experiments/table-relaxloss")
    assert not any(c.startswith(("paths.", "trainer.epochs")) for c in cmd)  # the papers' recipe


def test_smoke_command_reads_fake_files_with_one_epoch_in_its_own_folders(tmp_path):
    args = reproduce.parse_args(
        ["figure-relaxloss-tradeoff", "--scale", "smoke", "--root", str(tmp_path / "s p")]
    )
    t = TARGETS["figure-relaxloss-tradeoff"]
    p = reproduce.plan(t, args)
    es = next(s for s in t.sweeps if s.name == "early_stopping")
    cmd = reproduce.sweep_command(p, es, args)
    quoted = f"'{tmp_path / 's p' / 'data'}'"  # a space in the path: quoted for Hydra
    assert f"paths.data_dir={quoted}" in cmd and "++dataset.verify=false" in cmd
    assert "trainer.epochs=1" in cmd and "attack.nn.epochs=2" in cmd
    assert "defense.epochs=[1]" in cmd  # the checkpoints of the full run do not fit in 1 epoch
    assert not any("lira" in c for c in cmd)  # only attacks the sweep runs are shrunk
    assert p.out == tmp_path / "s p" / "figure-relaxloss-tradeoff"
    crl = TARGETS["table-crl-svhn"]
    cmd = reproduce.sweep_command(reproduce.plan(crl, args), crl.sweeps[0], args)
    assert "shadow.count=2" in cmd  # five shadows in the paper, two at smoke scale


def test_smoke_keeps_the_ends_of_a_defense_parameter_sweep_only():
    assert reproduce.thin("defense.alpha=0.5,1.0,1.5,2.0") == "defense.alpha=0.5,2.0"
    assert reproduce.thin("defense.epochs=[25,50,75]") == "defense.epochs=[25,50,75]"  # one list
    assert reproduce.thin("defense.x=[1,2],[3],[4,5]") == "defense.x=[1,2],[4,5]"
    assert reproduce.thin("defense=none,relaxloss,crl") == "defense=none,relaxloss,crl"
    assert reproduce.thin("seed=0,1,2") == "seed=0,1,2"


def test_bad_target_seeds_or_launcher_are_refused():
    with pytest.raises(SystemExit):
        reproduce.parse_args(["table-nope"])
    with pytest.raises(SystemExit):
        reproduce.parse_args(["table-relaxloss", "--seeds", "0;1"])
    with pytest.raises(SystemExit):
        reproduce.parse_args(["table-relaxloss", "--launcher", "mpi"])


@pytest.mark.parametrize("scale", ["full", "smoke"])
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_job_of_every_target_composes_to_a_valid_config(name, scale, tmp_path):
    target = TARGETS[name]
    args = reproduce.parse_args([name, "--scale", scale, "--root", str(tmp_path)])
    p = reproduce.plan(target, args)
    n = 0
    composed: dict[tuple[str, ...], DictConfig] = {}
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        for sweep in target.sweeps:
            for job in _jobs(reproduce.sweep_command(p, sweep, args)):
                # jobs that differ in the seed alone compose the same groups: compose once, then
                # set the seed (a plain key no group reads) and validate each variant
                rest = tuple(o for o in job if not o.startswith("seed="))
                seeds = [int(o.split("=", 1)[1]) for o in job if o.startswith("seed=")]
                if rest not in composed:
                    composed[rest] = compose("config", overrides=job)
                    cfg = composed[rest]
                else:
                    cfg = copy.deepcopy(composed[rest])
                    if seeds:
                        cfg.seed = seeds[0]
                validate(cfg)
                n += 1
    assert n >= len(target.sweeps) * 3  # three seeds at least


def test_relaxloss_rows_get_the_papers_alpha_from_the_defense_spec():
    """Each defended row of experiments/table-relaxloss/paper.csv (Table 4's alpha) is what
    `+experiment=<row> defense=relaxloss` composes to, upper and form included."""
    rows = list(csv.DictReader((ROOT / "experiments/table-relaxloss/paper.csv").open()))
    sweep = TARGETS["table-relaxloss"].sweeps[0].overrides[0]
    composed = {}
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        for exp in sweep.split("=", 1)[1].split(","):
            cfg = compose("config", overrides=[f"+experiment={exp}", "defense=relaxloss"])
            composed[(cfg.dataset.name, cfg.model.name)] = cfg.defense
    defended = [r for r in rows if r["defense"] == "relaxloss"]
    assert len(defended) == 7
    for r in defended:
        d = composed[(r["dataset"], r["model"])]
        assert d.alpha == float(r["alpha"]), r
        if r["dataset"] in ("texas100", "purchase100"):
            assert (d.form, d.upper) == (
                "tabular",
                {"texas100": 0.1, "purchase100": 0.3}[r["dataset"]],
            )
        else:
            assert d.form == ("image" if r["dataset"].startswith("cifar") else "paper")


def test_make_passes_scale_seeds_launcher_and_args(tmp_path):
    r = subprocess.run(
        [
            "make",
            "-n",
            "--no-print-directory",  # under `make test` the nested make would announce itself
            "-o",
            "/nonexistent",
            "STAMP=/nonexistent",
            "table-crl-svhn",
            "SCALE=smoke",
            "SEEDS=0,1",
            "LAUNCHER=slurm",
            "ARGS=hydra.launcher.partition=gpu",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "mia_bench.repro.reproduce --scale smoke --seeds 0,1 --launcher slurm" in r.stdout
    assert r.stdout.rstrip().endswith("table-crl-svhn hydra.launcher.partition=gpu")


def _smoke(tmp_path: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "mia_bench.repro.reproduce", *args, "--scale", "smoke"]
        + ["--root", str(tmp_path), "--repo", str(ROOT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_smoke_table_relaxloss_on_one_setting_end_to_end(tmp_path):
    """The RelaxLoss table restricted to Purchase100 (its cheapest row), two seeds: fake files
    in the published format, both sweeps' runs, report, ours.csv and comparison.md."""
    r = _smoke(
        tmp_path, "table-relaxloss", "--seeds", "0,1", "+experiment=relaxloss_purchase100_mlp"
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path / "table-relaxloss"
    assert json.loads((tmp_path / "data" / "FAKE_DATA.json").read_text())["n"] == 200
    rows = list(csv.DictReader((out / "ours.csv").open()))
    assert {(r["defense"], r["n"]) for r in rows} == {("none", "2"), ("relaxloss", "2")}
    relax = next(r for r in rows if r["defense"] == "relaxloss")
    assert relax["defense.alpha"] == "0.8" and relax["model"] == "mlp_purchase"
    md = (out / "comparison.md").read_text()
    assert "**Smoke scale**" in md and "### purchase100 / mlp_purchase" in md
    assert "| train acc (%) | 100 |" in md and "| 89.1 |" in md  # the paper's Table 4 cells
    assert "grad_w_l2 attack acc (%)" in md
    for name in ("summary.md", "summary.csv", "paper_vs_ours.png", "roc.png"):
        assert (out / name).exists(), name


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_smoke_every_target_end_to_end(name, tmp_path):
    r = _smoke(tmp_path, name, "--seeds", "0", "--launcher", "joblib", "--jobs", "2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path / name
    assert (out / "ours.csv").exists() and (out / "comparison.md").exists()
    assert list(out.glob("privacy_utility*.png"))
    md = (out / "comparison.md").read_text()
    assert "not run" not in md  # every paper row of the target has runs


def test_compact_png_keeps_the_picture_in_a_palette(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.linspace(0, 1, 50) ** 2, marker="o", label="curve")
    ax.legend()
    path = tmp_path / "f.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    before = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    size = path.stat().st_size
    reproduce.compact_png(path)
    with Image.open(path) as im:
        assert im.mode == "P" and im.size == (before.shape[1], before.shape[0])
        after = np.asarray(im.convert("RGB"), dtype=int)
    assert path.stat().st_size < size
    assert np.abs(after - before).mean() < 2  # the same picture, to a colour step


def test_fake_data_is_written_once_per_size(tmp_path):
    from mia_bench.repro import fakedata

    assert fakedata.ensure(tmp_path, 20) is True
    assert fakedata.ensure(tmp_path, 20) is False  # already there
    assert fakedata.ensure(tmp_path, 30) is True  # another size: written again
    assert (tmp_path / "cifar-10-batches-py" / "test_batch").exists()
    assert (tmp_path / "texas100" / "dataset_texas.tgz").exists()
