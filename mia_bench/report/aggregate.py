"""Many results.json files -> one row per run, and groups of runs that differ only in seed.

A run's identity is its dataset, model, shadow mode (adaptive or not), approach (defense name
and parameters) and every other config key that varies across the runs being aggregated
("settings", e.g. trainer.epochs in an early-stopping sweep); the seed is what a group averages
over. Standard deviations are sample standard deviations (ddof=1) over the group's seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mia_bench.report.runs import RESULTS, Job, find_jobs

# Config keys that never define a setting: bookkeeping, or shown in their own column.
NOT_SETTINGS = (
    "seed",
    "paths.",
    "progress",
    "device",
    "cache",
    "defense.",
    "dataset.name",
    "model.name",
    "shadow.defense",
)
TARGET_COLS = [
    "train_acc",
    "test_acc",
    "gap",
    "train_loss_mean",
    "train_loss_var",
    "test_loss_mean",
    "test_loss_var",
]
ATTACK_METRICS = ["auc", "acc", "tpr_at_0.1%fpr", "tpr_at_1%fpr", "advantage"]


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


@dataclass
class Group:
    """Runs that differ only in seed."""

    dataset: str
    model: str
    shadow_defense: str
    defense: str
    params: dict[str, Any]
    setting: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    @property
    def approach(self) -> str:
        return approach_label(self.defense, self.params)

    @property
    def n(self) -> int:
        return len(self.runs)

    def values(self, col: str) -> np.ndarray:
        vals = [r.row.get(col) for r in self.runs]
        return np.array([v for v in vals if v is not None and not _isnan(v)], dtype=float)

    def mean(self, col: str) -> float | None:
        v = self.values(col)
        return float(v.mean()) if len(v) else None

    def std(self, col: str) -> float | None:
        v = self.values(col)
        return float(v.std(ddof=1)) if len(v) > 1 else None

    def first_run(self) -> Run:
        """The run with the lowest seed (for per-run plots)."""
        return min(self.runs, key=lambda r: sort_value(r.row.get("seed")))


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


@dataclass
class Collection:
    runs: list[Run]
    groups: list[Group]
    attacks: list[str]  # result names, first-seen order
    param_cols: list[str]  # "defense.<param>" columns
    settings: list[str]  # config keys besides seed that vary between runs
    jobs: list[Job]  # every job found, failed ones included

    @property
    def problems(self) -> list[Job]:
        return [j for j in self.jobs if j.status != "ok"]


def varying_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Keys with more than one distinct value among the runs that have them. A `_target_`
    (the class behind an option) is not one: the option's name already differs."""
    seen: dict[str, set[str]] = {}
    for c in configs:
        for k, v in c.items():
            if not k.startswith(NOT_SETTINGS) and not k.endswith("_target_"):
                seen.setdefault(k, set()).add(repr(v))
    return [k for k, vals in seen.items() if len(vals) > 1]


def collect(roots: list[str | Path]) -> Collection:
    jobs = find_jobs(roots)
    runs = [r for j in jobs if j.status == "ok" for r in checkpoint_rows(j, run_row(j))]
    settings = varying_keys([r.config for r in runs])
    attacks: list[str] = []
    param_cols: list[str] = []
    for r in runs:
        r.row.update({k: r.config.get(k) for k in settings})
        attacks += [
            c[: -len(".auc")] for c in r.row if c.endswith(".auc") and c[:-4] not in attacks
        ]
        param_cols += [c for c in r.row if c.startswith("defense.") and c not in param_cols]

    def key(r: Run) -> tuple:
        row = r.row
        return (
            str(row["dataset"]),
            str(row["model"]),
            str(row["shadow_defense"]),
            row["defense"] != "none",
            str(row["defense"]),
            tuple(sort_value(row.get(c)) for c in param_cols),
            tuple(sort_value(row.get(c)) for c in settings),
            sort_value(row["seed"]),
        )

    runs.sort(key=key)
    runs, duplicates = _drop_duplicates(runs, key)
    groups: dict[tuple, Group] = {}
    for r in runs:
        gk = key(r)[:-1]
        if gk not in groups:
            row = r.row
            params = {c[len("defense.") :]: row[c] for c in param_cols if c in row}
            groups[gk] = Group(
                row["dataset"],
                row["model"],
                row["shadow_defense"],
                row["defense"],
                params,
                {k: row.get(k) for k in settings},
            )
        groups[gk].runs.append(r)
    return Collection(runs, list(groups.values()), attacks, param_cols, settings, jobs + duplicates)


def _drop_duplicates(runs: list[Run], key) -> tuple[list[Run], list[Job]]:
    """A setting and seed run twice (a repeated sweep, two folders given) counts once: the run
    whose results.json is newest is kept, so that a seed never weighs double in a mean."""
    best: dict[tuple, Run] = {}
    for r in runs:
        k = key(r)
        if k not in best or _mtime(r) >= _mtime(best[k]):
            best[k] = r
    kept = {id(r) for r in best.values()}
    dropped = [
        Job(
            r.path,
            "duplicate",
            f"same setting and seed as {best[key(r)].path}, which is newer",
            r.overrides,
        )
        for r in runs
        if id(r) not in kept
    ]
    return [r for r in runs if id(r) in kept], dropped


def _mtime(r: Run) -> float:
    try:
        return (r.path / RESULTS).stat().st_mtime
    except OSError:
        return 0.0


def short_names(keys: list[str]) -> dict[str, str]:
    """trainer.epochs -> epochs, unless two keys would get the same short name."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def group_label(g: Group, settings: list[str]) -> str:
    names = short_names(settings)
    extra = ", ".join(f"{names[k]}={fmt_value(g.setting.get(k))}" for k in settings)
    return f"{g.approach}, {extra}" if extra else g.approach
