"""`python -m mia_bench.report DIR [DIR ...]`: tables and plots of every run under the folders.

Reads every results.json under the given folders (runs, sweeps, or folders of sweeps) and
writes, into the first DIR (or --out; into DIR/report when DIR is itself one run's folder, so
that the run's own summary.md stays):

  summary.csv                   one row per run
  summary.md, summary.tex       mean +- std over seeds, one table per dataset and attacker
  privacy_utility.png|pdf       test accuracy vs attack AUC (one file per dataset/model/attacker)
  roc.png|pdf                   log-log ROC curves of chosen runs
  loss_hist.png|pdf             member vs non-member loss histograms of chosen runs
  audit.*, vulnerable*          canary audits (runs with audit=canaries; mia_bench/report/audit.py,
                                audit_figures.py)

Jobs that failed (error.json), stopped early (no results.json) or never started (missing from
a sweep's multirun.yaml) are listed on the console and in summary.md, not fatal. Running it
again on the same folders gives the same files.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from mia_bench.io import atomic_write_text
from mia_bench.report import audit
from mia_bench.report.aggregate import Collection, Group, collect, group_label
from mia_bench.report.rows import Run, fmt_value
from mia_bench.report.runs import RESULTS, SCORES
from mia_bench.report.tables import ATTACKER, SHADOW_MODE, render_all


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m mia_bench.report",
        description="Tables (csv/md/tex) and plots (png/pdf) of every results.json under DIRs.",
    )
    p.add_argument(
        "dirs", nargs="+", metavar="DIR", help="run or sweep folders (searched recursively)"
    )
    p.add_argument("--out", help="where to write (default: the first DIR)")
    p.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="runs shown in the ROC and loss plots, e.g. defense=relaxloss, "
        "defense.alpha=0.5, trainer.epochs=60 (repeatable; all must match)",
    )
    p.add_argument(
        "--max-runs",
        type=int,
        default=6,
        help="at most this many settings in the ROC and loss plots (default 6)",
    )
    p.add_argument("--no-pdf", action="store_true", help="write PNG figures only")
    p.add_argument(
        "--matched-gap",
        type=float,
        default=0.05,
        help="canary audits: DP-SGD at matched utility is the most private DP-SGD setting "
        "at most this far below the undefended test accuracy (default 0.05)",
    )
    return p.parse_args(argv)


def output_dir(dirs: list[str], out: str | None) -> Path:
    if out:
        return Path(out)
    first = Path(dirs[0])
    return first / "report" if (first / RESULTS).exists() else first


def _matches(g: Group, selector: str) -> bool:
    key, _, want = selector.partition("=")
    for r in g.runs:
        v = r.row.get(key, r.config.get(key))
        if v is not None and want in (str(v), fmt_value(v)):
            return True
    return False


def choose(c: Collection, selectors: list[str], max_runs: int) -> list[Group]:
    """Settings for the per-run plots: those matching every selector; when more than
    `max_runs`, the undefended one plus others evenly spaced in table order."""
    from mia_bench.report.privacy_utility import no_defense

    pool = [g for g in c.groups if all(_matches(g, s) for s in selectors)]
    if len(pool) <= max_runs:
        return pool
    base = no_defense(pool)
    rest = [g for g in pool if g is not base]
    k = max_runs - (base is not None)
    picked = {id(rest[i]) for i in np.unique(np.linspace(0, len(rest) - 1, k).round().astype(int))}
    return [g for g in pool if g is base or id(g) in picked]


def _slug(*parts: object) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(p)) for p in parts)


def make_plots(
    c: Collection, out: Path, selectors: list[str], max_runs: int, pdf: bool
) -> list[Path]:
    from mia_bench.report import plots, privacy_utility, reference_count, score_plots

    written: list[Path] = []
    facets: dict[tuple[str, str, str], list[Group]] = {}
    for g in c.groups:
        facets.setdefault((str(g.dataset), str(g.model), str(g.shadow_defense)), []).append(g)
    for (dataset, model, shadow), groups in facets.items():
        stem = "privacy_utility" + ("" if len(facets) == 1 else "_" + _slug(dataset, model, shadow))
        title = f"{dataset} / {model}, {ATTACKER.get(shadow, shadow)}: test accuracy vs attack AUC"
        fig = privacy_utility.privacy_utility(groups, c.attacks, c.settings, title)
        written += plots.save(fig, out / stem, pdf)

    for (dataset, model, shadow), groups in facets.items():
        fig = reference_count.reference_count(
            groups, f"{dataset} / {model}: attack strength vs number of reference models"
        )
        if fig is not None:
            stem = "reference_models" + (
                "" if len(facets) == 1 else "_" + _slug(dataset, model, shadow)
            )
            written += plots.save(fig, out / stem, pdf)

    chosen = choose(c, selectors, max_runs)
    multi = len({(g.dataset, g.model) for g in chosen}) > 1
    labels = [
        (f"{g.dataset}/{g.model}: " if multi else "")
        + group_label(g, c.settings)
        + f", seed {g.first_run().row['seed']}"
        for g in chosen
    ]
    # read once, drawn twice (ROC and loss histograms)
    scores = [plots.load_scores(g.first_run().path / SCORES) for g in chosen]
    shadows = {str(g.shadow_defense) for g in chosen}
    who = ATTACKER.get(shadows.pop(), "") if len(shadows) == 1 else "mixed attackers"
    fig = score_plots.roc_curves(
        list(zip(labels, scores)),
        c.attacks,
        f"ROC curves of the target's membership scores ({who})",
    )
    if fig is not None:
        written += plots.save(fig, out / "roc", pdf)
    aucs = [g.first_run().row.get("loss.auc") for g in chosen]
    fig = score_plots.loss_histograms(
        list(zip(labels, scores, aucs)), "Target loss on members vs non-members"
    )
    if fig is not None:
        written += plots.save(fig, out / "loss_hist", pdf)
    return written


def make_audit_report(
    runs: list[Run], out: Path, pdf: bool = True, gap: float = audit.MATCHED_GAP
) -> list[Path]:
    """Write the audit tables and plots for the runs (aggregate.Run) that audited canaries;
    nothing when none did."""
    from mia_bench.report import audit_figures, plots

    rows = [r for run in runs if (r := audit.audit_row(run.path, run.row, run.results)) is not None]
    if not rows:
        return []
    audit.label_defenses(rows)
    # one row per setting and seed (the same DP-SGD point can be in two sweeps): the last kept
    unique = {
        (r["dataset"], r["model"], r["defense"], r["shadow_defense"], r["seed"]): r for r in rows
    }
    rows = list(unique.values())
    written = []
    table_csv, table_md = audit.audit_tables(rows, gap)
    for name, text in (
        ("audit.csv", table_csv),
        ("audit.md", "# Canary audit\n\n" + table_md),
        ("vulnerable.md", audit.vulnerable_table(rows)),
    ):
        atomic_write_text(out / name, text)
        written.append(out / name)
    written += plots.save(audit_figures.privacy_utility(rows), out / "audit_privacy_utility", pdf)
    if any(r["eps_theory"] is not None for r in rows):
        written += plots.save(audit_figures.epsilon_plot(rows), out / "audit_epsilon", pdf)
    for i, (key, group) in enumerate(audit.settings(rows).items()):
        fig = audit_figures.image_grid(
            group[0]["_dir"] / "vulnerable.npz", " / ".join(map(str, key[:3]))
        )
        if fig is not None:
            stem = f"vulnerable_{i}_" + _slug(key[0], key[1], key[2].split(" ")[0])
            written += plots.save(fig, out / stem, pdf)
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [d for d in args.dirs if not Path(d).is_dir()]
    if missing:
        print(f"mia_bench.report: no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.max_runs < 1:
        print("mia_bench.report: --max-runs must be >= 1", file=sys.stderr)
        return 2
    c = collect(args.dirs)
    for j in c.problems:
        print(
            f"{j.status}: {j.path}: {j.detail}"
            + (f" [{' '.join(j.overrides)}]" if j.overrides else ""),
            file=sys.stderr,
        )
    if not c.runs:
        print(
            f"mia_bench.report: no completed run ({RESULTS}) under {' '.join(args.dirs)}",
            file=sys.stderr,
        )
        return 1
    out = output_dir(args.dirs, args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all(c).items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    written += make_plots(c, out, args.select, args.max_runs, pdf=not args.no_pdf)
    written += make_audit_report(c.runs, out, pdf=not args.no_pdf, gap=args.matched_gap)
    sections = sorted({SHADOW_MODE.get(str(g.shadow_defense), "") for g in c.groups})
    print(
        f"{len(c.runs)} runs in {len(c.groups)} settings ({'; '.join(sections)}), "
        f"{len(c.problems)} jobs not in the tables"
    )
    print(f"written to {out}/: {', '.join(p.name for p in written)}")
    return 0
