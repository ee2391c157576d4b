"""summary.csv (one row per run), summary.md and summary.tex (mean +- std over seeds).

The grouped tables follow the papers' layout (RelaxLoss Tables 1-2, CCL and CRL results
tables): one table per dataset and attacker, rows approach x model, columns train accuracy,
test accuracy and one AUC column per attack.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from mia_bench.report.aggregate import Collection, Group, short_names
from mia_bench.report.rows import ATTACK_METRICS, TARGET_COLS, fmt_value

# The attacker a run's `shadow.defense` stands for: shadow models trained with the target's
# defense ("same": adaptive) or without ("none"). Every report and comparison names it so.
ATTACKER = {"same": "adaptive attacker", "none": "non-adaptive attacker"}
SHADOW_MODE = {
    "same": f"{ATTACKER['same']} (shadow models trained with the target's defense)",
    "none": f"{ATTACKER['none']} (shadow models trained without defense)",
}


def csv_text(c: Collection) -> str:
    """One row per completed run; a metric a run does not have is left empty."""
    head = [
        "run",
        "dataset",
        "model",
        "defense",
        *c.param_cols,
        "approach",
        *c.settings,
        "seed",
        "shadow_defense",
        "shadow_count",
        *TARGET_COLS,
        *[f"{a}.{m}" for a in c.attacks for m in ATTACK_METRICS],
        "models",
        "cache_hits",
        "attack_cache_hits",
        "seconds",
    ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for r in c.runs:
        w.writerow(["" if r.row.get(k) is None else r.row.get(k) for k in head])
    return buf.getvalue()


def mean_std(g: Group, col: str, scale: float, digits: int, pm: str) -> str:
    m, s = g.mean(col), g.std(col)
    if m is None:
        return "n/a"
    return (
        f"{scale * m:.{digits}f}"
        if s is None
        else f"{scale * m:.{digits}f}{pm}{scale * s:.{digits}f}"
    )


def sections(c: Collection) -> dict[tuple[str, str], list[Group]]:
    """Groups per (dataset, shadow mode), in the order of `c.groups`."""
    out: dict[tuple[str, str], list[Group]] = {}
    for g in c.groups:
        out.setdefault((str(g.dataset), str(g.shadow_defense)), []).append(g)
    return out


def _rows(
    c: Collection, groups: list[Group], pm: str, esc: Callable[[str], str]
) -> tuple[list[str], list[list[str]]]:
    names = short_names(c.settings)
    head = [
        "approach",
        "model",
        *[names[k] for k in c.settings],
        "seeds",
        "train acc (%)",
        "test acc (%)",
        *[f"{a} AUC" for a in c.attacks],
    ]
    rows = []
    for g in groups:
        rows.append(
            [
                esc(g.approach),
                esc(str(g.model)),
                *[esc(fmt_value(g.setting.get(k))) for k in c.settings],
                str(g.n),
                mean_std(g, "train_acc", 100, 1, pm),
                mean_std(g, "test_acc", 100, 1, pm),
                *[mean_std(g, f"{a}.auc", 1, 3, pm) for a in c.attacks],
            ]
        )
    return [esc(h) for h in head], rows


def markdown(c: Collection) -> str:
    lines = [
        "# Summary",
        "",
        f"{len(c.runs)} runs in {len(c.groups)} settings. Mean ± sample standard deviation over "
        "seeds (no ± with one seed); AUC of each attack on the target's members vs non-members.",
    ]
    for (dataset, shadow), groups in sections(c).items():
        head, rows = _rows(c, groups, " ± ", lambda s: s.replace("|", "\\|"))
        lines += [
            "",
            f"## {dataset}, {SHADOW_MODE.get(shadow, f'shadow defense {shadow}')}",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    if c.problems:
        lines += [
            "",
            "## Jobs not in the tables",
            "",
            "| job | status | overrides | detail |",
            "|---|---|---|---|",
        ]
        for j in c.problems:
            lines.append(
                f"| {j.path} | {j.status} | {' '.join(j.overrides)} | "
                f"{j.detail.replace('|', '/')} |"
            )
    return "\n".join(lines) + "\n"


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def latex(c: Collection) -> str:
    """booktabs tables, one per dataset and attacker, ready for \\input{}."""
    out = [
        "% mia_bench report; needs \\usepackage{booktabs}.",
        "% Mean $\\pm$ sample standard deviation over seeds.",
    ]
    for (dataset, shadow), groups in sections(c).items():
        head, rows = _rows(c, groups, " $\\pm$ ", tex_escape)
        align = "ll" + "r" * (len(head) - 2)
        caption = tex_escape(f"{dataset}, {SHADOW_MODE.get(shadow, f'shadow defense {shadow}')}")
        out += [
            "",
            "\\begin{table}[t]",
            "\\centering",
            f"\\caption{{{caption}}}",
            f"\\begin{{tabular}}{{{align}}}",
            "\\toprule",
            " & ".join(head) + " \\\\",
            "\\midrule",
        ]
        out += [" & ".join(r) + " \\\\" for r in rows]
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


def render_all(c: Collection) -> dict[str, Any]:
    return {"summary.csv": csv_text(c), "summary.md": markdown(c), "summary.tex": latex(c)}
