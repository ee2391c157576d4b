"""The sections of `mia_bench.repro.compare`'s comparison.md that show our settings alone
(figure and layout targets): per dataset / model / attacker ("facet"), every setting's point,
the lowest attack AUC at no loss of test accuracy, and RelaxLoss Table 1 / Fig. 4's layouts;
and the table cells every section writes.
"""

from __future__ import annotations

from mia_bench.report.aggregate import Group
from mia_bench.report.tables import ATTACKER


def ours_cell(s: Group | None, metric: str, digits: int) -> str:
    if s is None:
        return "not run"
    m, sd = s.mean(metric), s.std(metric)
    if m is None:
        return "n/a"
    return f"{m:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")


def facet_title(key: dict[str, str]) -> str:
    shadow = key.get("shadow_defense") or key.get("shadow") or ""
    who = ATTACKER.get(shadow, f"shadow defense {shadow}" if shadow else "")
    return f"{key.get('dataset')} / {key.get('model')}" + (f", {who}" if who else "")


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def facets(ours: list[Group]) -> dict[str, list[Group]]:
    out: dict[str, list[Group]] = {}
    for s in ours:
        out.setdefault(facet_title(s.key), []).append(s)
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
            *md_table(["defense", "settings that keep accuracy", *attacks], rows),
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
        lines += ["", f"### {title}: every setting", "", *md_table(head, rows)]
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
    lines = ["", "### Test accuracy (RelaxLoss Table 1 layout)", "", *md_table(head, rows)]
    attacks = attacks_of(ours)
    for title, group in fs.items():
        rows = [[label[id(s)], *[ours_cell(s, f"auc_{a}", 1) for a in attacks]] for s in group]
        lines += ["", f"### {title}: attack AUC (%) (Fig. 4 layout)", ""]
        lines += md_table(["approach", *attacks], rows)
    return lines
