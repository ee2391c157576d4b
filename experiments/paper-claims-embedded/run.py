"""Check the headline claims of RelaxLoss, CCL and CRL on the embedded synthetic data.

    python experiments/paper-claims-embedded/run.py crl-sweep   # seed 0, CRL grid -> crl_sweep.csv
    python experiments/paper-claims-embedded/run.py claims      # 3 seeds -> results.csv, summary.csv
    python experiments/paper-claims-embedded/run.py report      # summary.csv, claims.md, plot (no training)

Each run is one `pipeline.run` on a config composed exactly as `python -m mia_bench <overrides>`
composes it (the equivalent command lines are in README.md); run folders go to
outputs/paper-claims-embedded/ and trained models to the usual cache, so a second invocation
only re-reads them. Nothing here changes the benchmark's defaults: every run is the default
experiment (data, model, trainer, split, attacks, adaptive shadow) plus a defense choice.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from mia_bench.config import validate  # noqa: E402
from mia_bench.experiment import run as pipeline  # noqa: E402
from mia_bench.io import atomic_write_text  # noqa: E402

SEEDS = [0, 1, 2]
ATTACKS = ["loss", "confidence", "entropy", "m_entropy", "nn"]
RELAX_ALPHAS = [0.25, 0.5, 1.0, 1.5, 2.0]
# CCL: the paper's reference beta (0.05) with our trainer (lr 0.05, 60 epochs) underfits the
# synthetic data badly (52% test accuracy against 68% for CE); beta = 1 trains at CE's scale.
CCL_RUNS = [
    ("ccel", 0.5, 1.0),
    ("ccql", 0.5, 1.0),
    ("ccel", 0.5, 0.05),
    ("ccel", 0.2, 1.0),
    ("ccel", 0.5, 0.2),
]
# RelaxLoss's other two forms (App. B.3): flattening on misclassified samples + ascent term
# (behind the paper's CIFAR numbers), and the tabular cap on the ground-truth score.
RELAX_FORMS = [
    ("image", 1.0, 0.5),
    ("image", 1.0, 1.0),
    ("tabular", 0.3, 1.0),
    ("tabular", 0.3, 0.5),
    ("tabular", 0.3, 1.5),
]
# CRL grid (seed 0). Normalisation with tau = 1 keeps every feature, center and logit vector
# inside the unit ball, so alpha_rcl is on a known scale (D <= 2).
CRL_GRID = [
    {"alpha_rce": a, "lam": lam, "tau_rce": tr, "tau_rcl": 1.0, "alpha_rcl": ar}
    for a in (0.5, 1.0)
    for lam in (0.1, 1.0)
    for tr in (0.0, 0.1)
    for ar in (0.05,)
] + [  # second round, around the best point of the first (alpha_rce 0.5, lam 1, tau_rce 0.1)
    {"alpha_rce": 0.5, "lam": lam, "tau_rce": 0.1, "tau_rcl": 1.0, "alpha_rcl": ar}
    for lam, ar in ((1.0, 0.01), (1.0, 0.2), (1.0, 0.5), (1.0, 1.0), (3.0, 0.05), (0.0, 0.5))
]


def runs_for(stage: str) -> Iterator[tuple[str, str, list[str]]]:
    """(label, method, overrides) of every configuration of a stage, produced lazily."""
    if stage == "crl-sweep":
        for p in CRL_GRID:
            label = "crl " + " ".join(f"{k}={v}" for k, v in p.items())
            yield label, "crl", ["defense=crl", *(f"defense.{k}={v}" for k, v in p.items())]
        return
    yield "ce", "none", ["defense=none"]
    for a in RELAX_ALPHAS:
        yield f"relaxloss alpha={a}", "relaxloss", ["defense=relaxloss", f"defense.alpha={a}"]
    for v, a, b in CCL_RUNS:
        overrides = [
            "defense=ccl",
            f"defense.variant={v}",
            f"defense.alpha={a}",
            f"defense.beta={b}",
        ]
        yield f"ccl {v} alpha={a} beta={b}", "ccl", overrides
    # CRL with the defaults of conf/defense/crl.yaml, chosen by the crl-sweep stage; the label
    # names the values so that a change of defaults never reuses an old run folder.
    crl = compose_cfg(["defense=crl"]).defense
    keys = ("alpha_rce", "lam", "tau_rce", "tau_rcl", "alpha_rcl")
    yield "crl " + " ".join(f"{k}={crl[k]}" for k in keys), "crl", ["defense=crl"]
    for form, upper, a in RELAX_FORMS:
        overrides = [
            "defense=relaxloss",
            f"defense.form={form}",
            f"defense.upper={upper}",
            f"defense.alpha={a}",
        ]
        yield f"relaxloss {form} upper={upper} alpha={a}", f"relaxloss-{form}", overrides


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*overrides, "progress=false"])


def slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in ".=-" else "_" for c in label)


def row_of(label: str, method: str, seed: int, res: dict) -> dict:
    t = res["target"]
    row = {
        "label": label,
        "method": method,
        "seed": seed,
        "defense": json.dumps(res["defense"], sort_keys=True),
        "train_acc": t["train_acc"],
        "test_acc": t["test_acc"],
        "gap": t["gap"],
        "train_loss_mean": t["train_loss_mean"],
        "train_loss_var": t["train_loss_var"],
        "test_loss_mean": t["test_loss_mean"],
        "test_loss_var": t["test_loss_var"],
    }
    for a in ATTACKS:
        row[f"auc_{a}"] = res["attacks"][a]["auc"]
    row["auc_mean"] = sum(row[f"auc_{a}"] for a in ATTACKS) / len(ATTACKS)
    row["seconds"] = sum(res["timing"].values())
    return row


def write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())


def run_stage(stage: str, seeds: list[int], csv_path: Path) -> list[dict]:
    rows = []
    for label, method, overrides in runs_for(stage):
        for seed in seeds:
            out = ROOT / "outputs" / "paper-claims-embedded" / stage / slug(label) / f"seed{seed}"
            if (out / "results.json").exists():
                res = json.loads((out / "results.json").read_text())
            else:
                cfg = compose_cfg([*overrides, f"seed={seed}"])
                with open_dict(cfg):  # what Hydra's run-dir interpolation gives on the CLI
                    cfg.paths.output_dir = str(out)
                validate(cfg)
                t0 = time.perf_counter()
                res = pipeline.run(cfg, out)
                print(f"{label} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
            rows.append(row_of(label, method, seed, res))
            print(
                f"  test acc {rows[-1]['test_acc']:.3f}  mean AUC {rows[-1]['auc_mean']:.3f}  "
                f"loss AUC {rows[-1]['auc_loss']:.3f}  train-loss var {rows[-1]['train_loss_var']:.4g}",
                flush=True,
            )
            write_csv(csv_path, rows)
    return rows


def main() -> None:
    # One thread: the models are tiny and the machine is shared; also fixes the float
    # reduction order, so reruns reproduce the CSVs exactly.
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("stage", choices=["crl-sweep", "claims", "report"])
    args = ap.parse_args()
    if args.stage == "crl-sweep":
        run_stage("crl-sweep", [0], HERE / "crl_sweep.csv")
    elif args.stage == "claims":
        run_stage("claims", SEEDS, HERE / "results.csv")
    from analyse import report  # noqa: E402 (matplotlib only when needed)

    report(HERE)


if __name__ == "__main__":
    main()
