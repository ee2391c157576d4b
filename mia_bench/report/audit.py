"""The report's audit part (runs with `audit=canaries`), written by `python -m mia_bench.report`:

audit.csv, audit.md        per run / mean over seeds: test accuracy, population AUC, canary
                           AUC and TPR at 0.1% / 1% FPR, the two empirical epsilon lower bounds
                           and the accountant's epsilon (DP-SGD), all of the ranking attack
                           (LiRA online when it ran, else loss)
audit_privacy_utility.png  canary TPR at 0.1% FPR vs test accuracy, one point per defense
                           setting (Aerni, Zhang & Tramer, CCS 2024, Fig. 1's axes); TPR at 1%
                           FPR where no run has the >= 1000 OUT canaries that 0.1% needs
audit_epsilon.png          empirical epsilon lower bounds vs the accountant's epsilon
vulnerable.md              the most vulnerable training samples of each setting's first run
                           (dataset index, label as trained, score, canary or not)
vulnerable_<i>_<setting>.png  for image data: a grid of those 32 images with their labels
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from mia_bench.audit.results import ranking_attack

COLUMNS = [
    "dataset",
    "model",
    "defense",
    "shadow_defense",
    "seed",
    "test_acc",
    "attack",
    "population_auc",
    "canary_auc",
    "canary_tpr_at_0.1%fpr",
    "canary_tpr_at_1%fpr",
    "eps_clopper_pearson",
    "eps_one_run",
    "eps_theory",
    "poisson_sampling",
]
MEAN_COLUMNS = COLUMNS[5:6] + COLUMNS[7:14]


def audit_row(run_dir: Path, row: dict[str, Any], results: dict[str, Any]) -> dict[str, Any] | None:
    """One run's audit numbers (from its results.json, as read once), or None for a run
    without an audit."""
    audit = results.get("audit")
    if not audit or not audit.get("canaries"):
        return None
    names = [n for n, m in audit["canaries"].items() if m is not None]
    if not names:
        return None
    attack = ranking_attack(names)
    can, bound = audit["canaries"][attack], audit["epsilon_lower_bound"][attack]
    theory = audit.get("epsilon_theory") or {}
    return {
        "dataset": row.get("dataset"),
        "model": row.get("model"),
        "defense": row.get("defense"),
        "_params": {
            k: v
            for k, v in ((results.get("config") or {}).get("defense") or {}).items()
            if k not in ("name", "_target_")
        },
        "shadow_defense": row.get("shadow_defense"),
        "seed": row.get("seed"),
        "test_acc": row.get("test_acc"),
        "attack": attack,
        "population_auc": (results.get("attacks") or {}).get(attack, {}).get("auc"),
        "canary_auc": can["auc"],
        "canary_tpr_at_0.1%fpr": can["tpr_at_0.1%fpr"],
        "canary_tpr_at_1%fpr": can["tpr_at_1%fpr"],
        "eps_clopper_pearson": bound["clopper_pearson"]["epsilon"],
        "eps_one_run": bound["one_run"]["epsilon"],
        "eps_theory": theory.get("epsilon"),
        "poisson_sampling": theory.get("poisson_sampling"),
        "_dir": run_dir,
    }


def label_defenses(rows: list[dict[str, Any]]) -> None:
    """Name each row's defense by its name and the parameters that vary among the audited runs
    of that defense (e.g. "dp_sgd (noise_multiplier=2.0)")."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_name.setdefault(r["defense"], []).append(r)
    for name, group in by_name.items():
        keys = sorted({k for r in group for k in r["_params"]})
        vary = [k for k in keys if len({repr(r["_params"].get(k)) for r in group}) > 1]
        for r in group:
            inner = ", ".join(f"{k}={r['_params'].get(k)}" for k in vary)
            r["defense"] = f"{name} ({inner})" if inner else name


def mean_std(values: list[Any]) -> tuple[float | None, float | None]:
    """Mean and (population) standard deviation of the values that are not None."""
    v = [float(x) for x in values if x is not None]
    return (float(np.mean(v)), float(np.std(v))) if v else (None, None)


