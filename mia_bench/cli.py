"""Hydra entry point: `python -m mia_bench [overrides]` runs one experiment, `-m` a sweep."""

from __future__ import annotations

import errno
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mia_bench import conf_dir
from mia_bench.confhelp import help_text
from mia_bench.config import validate
from mia_bench.devices import pick_job_device
from mia_bench.errors import ConfigError, DivergenceError
from mia_bench.report.runs import clear_error, write_error

log = logging.getLogger("mia_bench")
CONF_DIR = str(conf_dir())
# hydra.help.template (conf/config.yaml) asks this for the --help text, made from conf/ itself.
OmegaConf.register_new_resolver("mia_bench_help", lambda: help_text(CONF_DIR), replace=True)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    # heavy imports after Hydra has parsed --help etc.
    from mia_bench.experiment import run as pipeline

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:
        cfg.progress = False  # one bar per job would interleave into noise
        cfg.device = pick_job_device(cfg.device, hc.job.num)
    out = hc.runtime.output_dir
    overrides = list(hc.overrides.task)
    job = hc.job.num if multirun else None
    clear_error(out)
    try:
        validate(cfg)
        if cfg.cpu_threads is not None:
            import torch

            torch.set_num_threads(int(cfg.cpu_threads))
        results = pipeline.run(cfg, out)
    except Exception as err:
        try:
            marker = write_error(out, err, job=job, overrides=overrides)
        except OSError:  # e.g. the disk that made the run fail is full
            marker = None
        if multirun:
            # Returning instead of raising lets every launcher finish the other jobs (the basic
            # launcher would skip later batches; joblib cannot always pickle the exception back).
            # The sweep's end-of-run callback counts the failures and sets the exit status.
            log.error(
                "job %s FAILED: %s | %s: %s | traceback in %s",
                job,
                " ".join(overrides) or "(defaults)",
                type(err).__name__,
                err,
                marker,
            )
            return None
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise  # the way to see the traceback of any failure
        if isinstance(err, ConfigError):
            print(f"mia_bench: invalid setting {err}", file=sys.stderr)
            sys.exit(2)
        if isinstance(err, DivergenceError):
            print(f"mia_bench: training diverged: {err}", file=sys.stderr)
            sys.exit(1)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            print(f"mia_bench: {disk_full_message(err, cfg)}", file=sys.stderr)
            sys.exit(1)
        raise
    from mia_bench.experiment.summary import format_summary

    if multirun:
        aucs = [m["auc"] for m in results["attacks"].values() if m["auc"] is not None]
        best = max(aucs, default=float("nan"))
        log.info(
            "job %s done: %s | test acc %.3f | max AUC %.3f | %s",
            job,
            " ".join(overrides) or "(defaults)",
            results["target"]["test_acc"],
            best,
            out,
        )
    else:
        print(format_summary(results))
        print(f"results written to {out}/ (results.json, scores.npz, split.npz, summary.md)")
    return results["target"]["test_acc"]


def disk_full_message(err: OSError, cfg: DictConfig) -> str:
    """One line for a full disk: the folder being written and the setting that moves it.
    Files are written atomically, so nothing partial was left behind."""
    where = Path(err.filename).parent if err.filename else None
    cache = Path(str(cfg.paths.cache_dir)).expanduser().resolve()
    in_cache = where is not None and where.resolve().is_relative_to(cache)
    key = "paths.cache_dir" if in_cache else "hydra.run.dir"
    return (
        f"no space left on device writing to {where or 'the disk'}/; free space there or "
        f"choose another folder with {key}=... (no partial file was left)"
    )
