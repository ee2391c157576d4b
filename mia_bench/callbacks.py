"""Hydra callbacks (wired in conf/config.yaml under hydra.callbacks)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mia_bench.runs import find_jobs


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
