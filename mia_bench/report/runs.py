"""Run folders on disk: which jobs of a run or sweep finished, failed, or never ran.

A job folder gets `.hydra/` when Hydra starts the job, `results.json` when the run completes
(written last, atomically), and `error.json` when the job raises (written by the CLI). A sweep
folder also holds Hydra's `multirun.yaml`, from which the full list of jobs of a basic-sweeper
sweep is rebuilt, so jobs that never started (a sweep killed half-way) are listed too.
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mia_bench.io import atomic_write_json

RESULTS = "results.json"
ERROR = "error.json"
SCORES = "scores.npz"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


@dataclass
class Job:
    """One job folder (or one expected job without a folder, status "missing")."""

    path: Path
    # ok | failed (error.json) | incomplete (.hydra only) | unreadable | missing
    status: str
    detail: str = ""
    overrides: list[str] = field(default_factory=list)
    results: dict[str, Any] | None = None


def write_error(
    out: str | Path, err: BaseException, *, job: int | None, overrides: list[str]
) -> Path:
    """Record why a job failed, next to its `.hydra/`, for `mia_bench.report` to list."""
    path = Path(out) / ERROR
    atomic_write_json(
        path,
        {
            "job": job,
            "overrides": list(overrides),
            "error": f"{type(err).__name__}: {err}",
            "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
        },
    )
    return path


def clear_error(out: str | Path) -> None:
    """Drop the marker of an earlier failed attempt in the same folder."""
    (Path(out) / ERROR).unlink(missing_ok=True)


def _overrides(folder: Path) -> list[str]:
    try:
        loaded = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return []
    return [str(o) for o in loaded] if isinstance(loaded, list) else []


def read_job(folder: Path) -> Job:
    folder = Path(folder)
    overrides = _overrides(folder)
    res_path, err_path = folder / RESULTS, folder / ERROR
    if res_path.exists():
        try:
            results = json.loads(res_path.read_text())
            if not isinstance(results, dict) or "target" not in results or "attacks" not in results:
                raise ValueError("no 'target' or 'attacks' key")
        except (OSError, ValueError) as err:
            return Job(folder, "unreadable", f"{RESULTS}: {err}", overrides)
        return Job(folder, "ok", "", overrides, results)
    if err_path.exists():
        try:
            detail = str(json.loads(err_path.read_text()).get("error", "unknown error"))
        except (OSError, ValueError, AttributeError):
            detail = f"unreadable {ERROR}"
        return Job(folder, "failed", detail, overrides)
    return Job(
        folder, "incomplete", f"no {RESULTS}: interrupted, killed, or still running", overrides
    )


def expected_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """The override list of every job of a basic-sweeper sweep, in job order, rebuilt from
    `multirun.yaml` the way Hydra's BasicSweeper builds it; None when that is not possible."""
    try:
        cfg = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())
        hydra_cfg = cfg["hydra"]
        if hydra_cfg["sweeper"]["_target_"] != BASIC_SWEEPER:
            return None
        from mia_bench.overrides import expand

        params = hydra_cfg["sweeper"].get("params") or {}
        args = [f"{k}={v}" for k, v in params.items()] + list(hydra_cfg["overrides"]["task"])
        return expand(args)
    except Exception:  # noqa: BLE001 - an odd sweep folder only loses the "missing" list
        return None


def _is_job(folder: Path) -> bool:
    return any((folder / name).exists() for name in (RESULTS, ERROR, ".hydra"))


def find_jobs(roots: list[str | Path]) -> list[Job]:
    """Every job folder under `roots` (each root may itself be one), in path order, plus the
    jobs of each sweep found there that have no folder at all."""
    jobs: dict[Path, Job] = {}
    sweeps: list[Path] = []
    for root in map(Path, roots):
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if d != ".hydra")
            if "multirun.yaml" in filenames:
                sweeps.append(here)
            if _is_job(here) and here.resolve() not in jobs:
                jobs[here.resolve()] = read_job(here)
    found = sorted(jobs.values(), key=lambda j: _natural(j.path))
    for sweep in sweeps:
        expected = expected_jobs(sweep)
        if expected is None:
            continue
        seen = {
            frozenset(j.overrides) for j in found if sweep.resolve() in j.path.resolve().parents
        }
        for num, ovr in enumerate(expected):
            if frozenset(ovr) not in seen:
                found.append(Job(sweep / f"#{num}", "missing", "never started", list(ovr)))
    return found


def _natural(path: Path) -> list[Any]:
    """Sort key that puts job 10 after job 9."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts]
