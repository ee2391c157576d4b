"""Hydra callbacks (wired in conf/config.yaml under hydra.callbacks)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mia_bench.report.runs import find_jobs


class SweepSummary(Callback):
    """At the end of a multirun: how many jobs finished, which failed, and the command that
    turns the sweep folder into tables and plots.

    Jobs catch their own errors (see cli.py), so this runs even when some failed. Hydra turns
    an exception raised by a callback into a warning, so a sweep with failed jobs ends through
    SystemExit(1) to keep a non-zero exit status for scripts.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = find_jobs([sweep_dir])
        ok = [j for j in jobs if j.status == "ok"]
        bad = [j for j in jobs if j.status != "ok"]
        print(f"sweep finished: {len(ok)} of {len(jobs)} jobs have results in {sweep_dir}/")
        for j in bad:
            print(
                f"  job {j.path.name.lstrip('#')} {j.status}: {j.detail} [{' '.join(j.overrides)}]"
            )
        print(f"report: python -m mia_bench.report {sweep_dir}")
        sys.stdout.flush()
        if bad:
            sys.exit(1)


def output_problem(folder: Path) -> str | None:
    """Why `folder` cannot be created and written to, or None. Creates nothing: the nearest
    existing ancestor must be a folder that takes a (temporary, removed) file."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        return f"{existing} is not writable ({err.strerror})"
    return None


class OutputCheck(Callback):
    """Before Hydra creates the run (or sweep) folder: refuse one that cannot be written, with
    the one-line message of every bad setting instead of Hydra's traceback.
    `HYDRA_FULL_ERROR=1` leaves the failure to Hydra, traceback included."""

    def _check(self, folder: object, key: str) -> None:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            return
        problem = output_problem(Path(str(folder)))
        if problem:
            print(
                f"mia_bench: invalid setting {key}: cannot write the output folder {folder}: "
                f"{problem}; choose another with {key}=...",
                file=sys.stderr,
            )
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")
