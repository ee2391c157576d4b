"""The table printed at the end of a run and saved as summary.md."""

from __future__ import annotations

from typing import Any


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def _param(v: object) -> str:
    """A defense parameter for people: floats to 4 significant digits (DP-SGD's epsilon
    17.943263642638655 reads 17.94); results.json keeps every digit."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _ci(v: list[float] | None) -> str:
    return "n/a" if v is None else f"{v[0]:.3f}-{v[1]:.3f}"


def _reference_line(ref: dict[str, Any] | None) -> list[str]:
    if not ref:
        return []
    return [
        f"reference models (LiRA / RMIA): {ref['num_models']}, each on a random half of a "
        f"population of {ref['population']}, defense={ref['defense']}"
    ]


def format_summary(results: dict[str, Any]) -> str:
    t = results["target"]
    d = results["defense"]
    params = ", ".join(f"{k}={_param(v)}" for k, v in d.items() if k != "name")
    sh = results["shadow"]
    lines = [
        f"dataset {results['config']['dataset']['name']} | model {results['config']['model']['name']} | "
        f"defense {d['name']}{f' ({params})' if params else ''} | seed {results['config']['seed']}",
        f"shadows: {sh['count']}, trained with defense={sh['defense']}"
        f" ({'adaptive' if sh['adaptive'] else 'non-adaptive'} attacker)",
        *_reference_line(results.get("reference")),
        "",
        f"target: train acc {_fmt(t['train_acc'], True)}, test acc {_fmt(t['test_acc'], True)}, "
        f"members {t['n_members']}, non-members {t['n_nonmembers']}",
        "",
        "| attack | AUC | AUC 95% CI | acc | TPR@0.1%FPR | TPR@1%FPR | advantage |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in results["attacks"].items():
        lines.append(
            f"| {name} | {_fmt(m['auc'])} | {_ci(m.get('auc_ci95'))} | {_fmt(m['acc'])} | "
            f"{_fmt(m['tpr_at_0.1%fpr'])} | "
            f"{_fmt(m['tpr_at_1%fpr'])} | {_fmt(m['advantage'])} |"
        )
    unresolved = any(
        m.get(k) is None and not m.get("not_applicable")
        for m in results["attacks"].values()
        for k in ("auc_ci95", "tpr_at_0.1%fpr", "tpr_at_1%fpr")
    )
    if unresolved:
        lines += [
            "",
            f"n/a: not resolvable with {t['n_members']} members / {t['n_nonmembers']} "
            "non-members (TPR at an FPR below 1/non-members; the AUC interval below 100 of "
            "each or with zero variance)",
        ]
    na = {
        name: m["not_applicable"]
        for name, m in results["attacks"].items()
        if m.get("not_applicable")
    }
    if na:
        lines += ["", *(f"{name}: not applicable ({why})" for name, why in na.items())]
    if results.get("checkpoints"):
        lines += ["", *checkpoint_table(results)]
    return "\n".join(lines) + "\n"


def checkpoint_table(results: dict[str, Any]) -> list[str]:
    """Early stopping: one row per checkpoint, attack AUCs side by side."""
    entries = sorted(results["checkpoints"].values(), key=lambda e: e["epoch"])
    names = list(entries[0]["attacks"])
    lines = [
        "checkpoints (attack AUC per epoch):",
        "",
        "| epoch | train acc | test acc | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for e in entries:
        t = e["target"]
        aucs = " | ".join(_fmt(e["attacks"][n]["auc"]) for n in names)
        lines.append(
            f"| {e['epoch']} | {_fmt(t['train_acc'], True)} | {_fmt(t['test_acc'], True)} | {aucs} |"
        )
    return lines
