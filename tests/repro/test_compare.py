"""mia_bench.repro.compare on hand-written summary.csv / paper.csv files: grouping over seeds, units,
matching paper rows, the differences, and the figure and layout summaries."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from mia_bench.repro import compare, compare_render
from mia_bench.repro.targets import TARGETS, Sweep, Target

HEAD = (
    "run,dataset,model,defense,defense.alpha,approach,seed,shadow_defense,shadow_count,"
    "train_acc,test_acc,gap,train_loss_mean,train_loss_var,test_loss_mean,test_loss_var,"
    "loss.auc,loss.acc,loss.tpr_at_0.1%fpr,loss.tpr_at_1%fpr,loss.advantage,"
    "models,cache_hits,attack_cache_hits,seconds"
)


def _row(run, defense, alpha, seed, train, test, auc, acc, tpr="", var=0.1):
    approach = f"{defense} (alpha={alpha})" if alpha != "" else defense
    return (
        f"r{run},cifar10,resnet20,{defense},{alpha},{approach},{seed},none,1,"
        f"{train},{test},{train - test},0.5,{var},1.5,0.9,"
        f"{auc},{acc},{tpr},0.1,0.2,2,0,0,{run}.5"
    )


def _summary(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "summary.csv"
    path.write_text("\n".join([HEAD, *rows]) + "\n")
    return path


PAPER = """source,dataset,model,defense,alpha,shadow,train_acc,test_acc,acc_loss,auc_loss
"T",cifar10,resnet20,none,,none,100,70.5,86.9,84.0
"T",cifar10,resnet20,relaxloss,1.0,none,87.0,73.8,50.0,
"T",cifar10,resnet20,relaxloss,0.5,none,90.0,72.0,55.0,
"""

TABLE = Target(
    "t",
    "A table",
    "table",
    (Sweep("s", ("defense=none",)),),
    metrics=("train_acc", "test_acc", "acc_loss", "auc_loss"),
)


@pytest.fixture
def three_runs(tmp_path):
    # none: seeds 0 and 1 (the second without a TPR at 0.1% FPR: still one setting);
    # relaxloss alpha 1: seed 0.
    return _summary(
        tmp_path,
        [
            _row(0, "none", "", 0, 1.0, 0.70, 0.84, 0.86, tpr=0.01),
            _row(1, "none", "", 1, 1.0, 0.72, 0.86, 0.88),
            _row(2, "relaxloss", 1.0, 0, 0.88, 0.74, 0.55, 0.51),
        ],
    )


def test_settings_average_seeds_in_paper_units(three_runs):
    ours = compare.settings(compare.read_csv(three_runs))
    assert len(ours) == 2
    none = next(s for s in ours if s.key["defense"] == "none")
    assert none.seeds == ["0", "1"]
    # (70 + 72) / 2 = 71 %; sample std sqrt((1 + 1) / 1) = 1.414
    assert none.mean("test_acc") == pytest.approx(71.0)
    assert none.std("test_acc") == pytest.approx(math.sqrt(2))
    assert none.mean("auc_loss") == pytest.approx(85.0)  # AUC in % like the papers
    assert none.mean("train_loss_var") == pytest.approx(0.1)  # loss statistics as they are
    assert "loss.tpr_at_0.1%fpr" not in none.key  # a metric, not part of the identity


def test_match_uses_every_key_the_paper_fills(three_runs):
    ours = compare.settings(compare.read_csv(three_runs))
    rows = list(csv.DictReader(PAPER.splitlines()))
    keys = compare.paper_keys(rows)
    assert keys == ["dataset", "model", "defense", "alpha", "shadow"]
    got = [compare.match(r, keys, ours) for r in rows]
    assert got[0].key["defense"] == "none"
    assert got[1].key["defense.alpha"] == "1.0"  # "1.0" in the paper, 1.0 in ours
    assert got[2] is None  # alpha 0.5 was not run


def test_write_puts_paper_ours_and_difference_side_by_side(three_runs, tmp_path):
    paper = tmp_path / "paper.csv"
    paper.write_text(PAPER)
    out = tmp_path / "out"
    written = compare.write(TABLE, three_runs, out, scale="full", seeds="0,1", paper=paper)
    assert {p.name for p in written} == {"ours.csv", "comparison.md", "paper_vs_ours.png"}
    md = (out / "comparison.md").read_text()
    # test acc of none: paper 70.5, ours 71.0 ± 1.4, difference +0.5
    assert "| test acc (%) | 70.5 | 71.0 ± 1.4 | +0.5 |" in md
    # relaxloss alpha 1 (one seed: no ±): 74.0 - 73.8 = +0.2; the alpha 0.5 row was not run
    assert "| 73.8 | 74.0 | +0.2 | 72.0 | not run |  |" in md
    # a cell the paper does not fill shows '-' and ours alone (55.0 = AUC 0.55)
    assert "| - | 55.0 |  |" in md
    # agreement over the utility cells that were compared (none + alpha 1):
    # |100-100|, |71-70.5|, |88-87|, |74-73.8| -> 4 cells, mean (0 + 0.5 + 1 + 0.2) / 4 = 0.425
    assert "utility (train / test accuracy): 4 cells, mean |ours - paper| 0.4 points" in md
    assert "1 paper rows have no run of ours" in md
    rows = list(csv.DictReader((out / "ours.csv").read_text().splitlines()))
    none = next(r for r in rows if r["defense"] == "none")
    assert float(none["test_acc_mean"]) == pytest.approx(71.0)
    assert float(none["test_acc_std"]) == pytest.approx(1.4142, abs=1e-4)
    assert none["seeds"] == "0 1" and none["n"] == "2"


def test_decimals_follow_the_paper():
    assert compare_render.decimals(["76.46", "100.00", ""]) == 2
    assert compare_render.decimals(["100", "70.5"]) == 1
    assert compare_render.decimals(["100"]) == 1


def test_smoke_scale_says_the_numbers_mean_nothing(three_runs, tmp_path):
    compare.write(TABLE, three_runs, tmp_path / "o", scale="smoke", paper=None)
    assert "**Smoke scale**" in (tmp_path / "o" / "comparison.md").read_text()


def test_no_utility_cost_keeps_only_settings_at_least_as_accurate(tmp_path):
    # Undefended: 70% test accuracy. RelaxLoss alpha 1: 71%, AUC 0.55; alpha 2: 65%, AUC 0.51.
    # The lowest AUC without losing accuracy is alpha 1's 55.0, not alpha 2's 51.0.
    path = _summary(
        tmp_path,
        [
            _row(0, "none", "", 0, 1.0, 0.70, 0.84, 0.86),
            _row(1, "relaxloss", 1.0, 0, 0.9, 0.71, 0.55, 0.5),
            _row(2, "relaxloss", 2.0, 0, 0.8, 0.65, 0.51, 0.5),
        ],
    )
    ours = compare.settings(compare.read_csv(path))
    md = "\n".join(compare_render.no_utility_cost(ours))
    assert "(undefended: 70.0%; kept: >= 70.0%)" in md
    assert "| relaxloss | 1 of 2 | 55.0 |" in md
    assert "| none | 1 of 1 | 84.0 |" in md
    # the swept parameter names each point, the others stay out of the way
    pts = "\n".join(compare_render.points(ours))
    assert "| relaxloss (alpha=1.0) | 1 | 71.0 |" in pts and "| relaxloss (alpha=2.0) | 1 |" in pts


def test_no_utility_cost_allows_the_undefended_seed_noise(tmp_path):
    # Undefended 70 and 72 % (mean 71, std 1.414): a defense at 70 % keeps accuracy.
    path = _summary(
        tmp_path,
        [
            _row(0, "none", "", 0, 1.0, 0.70, 0.84, 0.86),
            _row(1, "none", "", 1, 1.0, 0.72, 0.84, 0.86),
            _row(2, "relaxloss", 1.0, 0, 0.9, 0.70, 0.55, 0.5),
            _row(3, "relaxloss", 2.0, 0, 0.8, 0.69, 0.51, 0.5),
        ],
    )
    md = "\n".join(compare_render.no_utility_cost(compare.settings(compare.read_csv(path))))
    assert "(undefended: 71.0 ± 1.4%; kept: >= 69.6%)" in md
    assert "| relaxloss | 1 of 2 | 55.0 |" in md


def test_layout_gives_relative_change_against_no_defense(tmp_path):
    path = _summary(
        tmp_path,
        [
            _row(0, "none", "", 0, 1.0, 0.70, 0.84, 0.86),
            _row(1, "relaxloss", 1.0, 0, 0.9, 0.735, 0.55, 0.5),
        ],
    )
    ours = compare.settings(compare.read_csv(path))
    md = "\n".join(compare_render.layout(ours))
    # (73.5 - 70) / 70 = +5.0 % relative, as RelaxLoss Table 1's Delta row
    assert "| relaxloss | 73.5 | +5.0 |" in md  # one setting: no parameter in its name
    assert "| none | 70.0 | +0.0 |" in md
    assert "attack AUC (%) (Fig. 4 layout)" in md


def test_figure_and_layout_targets_render_without_paper_numbers(three_runs, tmp_path):
    for name in ("figure-ccl", "table-embedded"):
        compare.write(TARGETS[name], three_runs, tmp_path / name, paper=None)
        md = (tmp_path / name / "comparison.md").read_text()
        assert "## The paper's claims" in md and "Privacy at no utility cost" in md
        assert not (tmp_path / name / "paper_vs_ours.png").exists()
