"""One run's results.json -> its summary.csv row (and one row per checkpoint of a run that
kept them): the row's columns and how values are written and sorted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mia_bench.metrics import METRIC_KEYS
from mia_bench.report.runs import Job

TARGET_COLS = [
    "train_acc",
    "test_acc",
    "gap",
    "train_loss_mean",
    "train_loss_var",
    "test_loss_mean",
    "test_loss_var",
]
# summary.csv's columns of each attack: every metric but the AUC's confidence interval (a pair;
# each run's summary.md shows it).
ATTACK_METRICS = [m for m in METRIC_KEYS if m != "auc_ci95"]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> dotted keys; lists become their text so that they can be compared."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v) if isinstance(v, list | tuple) else v
    return out


def defense_params(results: dict[str, Any]) -> dict[str, Any]:
    """The defense's parameters: its config (minus name/_target_) updated by what the defense
    itself recorded in results.json["defense"]."""
    cfg = (results.get("config") or {}).get("defense") or {}
    params = {k: v for k, v in cfg.items() if k not in ("name", "_target_")}
    params.update({k: v for k, v in (results.get("defense") or {}).items() if k != "name"})
    return {k: (str(v) if isinstance(v, list | dict) else v) for k, v in params.items()}


def approach_label(defense: str, params: dict[str, Any]) -> str:
    inner = ", ".join(f"{k}={fmt_value(v)}" for k, v in params.items())
    return f"{defense} ({inner})" if inner else defense


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "-" if v is None else str(v)


def sort_value(v: Any) -> tuple:
    """Numbers in numeric order, before text; None first."""
    if v is None:
        return (0, 0.0, "")
    if isinstance(v, bool) or not isinstance(v, int | float):
        return (2, 0.0, str(v))
    return (1, float(v), "")


@dataclass
class Run:
    path: Path
    row: dict[str, Any]  # the summary.csv row
    config: dict[str, Any]  # flattened config
    overrides: list[str] = field(default_factory=list)
    # results.json as read once by mia_bench.report.runs (empty for a checkpoint that is not the
    # final model, whose own folder has none)
    results: dict[str, Any] = field(default_factory=dict)


def run_row(job: Job) -> Run:
    r = job.results or {}
    cfg = r.get("config") or {}
    name = (r.get("defense") or {}).get("name") or (cfg.get("defense") or {}).get("name", "none")
    params = defense_params(r)
    shadow = r.get("shadow") or {}
    row: dict[str, Any] = {
        "run": str(job.path),
        "dataset": (cfg.get("dataset") or {}).get("name"),
        "model": (cfg.get("model") or {}).get("name"),
        "defense": name,
        **{f"defense.{k}": v for k, v in params.items()},
        "approach": approach_label(name, params),
        "seed": cfg.get("seed"),
        "shadow_defense": shadow.get("defense", (cfg.get("shadow") or {}).get("defense")),
        "shadow_count": shadow.get("count"),
    }
    target = r.get("target") or {}
    row.update({c: target.get(c) for c in TARGET_COLS})
    for attack, metrics in (r.get("attacks") or {}).items():
        row.update({f"{attack}.{m}": metrics.get(m) for m in ATTACK_METRICS})
    models = r.get("models") or {}
    row["models"] = len(models)
    row["cache_hits"] = sum(bool(m.get("cache_hit")) for m in models.values())
    row["attack_cache_hits"] = sum(map(bool, (r.get("attack_cache_hits") or {}).values()))
    row["seconds"] = round(sum((r.get("timing") or {}).values()), 3)
    return Run(job.path, row, flatten(cfg), job.overrides, r)


def checkpoint_rows(job: Job, run: Run) -> list[Run]:
    """A run that kept checkpoints (early stopping, results.json "checkpoints") becomes one row
    per checkpoint, each one point of the privacy-utility curve (RelaxLoss App. B.5): the
    defense parameter `epochs` (the list) gives way to `epoch`, and the checkpoint's target and
    attack numbers replace the final ones. Only the last checkpoint, the final model, keeps
    the run's folder (its scores.npz) for the ROC and loss plots."""
    cps = sorted(((job.results or {}).get("checkpoints") or {}).values(), key=lambda c: c["epoch"])
    if not cps:
        return [run]
    out = []
    for i, cp in enumerate(cps):
        row = {k: v for k, v in run.row.items() if k != "defense.epochs"}
        row["defense.epoch"] = cp["epoch"]
        params = {k[len("defense.") :]: v for k, v in row.items() if k.startswith("defense.")}
        row["approach"] = approach_label(row["defense"], params)
        row.update({c: (cp.get("target") or {}).get(c) for c in TARGET_COLS})
        for attack, metrics in (cp.get("attacks") or {}).items():
            row.update({f"{attack}.{m}": (metrics or {}).get(m) for m in ATTACK_METRICS})
        last = i == len(cps) - 1
        path = run.path if last else run.path / f"checkpoint-{cp['epoch']}"
        out.append(Run(path, row, run.config, run.overrides, run.results if last else {}))
    return out
