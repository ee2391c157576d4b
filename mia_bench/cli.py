"""Hydra entry point: `python -m mia_bench [overrides]` runs one experiment, `-m` a sweep."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mia_bench.config import validate
from mia_bench.devices import pick_job_device
from mia_bench.errors import ConfigError, DivergenceError
from mia_bench.io import atomic_write_json

log = logging.getLogger("mia_bench")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    from mia_bench import pipeline  # heavy imports after Hydra has parsed --help etc.

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:
        cfg.progress = False  # one bar per job would interleave into noise
        cfg.device = pick_job_device(cfg.device, hc.job.num)
    out = hc.runtime.output_dir
    try:
        validate(cfg)
        results = pipeline.run(cfg, out)
    except (ConfigError, DivergenceError) as err:
        # Mark the job as failed (the report lists it); results.json is never written for it.
        kind = "invalid setting" if isinstance(err, ConfigError) else "training diverged"
        atomic_write_json(
            Path(out) / "failed.json",
            {"error": kind, "message": str(err), "overrides": list(hc.overrides.task)},
        )
        if multirun:
            raise  # Hydra's launchers record the failure and go on with the other jobs
        print(f"mia_bench: {kind}: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 1)
    from mia_bench.summary import format_summary

    if multirun:
        best = max((m["auc"] for m in results["attacks"].values()), default=float("nan"))
        log.info(
            "job %s done: %s | test acc %.3f | max AUC %.3f | %s",
            hc.job.num,
            " ".join(hc.overrides.task) or "(defaults)",
            results["target"]["test_acc"],
            best,
            out,
        )
    else:
        print(format_summary(results))
        print(f"results written to {out}/ (results.json, scores.npz, split.npz, summary.md)")
    return results["target"]["test_acc"]
