"""The rows `mia_bench.repro.compare` puts side by side: our settings read from the report's
summary.csv (mean and sample std over seeds) and the paper's rows of paper.csv, matched.

Units follow the papers: accuracies, attack accuracies and AUCs in % (paper.csv columns
`train_acc`, `test_acc`, `acc_<attack>`, `auc_<attack>`); training-loss statistics as they are.
A paper row is matched to our setting by every key column it fills: `dataset`, `model`,
`defense`, `shadow` (our shadow_defense) and any defense parameter (`alpha` -> defense.alpha).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from mia_bench.report.aggregate import Group, group_runs
from mia_bench.report.rows import ATTACK_METRICS as SUMMARY_METRICS
from mia_bench.report.rows import TARGET_COLS, Run

# summary.csv columns that are neither a metric nor part of a setting's identity.
BOOKKEEPING = {"run", "seed", "models", "cache_hits", "attack_cache_hits", "seconds"}
# The report's target columns in paper units: accuracies (and their gap) in %, loss
# statistics as they are.
TARGET_METRICS = {c: 100.0 if c in ("train_acc", "test_acc", "gap") else 1.0 for c in TARGET_COLS}
ATTACK_METRICS = {"auc": 100.0, "acc": 100.0}
# paper.csv key column -> summary.csv column.
KEY_ALIASES = {"shadow": "shadow_defense"}
NOT_KEYS = {"source"}


def _float(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def is_metric(col: str) -> bool:
    """A paper.csv metric column (the others are keys or the source)."""
    return col in TARGET_METRICS or col.startswith(tuple(f"{m}_" for m in ATTACK_METRICS))


def _summary_metric(col: str) -> bool:
    """A summary.csv metric column: target statistics and `<attack>.<metric>`."""
    if col in TARGET_COLS:
        return True
    # Metric names hold dots themselves (tpr_at_0.1%fpr): match the ending.
    return not col.startswith("defense.") and col.endswith(tuple(f".{m}" for m in SUMMARY_METRICS))


def _metric_values(row: dict[str, str]) -> dict[str, float]:
    """summary.csv row -> {paper-style metric name: value in paper units}."""
    out: dict[str, float] = {}
    for col, v in row.items():
        f = _float(v)
        if f is None:
            continue
        if col in TARGET_METRICS:
            out[col] = f * TARGET_METRICS[col]
        elif _summary_metric(col):
            attack, metric = col.rsplit(".", 1)
            if metric in ATTACK_METRICS:
                out[f"{metric}_{attack}"] = f * ATTACK_METRICS[metric]
    return out


def settings(rows: list[dict[str, str]]) -> list[Group]:
    """summary.csv rows -> the report's groups (`mia_bench.report.aggregate`): rows equal in
    everything that is not a seed, a metric or bookkeeping, in first-seen order, each run's
    values in paper units under paper.csv's metric names."""
    runs = []
    for row in rows:
        ident = {k: v for k, v in row.items() if k not in BOOKKEEPING and not _summary_metric(k)}
        values = {"seed": row.get("seed", ""), **_metric_values(row)}
        runs.append(Run(Path(row.get("run", "")), {**ident, **values}, {}))
    cols = list(dict.fromkeys(k for r in runs for k in r.row if not _paper_value(k)))
    params = [c for c in cols if c.startswith("defense.")]
    named = ("dataset", "model", "shadow_defense", "defense")
    others = [c for c in cols if c not in named and c not in params]
    return group_runs(runs, params, others)


def _paper_value(col: str) -> bool:
    """A column of `settings`' rows that is not part of the identity: seed or metric."""
    return col == "seed" or is_metric(col)


def _same(paper_value: str, ours: str | None) -> bool:
    a, b = _float(paper_value), _float(ours)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return paper_value.strip() == (ours or "").strip()


def paper_keys(paper_rows: list[dict[str, str]]) -> list[str]:
    cols = list(paper_rows[0]) if paper_rows else []
    return [c for c in cols if c not in NOT_KEYS and not is_metric(c)]


def our_column(key: str) -> str:
    if key in KEY_ALIASES:
        return KEY_ALIASES[key]
    if key in ("dataset", "model", "defense"):
        return key
    return f"defense.{key}"


def match(paper_row: dict[str, str], keys: list[str], ours: list[Group]) -> Group | None:
    """Our setting with every key the paper row fills; the one with most seeds if several."""
    found = [
        s
        for s in ours
        if all(_same(paper_row[k], s.key.get(our_column(k))) for k in keys if paper_row[k] != "")
    ]
    return max(found, key=lambda s: s.n) if found else None


def ours_csv(ours: list[Group]) -> str:
    """One row per setting: identity, seeds, then <metric>_mean and <metric>_std."""
    ident: list[str] = []
    metrics: list[str] = []
    for s in ours:
        for r in s.runs:
            ident += [k for k in r.row if not _paper_value(k) and k not in ident]
            metrics += [m for m in r.row if is_metric(m) and m not in metrics]
    head = [*ident, "seeds", "n"]
    for m in metrics:
        head += [f"{m}_mean", f"{m}_std"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for s in ours:
        key = s.key
        row = [key.get(k, "") for k in ident] + [" ".join(s.seeds), s.n]
        for m in metrics:
            mean, std = s.mean(m), s.std(m)
            row += ["" if mean is None else f"{mean:.6g}", "" if std is None else f"{std:.6g}"]
        w.writerow(row)
    return buf.getvalue()
