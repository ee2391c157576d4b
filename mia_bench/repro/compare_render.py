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
from mia_bench.report.tables import ATTACKER
from mia_bench.repro.compare_rows import NOT_KEYS, is_metric, paper_keys
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


def ours_cell(s: Group | None, metric: str, digits: int) -> str:
    if s is None:
        return "not run"
    m, sd = s.mean(metric), s.std(metric)
    if m is None:
        return "n/a"
    return f"{m:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")


def diff_cell(paper: str, s: Group | None, metric: str, digits: int) -> str:
    if s is None or paper == "" or s.mean(metric) is None:
        return ""
    return f"{s.mean(metric) - float(paper):+.{digits}f}"


def _facet_title(key: dict[str, str]) -> str:
    shadow = key.get("shadow_defense") or key.get("shadow") or ""
    who = ATTACKER.get(shadow, f"shadow defense {shadow}" if shadow else "")
    return f"{key.get('dataset')} / {key.get('model')}" + (f", {who}" if who else "")


def _paper_label(row: dict[str, str], keys: list[str]) -> str:
    params = [f"{k}={row[k]}" for k in keys if k not in ("dataset", "model", "defense", "shadow")]
    params = [p for p in params if not p.endswith("=")]
    return row["defense"] + (f" ({', '.join(params)})" if params else "")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


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
        facets.setdefault(_facet_title(row), []).append((row, s))
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
        lines += ["", f"### {title}", "", *_table(head, rows)]
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


def facets(ours: list[Group]) -> dict[str, list[Group]]:
    out: dict[str, list[Group]] = {}
    for s in ours:
        out.setdefault(_facet_title(s.key), []).append(s)
    return out


def attacks_of(ours: list[Group]) -> list[str]:
    seen: list[str] = []
    for r in (r for s in ours for r in s.runs):
        seen += [m[4:] for m in r.row if m.startswith("auc_") and m[4:] not in seen]
    return seen


def short_labels(ours: list[Group]) -> dict[int, str]:
    """id(setting) -> the defense and only those of its parameters that vary within one
    dataset / model / attacker (the swept ones), e.g. `relaxloss (alpha=1.0)`."""
    varying: dict[str, set[str]] = {}
    for group in facets(ours).values():
        for s in group:
            d = s.key.get("defense", "")
            mine = [g for g in group if g.key.get("defense") == d]
            keys = {k for g in mine for k in g.key if k.startswith("defense.")}
            varying.setdefault(d, set()).update(
                k for k in keys if len({g.key.get(k, "") for g in mine}) > 1
            )
    out = {}
    for s in ours:
        d = s.key.get("defense", "")
        params = [f"{k[len('defense.') :]}={s.key.get(k, '')}" for k in sorted(varying.get(d, ()))]
        out[id(s)] = d + (f" ({', '.join(params)})" if params else "")
    return out


def no_utility_cost(ours: list[Group]) -> list[str]:
    """Per facet and defense: the lowest AUC of each attack among the defense's settings whose
    mean test accuracy is not below the undefended model's (RelaxLoss Sec. 6.3's criterion),
    less one standard deviation of the undefended accuracy over seeds (seed noise)."""
    attacks = attacks_of(ours)
    lines: list[str] = []
    for title, group in facets(ours).items():
        base = [s for s in group if s.key.get("defense") == "none" and s.mean("test_acc")]
        if not base:
            continue
        best = max(base, key=lambda s: s.mean("test_acc"))
        floor = best.mean("test_acc") - (best.std("test_acc") or 0.0)
        rows = []
        for defense in dict.fromkeys(s.key.get("defense", "") for s in group):
            mine = [s for s in group if s.key.get("defense") == defense]
            ok = [s for s in mine if (s.mean("test_acc") or -1) >= floor - 1e-9]
            cells = [defense, f"{len(ok)} of {len(mine)}"]
            for a in attacks:
                vals = [(s.mean(f"auc_{a}"), s) for s in ok if s.mean(f"auc_{a}") is not None]
                cells.append(f"{min(vals, key=lambda t: t[0])[0]:.1f}" if vals else "-")
            rows.append(cells)
        lines += [
            "",
            f"### {title}: lowest AUC (%) at no loss of test accuracy "
            f"(undefended: {ours_cell(best, 'test_acc', 1)}%; kept: >= {floor:.1f}%)",
            "",
            *_table(["defense", "settings that keep accuracy", *attacks], rows),
        ]
    return lines


def points(ours: list[Group]) -> list[str]:
    """Per facet: every setting's test accuracy, training-loss variance and mean AUC."""
    attacks = attacks_of(ours)
    label = short_labels(ours)
    lines: list[str] = []
    for title, group in facets(ours).items():
        rows = []
        for s in group:
            aucs = [s.mean(f"auc_{a}") for a in attacks if s.mean(f"auc_{a}") is not None]
            rows.append(
                [
                    label[id(s)],
                    str(s.n),
                    ours_cell(s, "test_acc", 1),
                    ours_cell(s, "train_loss_var", 3),
                    f"{sum(aucs) / len(aucs):.1f}" if aucs else "n/a",
                ]
            )
        head = ["approach", "seeds", "test acc (%)", "train loss variance", "mean AUC (%)"]
        lines += ["", f"### {title}: every setting", "", *_table(head, rows)]
    return lines


def layout(ours: list[Group]) -> list[str]:
    """RelaxLoss Table 1 (test accuracy, relative change vs none) and Fig. 4 (AUC) layouts."""
    fs = facets(ours)
    label = short_labels(ours)
    approaches = list(dict.fromkeys(label[id(s)] for s in ours))
    head = ["approach"]
    for title in fs:
        head += [f"{title}: test acc (%)", "change vs none (%)"]
    rows = []
    for a in approaches:
        cells = [a]
        for group in fs.values():
            s = next((g for g in group if label[id(g)] == a), None)
            base = next((g for g in group if g.key.get("defense") == "none"), None)
            cells.append(ours_cell(s, "test_acc", 1) if s else "not run")
            if s and base and s.mean("test_acc") is not None and base.mean("test_acc"):
                rel = 100 * (s.mean("test_acc") - base.mean("test_acc")) / base.mean("test_acc")
                cells.append(f"{rel:+.1f}")
            else:
                cells.append("")
        rows.append(cells)
    lines = ["", "### Test accuracy (RelaxLoss Table 1 layout)", "", *_table(head, rows)]
    attacks = attacks_of(ours)
    for title, group in fs.items():
        rows = [[label[id(s)], *[ours_cell(s, f"auc_{a}", 1) for a in attacks]] for s in group]
        lines += ["", f"### {title}: attack AUC (%) (Fig. 4 layout)", ""]
        lines += _table(["approach", *attacks], rows)
    return lines


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
