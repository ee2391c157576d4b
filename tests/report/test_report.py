"""The report on hand-written results.json files: grouping, mean/std, failed and missing jobs,
every output file, idempotence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from mia_bench.report import cli as report
from mia_bench.report.aggregate import collect
from mia_bench.report.privacy_utility import curves, no_defense
from mia_bench.report.runs import find_jobs
from mia_bench.report.tables import tex_escape

OUTPUTS = [
    "summary.csv",
    "summary.md",
    "summary.tex",
    "privacy_utility.png",
    "privacy_utility.pdf",
    "roc.png",
    "roc.pdf",
    "loss_hist.png",
    "loss_hist.pdf",
]


def write_run(
    folder: Path,
    *,
    seed: int,
    test_acc: float,
    aucs: dict[str, float],
    defense: str = "none",
    params: dict | None = None,
    train_acc: float = 1.0,
    epochs: int = 60,
    shadow: str = "same",
    scores: bool = True,
) -> Path:
    """A results.json with the shape pipeline.py writes (only the keys the report reads)."""
    params = params or {}
    folder.mkdir(parents=True)
    (folder / ".hydra").mkdir()
    overrides = [
        f"seed={seed}",
        f"defense={defense}",
        *[f"defense.{k}={v}" for k, v in params.items()],
    ]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    results = {
        "config": {
            "dataset": {"name": "synthetic", "n_samples": 10000},
            "model": {"name": "mlp", "hidden": [256, 128]},
            "defense": {"name": defense, "_target_": f"x.{defense}", **params},
            "trainer": {"epochs": epochs, "lr": 0.05},
            "shadow": {"defense": shadow, "count": 1},
            "seed": seed,
            "device": "auto",
            "paths": {"output_dir": str(folder)},
        },
        "target": {"train_acc": train_acc, "test_acc": test_acc},
        "defense": {"name": defense, **params},
        "shadow": {"defense": shadow, "count": 1, "adaptive": shadow == "same"},
        "attacks": {
            a: {
                "auc": v,
                "acc": v,
                "tpr_at_0.1%fpr": None,
                "tpr_at_1%fpr": 0.01,
                "advantage": 2 * v - 1,
            }
            for a, v in aucs.items()
        },
        "models": {
            "target": {"cache_hit": False, "seconds": 1.0},
            "shadow0": {"cache_hit": True, "seconds": 0.1},
        },
        "timing": {"train_target": 1.0, "attacks": 0.5},
    }
    (folder / "results.json").write_text(json.dumps(results))
    if scores:
        rng = np.random.default_rng(seed)
        member = np.r_[np.ones(200, bool), np.zeros(100, bool)]
        loss = np.where(member, rng.exponential(0.3, 300), rng.exponential(1.5, 300))
        np.savez(
            folder / "scores.npz",
            member=member,
            target_loss=loss,
            **{a: -loss + rng.normal(0, 0.1, 300) for a in aucs},
        )
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """none x 2 seeds, relaxloss alpha 0.5 x 2 seeds, relaxloss alpha 1.0 x 1 seed, plus a
    failed job, one that stopped early, and one with a damaged results.json."""
    s = tmp_path / "sweep"
    relax = {"defense": "relaxloss"}
    # job: seed, test acc, loss AUC, m_entropy AUC, other write_run keys
    for job, seed, test_acc, loss, m_ent, extra in [
        ("0", 0, 0.70, 0.80, 0.90, {}),
        ("1", 1, 0.72, 0.84, 0.86, {}),
        ("2", 0, 0.68, 0.60, 0.62, {**relax, "params": {"alpha": 0.5}, "train_acc": 0.9}),
        ("3", 1, 0.66, 0.56, 0.58, {**relax, "params": {"alpha": 0.5}, "train_acc": 0.8}),
        ("10", 0, 0.60, 0.52, 0.53, {**relax, "params": {"alpha": 1.0}}),
    ]:
        aucs = {"loss": loss, "m_entropy": m_ent}
        write_run(s / job, seed=seed, test_acc=test_acc, aucs=aucs, **extra)
    (s / "4" / ".hydra").mkdir(parents=True)
    (s / "4" / "error.json").write_text(json.dumps({"error": "DivergenceError: loss is nan"}))
    (s / "5" / ".hydra").mkdir(parents=True)
    (s / "6" / ".hydra").mkdir(parents=True)
    (s / "6" / "results.json").write_text("{")
    return s


def test_groups_and_mean_std_by_hand(sweep):
    c = collect([sweep])
    assert len(c.runs) == 5
    assert [g.approach for g in c.groups] == [
        "none",
        "relaxloss (alpha=0.5)",
        "relaxloss (alpha=1)",
    ]
    none, rl05, rl1 = c.groups
    # mean(0.70, 0.72) = 0.71; sample std = sqrt(2 * 0.01^2 / (2 - 1)) = 0.014142
    assert none.mean("test_acc") == pytest.approx(0.71)
    assert none.std("test_acc") == pytest.approx(0.0141421, abs=1e-6)
    # loss AUC 0.80, 0.84 -> 0.82 +- sqrt(2 * 0.02^2) = 0.028284
    assert none.mean("loss.auc") == pytest.approx(0.82)
    assert none.std("loss.auc") == pytest.approx(0.0282843, abs=1e-6)
    assert rl05.mean("train_acc") == pytest.approx(0.85) and rl05.std("train_acc") == pytest.approx(
        0.0707107, abs=1e-6
    )
    assert rl1.n == 1 and rl1.std("test_acc") is None
    assert c.attacks == ["loss", "m_entropy"] and c.param_cols == ["defense.alpha"]
    # the output folder differs in every run and must not split the groups
    assert c.settings == []
    assert {(Path(j.path).name, j.status) for j in c.problems} == {
        ("4", "failed"),
        ("5", "incomplete"),
        ("6", "unreadable"),
    }


def test_report_writes_every_file_and_is_idempotent(sweep, capsys):
    assert report.main([str(sweep)]) == 0
    err = capsys.readouterr().err
    assert "failed" in err and "DivergenceError" in err and "incomplete" in err
    first = {name: (sweep / name).read_bytes() for name in OUTPUTS}
    assert all(len(b) > 0 for b in first.values())

    md = first["summary.md"].decode()
    assert "| none | mlp | 2 | 100.0 ± 0.0 | 71.0 ± 1.4 | 0.820 ± 0.028 | 0.880 ± 0.028 |" in md
    assert "| relaxloss (alpha=0.5) | mlp | 2 | 85.0 ± 7.1 | 67.0 ± 1.4 | 0.580 ± 0.028 |" in md
    assert "| relaxloss (alpha=1) | mlp | 1 | 100.0 | 60.0 | 0.520 | 0.530 |" in md
    assert "| failed |" in md and "DivergenceError" in md and "| incomplete |" in md
    tex = first["summary.tex"].decode()
    assert "71.0 $\\pm$ 1.4" in tex and "m\\_entropy AUC" in tex and "\\toprule" in tex

    rows = list(csv.DictReader(first["summary.csv"].decode().splitlines()))
    assert len(rows) == 5
    assert [r["defense.alpha"] for r in rows] == ["", "", "0.5", "0.5", "1.0"]
    assert (
        rows[0]["loss.auc"] == "0.8" and rows[0]["cache_hits"] == "1" and rows[0]["models"] == "2"
    )

    assert report.main([str(sweep)]) == 0
    for name in ["summary.csv", "summary.md", "summary.tex", "privacy_utility.pdf"]:
        assert (sweep / name).read_bytes() == first[name], name


def test_missing_jobs_from_multirun_yaml(tmp_path):
    s = tmp_path / "sw"
    write_run(s / "0", seed=0, test_acc=0.7, aucs={"loss": 0.8})
    (s / "multirun.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "sweeper": {
                        "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                        "params": {"defense.alpha": "0.5,1.0"},
                    },
                    "overrides": {"task": ["seed=0,1", "defense=none"]},
                }
            }
        )
    )
    # job 0 of the rebuilt sweep has overrides {alpha=0.5, seed=0, defense=none}; ours differ
    (s / "0" / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump(["defense.alpha=0.5", "seed=0", "defense=none"])
    )
    missing = [j for j in find_jobs([s]) if j.status == "missing"]
    assert [j.overrides for j in missing] == [
        ["defense.alpha=0.5", "seed=1", "defense=none"],
        ["defense.alpha=1.0", "seed=0", "defense=none"],
        ["defense.alpha=1.0", "seed=1", "defense=none"],
    ]
    assert report.main([str(s), "--no-pdf"]) == 0
    assert "| missing |" in (s / "summary.md").read_text()


def test_settings_that_vary_split_rows_and_duplicates_count_once(tmp_path):
    write_run(tmp_path / "a" / "0", seed=0, test_acc=0.60, aucs={"loss": 0.6}, epochs=10)
    write_run(tmp_path / "a" / "1", seed=0, test_acc=0.70, aucs={"loss": 0.8}, epochs=60)
    write_run(tmp_path / "b" / "0", seed=0, test_acc=0.70, aucs={"loss": 0.8}, epochs=60)
    c = collect([tmp_path / "a", tmp_path / "b"])
    assert c.settings == ["trainer.epochs"]
    assert [(g.setting["trainer.epochs"], g.n) for g in c.groups] == [(10, 1), (60, 1)]
    assert [j.status for j in c.problems] == ["duplicate"]


def test_curves_one_line_per_defense_across_its_parameter(tmp_path):
    for i, (alpha, beta, acc, auc) in enumerate(
        [(1.0, 1, 0.60, 0.55), (0.5, 1, 0.65, 0.60), (0.5, 2, 0.66, 0.62), (1.0, 2, 0.61, 0.56)]
    ):
        write_run(
            tmp_path / f"c{i}",
            seed=0,
            test_acc=acc,
            aucs={"loss": auc},
            defense="ccl",
            params={"alpha": alpha, "beta": beta, "variant": "v1"},
            scores=False,
        )
    write_run(tmp_path / "n0", seed=0, test_acc=0.70, aucs={"loss": 0.8}, scores=False)
    c = collect([tmp_path])
    lines = curves(c.groups, c.settings)
    assert [(cv.label, cv.swept) for cv in lines] == [
        ("none", None),
        ("ccl (beta=1)", "defense.alpha"),
        ("ccl (beta=2)", "defense.alpha"),
    ]
    assert [g.params["alpha"] for g in lines[1].points] == [0.5, 1.0]
    assert no_defense(c.groups).defense == "none"
    assert report.main([str(tmp_path), "--no-pdf"]) == 0
    # no scores.npz anywhere: the tables and the privacy-utility plot, no ROC / histograms
    assert (tmp_path / "privacy_utility.png").exists() and not (tmp_path / "roc.png").exists()


def test_no_defense_is_the_best_accuracy_of_a_swept_none(tmp_path):
    for i, (epochs, acc) in enumerate([(5, 0.60), (20, 0.72), (60, 0.70)]):
        write_run(
            tmp_path / str(i),
            seed=0,
            test_acc=acc,
            aucs={"loss": 0.6 + 0.05 * i},
            epochs=epochs,
            scores=False,
        )
    c = collect([tmp_path])
    assert no_defense(c.groups).setting == {"trainer.epochs": 20}
    assert [cv.swept for cv in curves(c.groups, c.settings)] == ["trainer.epochs"]


def test_select_limits_the_per_run_plots(sweep):
    c = collect([sweep])
    assert [g.approach for g in report.choose(c, ["defense.alpha=0.5"], 6)] == [
        "relaxloss (alpha=0.5)"
    ]
    # over the limit: the undefended setting, then the others evenly spaced from the first
    assert [g.approach for g in report.choose(c, [], 2)] == ["none", "relaxloss (alpha=0.5)"]
    assert len(report.choose(c, ["defense=relaxloss"], 1)) == 1


def test_run_folder_report_goes_to_a_subfolder_and_bad_input_is_refused(tmp_path, capsys):
    run = write_run(tmp_path / "run", seed=0, test_acc=0.7, aucs={"loss": 0.8})
    (run / "summary.md").write_text("the run's own table")
    assert report.main([str(run), "--no-pdf"]) == 0
    assert (run / "summary.md").read_text() == "the run's own table"
    assert (run / "report" / "summary.md").exists() and (run / "report" / "roc.png").exists()
    assert report.main([str(tmp_path / "nope")]) == 2
    (tmp_path / "empty").mkdir()
    assert report.main([str(tmp_path / "empty")]) == 1
    assert "no completed run" in capsys.readouterr().err


def test_tex_escape():
    assert tex_escape("a_b & 5% #1 {x}") == r"a\_b \& 5\% \#1 \{x\}"


def test_roc_curves_of_many_runs_stay_distinct(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from mia_bench.report.score_plots import roc_curves

    rng = np.random.default_rng(0)
    runs = []
    for i in range(25):
        member = np.arange(200) < 100
        path = tmp_path / f"s{i}.npz"
        np.savez(path, member=member, loss=rng.normal(size=200) + member * 0.05 * i)
        runs.append((f"run {i}", path))
    fig = roc_curves(runs, ["loss"], "t")
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("run ")]
    assert len(lines) == 25
    styles = {(ln.get_color(), ln.get_linestyle()) for ln in lines}
    assert len(styles) == 25  # 10 colours alone would repeat from the 11th run on


def test_roc_axes_start_at_one_over_the_queries_and_legends_carry_the_numbers(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from mia_bench.metrics import auc, tpr_at_fpr
    from mia_bench.report.score_plots import roc_curves

    rng = np.random.default_rng(1)
    member = np.arange(700) < 300  # 300 members, 400 non-members
    runs = []
    for i in range(2):
        path = tmp_path / f"s{i}.npz"
        score = rng.normal(size=700) + member * (0.5 + i)
        np.savez(path, member=member, loss=score)
        runs.append((f"run {i}", path, score))
    fig = roc_curves([(label, path) for label, path, _ in runs], ["loss"], "t")
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((1 / 400, 1))
    assert ax.get_ylim() == pytest.approx((1 / 300, 1))
    assert any(ln.get_label().startswith("chance") for ln in ax.get_lines())
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    for (_, _, score), text in zip(runs, texts):
        want = f"AUC {auc(score, member):.3f}, TPR@1%FPR {tpr_at_fpr(score, member, 0.01):.3f}"
        assert text == want


def test_loss_histograms_share_one_y_axis(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from mia_bench.report.score_plots import loss_histograms

    rng = np.random.default_rng(2)
    runs = []
    for i, spread in enumerate([0.1, 3.0]):  # very different peaks
        path = tmp_path / f"s{i}.npz"
        member = np.arange(400) < 200
        np.savez(path, member=member, target_loss=np.abs(rng.normal(0, spread, 400)))
        runs.append((f"run {i}", path, None))
    fig = loss_histograms(runs, "t")
    a, b = fig.axes[:2]
    assert a.get_ylim() == b.get_ylim()


def _pu_runs(folder: Path, defenses: list[str], with_none: bool) -> list:
    for i, d in enumerate(defenses):
        write_run(
            folder / d,
            seed=0,
            test_acc=0.6 + 0.01 * i,
            aucs={"loss": 0.7 + 0.02 * i},
            defense=d,
            params={"x": 1},
            scores=False,
        )
    if with_none:
        write_run(folder / "none", seed=0, test_acc=0.7, aucs={"loss": 0.8}, scores=False)
    return collect([folder])


def _styles(fig) -> dict[str, tuple]:
    """defense -> (colour, marker) of its curve in the first panel (errorbar legend handles)."""
    import matplotlib.colors as mc

    out = {}
    for handle, label in zip(*fig.axes[0].get_legend_handles_labels()):
        line = handle[0] if isinstance(handle, tuple) else handle
        if label.split(" ")[0] in ("relaxloss", "crl", "ccl", "dp_sgd"):
            out[label.split(" ")[0]] = (mc.to_hex(line.get_color()), line.get_marker())
    return out


def test_privacy_utility_one_style_per_defense_and_no_forced_half(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from mia_bench.report.plots import defense_style
    from mia_bench.report.privacy_utility import privacy_utility

    c1 = _pu_runs(tmp_path / "a", ["relaxloss", "crl", "ccl"], with_none=True)
    c2 = _pu_runs(tmp_path / "b", ["ccl", "dp_sgd", "relaxloss"], with_none=False)
    f1 = privacy_utility(c1.groups, c1.attacks, c1.settings, "a")
    f2 = privacy_utility(c2.groups, c2.attacks, c2.settings, "b")
    s1, s2 = _styles(f1), _styles(f2)
    for d in ("relaxloss", "ccl"):  # same defense, other report, other order: same style
        assert s1[d] == s2[d]
    assert s1["relaxloss"] != s1["ccl"] != s1["crl"]
    assert defense_style("some_new_defense") == defense_style("some_new_defense")
    # AUCs 0.70-0.80: the axis spans them, not 0.5; the ideal point sits at the left edge
    lo, hi = f1.axes[0].get_xlim()
    assert 0.65 < lo < 0.70 and hi > 0.80
    labels1 = f1.axes[0].get_legend_handles_labels()[1]
    labels2 = f2.axes[0].get_legend_handles_labels()[1]
    assert "no defense" in labels1
    assert "ideal defense (AUC 0.5, left of the axis)" in labels1
    assert any(lb.startswith("no defense: no undefended run") for lb in labels2)