def _fmt(m: float | None, s: float | None) -> str:
    if m is None:
        return "n/a"
    return f"{m:.3f}" if not s else f"{m:.3f} ± {s:.3f}"


def settings(rows: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Rows grouped by everything but the seed, in first-seen order."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["dataset"], r["model"], r["defense"], r["shadow_defense"]), []).append(r)
    return out


# DP-SGD at matched utility: at most this far below the undefended model's test accuracy
MATCHED_GAP = 0.05


def matched_dp_sgd(rows: list[dict[str, Any]], gap: float = MATCHED_GAP) -> dict[tuple, tuple]:
    """Per (dataset, model, attacker): the DP-SGD setting with the smallest accountant epsilon
    among those whose mean test accuracy is within `gap` of the undefended model's, the
    reference row Aerni, Zhang & Tramer (CCS 2024, Sec. 5.1) ask every defense to be set
    against. Settings are keys of `settings(rows)`."""
    groups = settings(rows)
    out = {}
    for key, group in groups.items():
        if key[2] != "none":
            continue
        base = mean_std([r["test_acc"] for r in group])[0]
        dp = [
            (k, g)
            for k, g in groups.items()
            if k[:2] == key[:2] and k[3] == key[3] and k[2].startswith("dp_sgd")
        ]
        ok = [
            (eps, k)
            for k, g in dp
            if (acc := mean_std([r["test_acc"] for r in g])[0]) is not None
            and base is not None
            and acc >= base - gap
            and (eps := mean_std([r["eps_theory"] for r in g])[0]) is not None
        ]
        if ok:
            out[(key[0], key[1], key[3])] = min(ok)[1]
    return out


def audit_tables(rows: list[dict[str, Any]], gap: float = MATCHED_GAP) -> tuple[str, str]:
    """(csv of every run, markdown of the means over seeds; the DP-SGD setting at matched
    utility first, marked)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    head = ["dataset", "model", "defense", "attacker", "seeds", *MEAN_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = settings(rows)
    matched = set(matched_dp_sgd(rows, gap).values())
    order = sorted(groups, key=lambda k: k not in matched)
    for key in order:
        group = groups[key]
        (dataset, model, defense, shadow) = key
        name = f"**DP-SGD at matched utility**: {defense}" if key in matched else str(defense)
        cells = [str(dataset), str(model), name, f"shadow.defense={shadow}"]
        cells.append(str(len(group)))
        cells += [_fmt(*mean_std([r.get(c) for r in group])) for c in MEAN_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "\nAll columns but test_acc are those of the ranking attack (`attack` in audit.csv). "
        "eps_*: empirical lower bounds at 95% confidence (Clopper-Pearson over thresholds with "
        "a Bonferroni correction; Steinke et al. 2023's one-run bound); eps_theory: the "
        "accountant's epsilon at the same delta (DP-SGD only). DP-SGD at matched utility: "
        f"the DP-SGD setting with the smallest eps_theory whose test accuracy is at most {gap} "
        "below the undefended model's (none found when no such row is marked).\n"
    )
    return buf.getvalue(), "\n".join(lines) + "\n" + note


def vulnerable_table(rows: list[dict[str, Any]], k: int = 10) -> str:
    parts = [
        "# Most vulnerable training samples\n\nMembers of the target with the highest "
        "membership score: LiRA online's calibrated score when it ran; the loss attack's "
        "ranking (which favours easy samples, not outliers) otherwise.\n"
    ]
    for key, group in settings(rows).items():
        path = group[0]["_dir"] / "vulnerable.npz"
        if not path.exists():
            continue
        with np.load(path) as z:
            v = {n: z[n] for n in z.files}
        parts.append(
            f"\n## {' / '.join(map(str, key[:3]))}, seed {group[0]['seed']} "
            f"(ranked by {v['attack']})\n\n| rank | index | label | score | canary |\n|---|---|---|---|---|"
        )
        for i in range(min(k, len(v["index"]))):
            parts.append(
                f"| {i + 1} | {int(v['index'][i])} | {int(v['label'][i])} | "
                f"{float(v['score'][i]):.4g} | {'yes' if v['canary'][i] else 'no'} |"
            )
    return "\n".join(parts) + "\n"
