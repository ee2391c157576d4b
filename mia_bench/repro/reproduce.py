"""`python -m mia_bench.repro.reproduce TARGET`: run a paper table's sweeps, report, compare.

For each sweep of the target (mia_bench.repro.targets) one `python -m mia_bench -m ...` multirun,
then `mia_bench.report` over all of them and `mia_bench.repro.compare` (ours.csv, comparison.md).

  --scale full   the papers' settings; runs in outputs/tables/<target>/, report and
                 comparison in experiments/<target>/ (datasets from paths.data_dir).
  --scale smoke  the same sweeps on fake files of the real formats and shapes (written by
                 mia_bench.repro.fakedata), one epoch, small subsets, each defense parameter sweep
                 cut to its two ends, own model cache; everything in outputs/smoke/ (--root),
                 never over the committed results.

A rerun resumes: a job whose folder already holds results of the same config is skipped, and
trained models come from the model cache. Different seeds get their own run folders.
"""

from __future__ import annotations

import argparse
import io
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mia_bench.overrides import key_of, list_items, merge, sweep_values
from mia_bench.repro.targets import TARGETS, Sweep, Target

LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm", "slurm", "ray")
# Samples per fake dataset and the pool a smoke run uses of it (image folds of 10 samples).
SMOKE_FILE_SAMPLES = 200
SMOKE_MAX_SAMPLES = 50
# Embedded data is generated, not read: a larger pool keeps every class in the small folds.
SMOKE_MAX_SAMPLES_EMBEDDED = 400
# Attack keys shrunk at smoke scale, applied only when the attack is in the sweep's list.
SMOKE_ATTACK = {"nn": "attack.nn.epochs=2", "lira": "attack.lira.num_models=2"}


@dataclass
class Plan:
    """Where one target's runs, report and comparison go, and the overrides every sweep gets."""

    target: Target
    runs: Path
    out: Path
    common: list[str]
    smoke: bool


def _quote(path: Path) -> str:
    """A path as a Hydra value: quoted when it holds characters that Hydra's override grammar
    would parse (commas sweep, brackets make lists, spaces split)."""
    text = str(path)
    if re.fullmatch(r"[A-Za-z0-9_./~-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _attacks(sweep: Sweep) -> list[str]:
    for o in sweep.overrides:
        if key_of(o) == "attack":
            return list_items(o)
    return []


def launcher_overrides(launcher: str, jobs: int | None) -> list[str]:
    if launcher not in LAUNCHERS:
        raise SystemExit(
            f"mia_bench.repro.reproduce: unknown launcher {launcher!r}; choose one of {LAUNCHERS}"
        )
    if launcher == "basic":
        return []
    out = [f"hydra/launcher={launcher}"]
    if jobs is not None and launcher == "joblib":
        out.append(f"hydra.launcher.n_jobs={jobs}")
    return out


def plan(target: Target, args: argparse.Namespace) -> Plan:
    smoke = args.scale == "smoke"
    seeds_dir = "seeds-" + args.seeds.replace(",", "-")
    if smoke:
        root = Path(args.root)
        runs = root / "runs" / target.name / seeds_dir
        out = root / target.name
        # Smoke splits are far below the size that resolves an FPR level: accepted on purpose.
        common = [
            f"paths.cache_dir={_quote(root / 'cache')}",
            "trainer.epochs=1",
            "split.min_queries=1",
        ]
        if target.needs_files:
            common += [
                f"paths.data_dir={_quote(root / 'data')}",
                "++dataset.verify=false",  # ++: the base config (before the sweep) has no such key
                f"split.max_samples={SMOKE_MAX_SAMPLES}",
            ]
        else:
            common.append(f"split.max_samples={SMOKE_MAX_SAMPLES_EMBEDDED}")
        common += list(target.smoke)
    else:
        runs = Path(args.runs) / target.name / seeds_dir
        out = Path(args.out) / target.name
        common = []
    return Plan(target, runs, out, common, smoke)


def thin(override: str) -> str:
    """At smoke scale a defense parameter sweep keeps its two ends: every defense still runs,
    in a third of the jobs."""
    values = sweep_values(override)
    if not key_of(override).startswith("defense.") or len(values) <= 2:
        return override
    return f"{override.partition('=')[0]}={values[0]},{values[-1]}"


def sweep_command(p: Plan, sweep: Sweep, args: argparse.Namespace) -> list[str]:
    smoke: list[str] = []
    base = list(sweep.overrides)
    if p.smoke:
        smoke = [SMOKE_ATTACK[a] for a in _attacks(sweep) if a in SMOKE_ATTACK]
        smoke += list(sweep.smoke)
        base = [thin(o) for o in base]
    seeds = args.seeds.split(",")[: sweep.max_seeds] if sweep.max_seeds else [args.seeds]
    overrides = merge(
        base,
        [f"seed={','.join(seeds)}"],
        p.common,
        smoke,
        launcher_overrides(args.launcher, args.jobs),
        [f"hydra.sweep.dir={_quote(p.runs / sweep.name)}"],
        args.overrides,
    )
    return [sys.executable, "-m", "mia_bench", "-m", *overrides]


def compact_png(path: Path) -> None:
    """A report figure as a 256-colour palette PNG: plots use few colours, so it looks the same
    at about a third of the size (the committed experiments/ folders stay small)."""
    from PIL import Image

    from mia_bench.io import atomic_write_bytes

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    small.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())


