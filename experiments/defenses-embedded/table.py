"""One table of every run under a folder: defense and parameters, train / test accuracy, attack
AUC per attack; one row per early-stopping checkpoint. Markdown on stdout, CSV beside it.

    python experiments/defenses-embedded/table.py outputs/defenses-embedded > results.md
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ATTACKS = ["loss", "confidence", "entropy", "m_entropy", "nn"]
# describe() keys that are not sweep parameters
SKIP = {
    "name",
    "budget_norm",
    "surrogate",
    "not_applicable",
    "inference_input",
    "teacher",
    "accountant",
    "steps",
    "sample_rate",
    "poisson_sampling",
    "replaced_modules",
    "delta",
    "epochs",
    "lr_centers",
    "stop_gradient",
    "upper_rcl",
}


def params(d: dict) -> str:
    out = [
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in d.items()
        if k not in SKIP
    ]
    if d.get("name") == "dp_sgd":
        out = [o for o in out if not o.startswith("epsilon")]
        eps = d.get("epsilon")
        out.append("eps=inf" if eps is None else f"eps={eps:.3g}")
    return ", ".join(out)


def rows(root: Path) -> list[dict]:
    found = []
    for path in sorted(root.rglob("results.json")):
        r = json.loads(path.read_text())
        d = r["defense"]
        points = [(params(d), r["target"], r["attacks"])]
        if r.get("checkpoints"):
            points = [
                (f"epoch {c['epoch']}", c["target"], c["attacks"])
                for c in sorted(r["checkpoints"].values(), key=lambda c: c["epoch"])
            ]
        for label, target, attacks in points:
            row = {
                "defense": d["name"],
                "params": label,
                "train_acc": target["train_acc"],
                "test_acc": target["test_acc"],
            }
            row.update({a: attacks.get(a, {}).get("auc") for a in ATTACKS})
            found.append(row)
    order = [
        "none",
        "label_smoothing",
        "confidence_penalty",
        "dropout",
        "early_stopping",
        "distillation",
        "dp_sgd",
        "adv_reg",
        "memguard",
        "dmp",
        "relaxloss",
        "ccl",
        "crl",
    ]
    return sorted(
        found,
        key=lambda r: (
            order.index(r["defense"]) if r["defense"] in order else len(order),
            r["defense"],
        ),
    )


def main(root: str) -> None:
    table = rows(Path(root))
    fields = ["defense", "params", "train_acc", "test_acc", *ATTACKS]
    with open(Path(__file__).with_name("results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(table)

    def fmt(v, pct=False):
        if v is None:
            return "n/a"
        return f"{100 * v:.1f}" if pct else f"{v:.3f}"

    print(
        "| defense | params | train acc % | test acc % | "
        + " | ".join(f"AUC {a}" for a in ATTACKS)
        + " |"
    )
    print("|---|---|---|---|" + "---|" * len(ATTACKS))
    for r in table:
        aucs = " | ".join(fmt(r[a]) for a in ATTACKS)
        print(
            f"| {r['defense']} | {r['params']} | {fmt(r['train_acc'], True)} | {fmt(r['test_acc'], True)} | {aucs} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
