"""comparison.md and paper_vs_ours.png of `mia_bench.repro.compare`.

- table targets: per dataset / model / attacker, one row per metric and, per approach, the
  paper's number, ours (mean ± sample std over seeds) and the difference ours - paper;
- figure targets: the paper's claims, the approaches' points, and per defense the lowest
  attack AUC among its settings that keep the undefended test accuracy (RelaxLoss Sec. 6.3);
- layout targets: our numbers in RelaxLoss Table 1's layout (test accuracy per approach and
  dataset / model, relative change vs no defense) and Fig. 4's (AUC per attack).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mia_bench.report.aggregate import Group
from mia_bench.repro.compare_rows import NOT_KEYS, is_metric, paper_keys
from mia_bench.repro.compare_sections import (
    facet_title,
    layout,
    md_table,
    no_utility_cost,
    ours_cell,
    points,
)
from mia_bench.repro.targets import Target

NAMES = {"train_acc": "train acc", "test_acc": "test acc"}
Pair = tuple[dict[str, str], Group | None]


def metric_name(m: str) -> str:
    if m in NAMES:
        return NAMES[m] + " (%)"
    kind, _, attack = m.partition("_")
    return f"{attack} {'AUC' if kind == 'auc' else 'attack acc'} (%)"


def decimals(values: list[str]) -> int:
    """The paper's precision: the most decimals among its numbers in a column (at least 1)."""
    d = [len(v.split(".", 1)[1]) for v in values if "." in v]
    return max([1, *d])


def diff_cell(paper: str, s: Group | None, metric: str, digits: int) -> str:
    if s is None or paper == "" or s.mean(metric) is None:
        return ""
    return f"{s.mean(metric) - float(paper):+.{digits}f}"


def _paper_label(row: dict[str, str], keys: list[str]) -> str:
    params = [f"{k}={row[k]}" for k in keys if k not in ("dataset", "model", "defense", "shadow")]
    params = [p for p in params if not p.endswith("=")]
    return row["defense"] + (f" ({', '.join(params)})" if params else "")


def side_by_side(target: Target, pairs: list[Pair], matched_only: bool) -> list[str]:
    """Sections per dataset / model / attacker: metrics down, (paper, ours, diff) across."""
    if not pairs:
        return []
    keys = paper_keys([r for r, _ in pairs])
    metrics = list(target.metrics)
    digits = {m: decimals([r.get(m, "") for r, _ in pairs]) for m in metrics}
    facets: dict[str, list[Pair]] = {}
    for row, s in pairs:
        if matched_only and s is None:
            continue
        facets.setdefault(facet_title(row), []).append((row, s))
    lines: list[str] = []
    for title, group in facets.items():
        head = ["metric"]
        for row, _ in group:
            label = _paper_label(row, keys)
            head += [f"{label}: paper", "ours", "ours - paper"]
        rows = []
        for m in metrics:
            if all(r.get(m, "") == "" and (s is None or s.mean(m) is None) for r, s in group):
                continue
            cells = [metric_name(m)]
            for row, s in group:
                paper = row.get(m, "")
                cells += [
                    paper or "-",
                    ours_cell(s, m, digits[m]),
                    diff_cell(paper, s, m, digits[m]),
                ]
            rows.append(cells)
        lines += ["", f"### {title}", "", *md_table(head, rows)]
    return lines


def compared_cells(pairs: list[Pair]) -> Iterator[tuple[str, float, Group]]:
    """(metric, the paper's number, our setting) for every cell both sides have."""
    for row, s in pairs:
        if s is None:
            continue
        for m, v in row.items():
            if m not in NOT_KEYS and is_metric(m) and v != "" and s.mean(m) is not None:
                yield m, float(v), s


def agreement(pairs: list[Pair]) -> list[str]:
    """Mean absolute difference over the compared cells, utility and attacks apart."""
    util, attack = [], []
    for m, paper, s in compared_cells(pairs):
        (util if m in NAMES else attack).append(abs(s.mean(m) - paper))
    out = []
    for name, d in (("utility (train / test accuracy)", util), ("attacks", attack)):
        if d:
            out.append(
                f"- {name}: {len(d)} cells, mean |ours - paper| {sum(d) / len(d):.1f} points, "
                f"largest {max(d):.1f}"
            )
    missing = sum(s is None for _, s in pairs)
    if missing:
        out.append(f"- {missing} paper rows have no run of ours (see 'not run' below)")
    return out


def figures(out: Path) -> list[str]:
    names = sorted(p.name for p in out.glob("privacy_utility*.png"))
    names += [n for n in ("paper_vs_ours.png", "roc.png", "loss_hist.png") if (out / n).exists()]
    return [f"![{n[:-4]}]({n})" for n in names]


def markdown(
    target: Target, ours: list[Group], pairs: list[Pair], out: Path, *, scale: str, seeds: str
) -> str:
    runs = sum(s.n for s in ours)
    lines = [f"# {target.title}", ""]
    if scale == "smoke":
        lines += [
            "**Smoke scale**: random fake data of the real formats and shapes, one epoch, small "
            "subsets. These numbers only show that the pipeline runs end to end; they say "
            "nothing about the papers.",
            "",
        ]
    lines += [
        f"`make {target.name}` (SCALE={scale}{f', SEEDS={seeds}' if seeds else ''}): "
        f"{runs} runs in {len(ours)} settings. Ours: mean ± sample standard deviation over "
        "seeds; the report of the same runs is in summary.md / summary.csv, ours.csv holds "
        "every setting's means and standard deviations.",
        "",
        *[f"- {n}" for n in target.notes],
    ]
    if target.kind == "table":
        lines += ["", "## Agreement", "", *agreement(pairs)]
        lines += ["", "## Paper vs ours", *side_by_side(target, pairs, matched_only=False)]
    else:
        if target.claims:
            lines += ["", "## The paper's claims", "", *[f"- {c}" for c in target.claims]]
            lines += [
                "",
                "Check them against the curves and the tables below: the paper prints no "
                "numbers for these figures.",
            ]
        if any(s is not None for _, s in pairs):
            lines += ["", "## Paper anchors (Table 4)", *side_by_side(target, pairs, True)]
        if target.kind == "layout":
            lines += ["", "## Our numbers", *layout(ours)]
        else:
            lines += ["", "## Our settings", *points(ours)]
        lines += ["", "## Privacy at no utility cost", *no_utility_cost(ours)]
    plots = figures(out)
    if plots:
        lines += ["", "## Plots", "", *plots]
    return "\n".join(lines) + "\n"