def run_target(target: Target, args: argparse.Namespace) -> int:
    """Every sweep, then the report and the comparison; 0 when every job has results."""
    from mia_bench.report import cli as report
    from mia_bench.repro import compare

    p = plan(target, args)
    print(f"== {target.name}: {target.title} ({args.scale} scale, seeds {args.seeds})")
    if p.smoke and target.needs_files and not args.dry_run:
        from mia_bench.repro import fakedata

        fakedata.ensure(Path(args.root) / "data", SMOKE_FILE_SAMPLES)
    failed = []
    t0 = time.perf_counter()
    for sweep in target.sweeps:
        cmd = sweep_command(p, sweep, args)
        print("$ " + shlex.join(["python", *cmd[1:]]), flush=True)
        if args.dry_run:
            continue
        if subprocess.run(cmd).returncode != 0:
            failed.append(sweep.name)
    if args.dry_run:
        return 0
    dirs = [str(p.runs / s.name) for s in target.sweeps if (p.runs / s.name).is_dir()]
    status = 1 if failed else 0
    if not dirs:
        print(f"{target.name}: no sweep produced a folder", file=sys.stderr)
        return 1
    p.out.mkdir(parents=True, exist_ok=True)
    if report.main([*dirs, "--out", str(p.out), "--no-pdf"]) != 0:
        return 1
    compare.write(
        target,
        p.out / "summary.csv",
        p.out,
        scale=args.scale,
        seeds=args.seeds,
        paper=Path(args.repo) / target.paper if target.paper else None,
    )
    for png in sorted(p.out.glob("*.png")):
        compact_png(png)
    print(
        f"{target.name}: {time.perf_counter() - t0:.0f} s; comparison in {p.out}/comparison.md"
        + (f"; sweeps with failed jobs: {', '.join(failed)}" if failed else "")
    )
    return status


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m mia_bench.repro.reproduce",
        description="Run a paper table's sweeps, then the report and the comparison with the "
        "paper. Extra KEY=VALUE arguments are added to every sweep (a key the target sets is "
        "replaced).",
    )
    p.add_argument("targets", nargs="+", metavar="TARGET", help=f"one of: {', '.join(TARGETS)}")
    p.add_argument("--scale", choices=["full", "smoke"], default="full")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--launcher", default="basic", help=f"Hydra launcher: {', '.join(LAUNCHERS)}")
    p.add_argument("--jobs", type=int, help="parallel jobs of the joblib launcher")
    p.add_argument("--root", default="outputs/smoke", help="smoke scale: everything goes here")
    p.add_argument("--runs", default="outputs/tables", help="full scale: run folders")
    p.add_argument("--out", default="experiments", help="full scale: report + comparison")
    p.add_argument("--repo", default=".", help="repository root (for the paper.csv files)")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    args, extra = p.parse_known_args(argv)
    bad = [t for t in args.targets if t not in TARGETS]
    if bad:
        p.error(f"unknown target {', '.join(bad)}; choose from {', '.join(TARGETS)}")
    if not all(s.strip().lstrip("-").isdigit() for s in args.seeds.split(",")):
        p.error(f"--seeds must be integers separated by commas, got {args.seeds!r}")
    unknown = [a for a in extra if "=" not in a or a.startswith("-")]
    if unknown:
        p.error(f"unrecognised arguments: {' '.join(unknown)}")
    args.overrides = extra
    launcher_overrides(args.launcher, args.jobs)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    status = 0
    for name in args.targets:
        status = max(status, run_target(TARGETS[name], args))
    return status


if __name__ == "__main__":
    sys.exit(main())
