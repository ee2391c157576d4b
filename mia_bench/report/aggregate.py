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

from mia_bench.report.rows import (
    Run,
    approach_label,
    checkpoint_rows,
    fmt_value,
    run_row,
    sort_value,
)
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

    @property
    def seeds(self) -> list[Any]:
        return [r.row.get("seed") for r in self.runs]

    @property
    def key(self) -> dict[str, Any]:
        """What the runs share, as summary.csv columns: dataset, model, shadow defense,
        defense, `defense.<param>` and the other settings."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "shadow_defense": self.shadow_defense,
            "defense": self.defense,
            **{f"defense.{k}": v for k, v in self.params.items()},
            **self.setting,
        }

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
        return (*group_key(r.row, param_cols, settings), sort_value(r.row["seed"]))

    runs.sort(key=key)
    runs, duplicates = _drop_duplicates(runs, key)
    groups = group_runs(runs, param_cols, settings)
    return Collection(runs, groups, attacks, param_cols, settings, jobs + duplicates)


def group_key(row: dict[str, Any], param_cols: list[str], settings: list[str]) -> tuple:
    """What a run's group is known by (everything but the seed), in table order: dataset,
    model, attacker, the undefended model first, defense, its parameters, other settings."""
    return (
        str(row.get("dataset")),
        str(row.get("model")),
        str(row.get("shadow_defense")),
        row.get("defense") != "none",
        str(row.get("defense")),
        tuple(sort_value(row.get(c)) for c in param_cols),
        tuple(sort_value(row.get(c)) for c in settings),
    )


def group_runs(runs: list[Run], param_cols: list[str], settings: list[str]) -> list[Group]:
    """Runs that differ only in seed, in first-seen order; `param_cols` ("defense.<param>")
    and `settings` (other columns) are the columns besides dataset, model, shadow_defense and
    defense that tell groups apart."""
    groups: dict[tuple, Group] = {}
    for r in runs:
        gk = group_key(r.row, param_cols, settings)
        if gk not in groups:
            row = r.row
            params = {c[len("defense.") :]: row[c] for c in param_cols if c in row}
            groups[gk] = Group(
                row.get("dataset"),
                row.get("model"),
                row.get("shadow_defense"),
                row.get("defense"),
                params,
                {k: row.get(k) for k in settings},
            )
        groups[gk].runs.append(r)
    return list(groups.values())


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
