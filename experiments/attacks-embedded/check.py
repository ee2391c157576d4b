"""Checks of the attack suite on one run folder: every AUC in results.json equals sklearn's
roc_auc_score on scores.npz, TPR at 1% FPR equals the one read off sklearn's roc_curve, and
LiRA online reaches at least the loss attack's TPR at 1% FPR.

    python experiments/attacks-embedded/check.py outputs/<date>/<time>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def main(run: Path) -> int:
    res = json.loads((run / "results.json").read_text())
    z = np.load(run / "scores.npz")
    ok = True
    print("| attack | AUC (results.json) | AUC (sklearn) | TPR@1%FPR | TPR@1%FPR (sklearn) |")
    print("|---|---|---|---|---|")
    for name, m in res["attacks"].items():
        ref_auc = roc_auc_score(z["member"], z[name])
        fpr, tpr, _ = roc_curve(z["member"], z[name], drop_intermediate=False)
        ref_tpr = float(tpr[fpr <= 0.01 + 1e-12].max())
        same = abs(m["auc"] - ref_auc) < 1e-9 and abs(m["tpr_at_1%fpr"] - ref_tpr) < 1e-12
        ok &= same
        print(
            f"| {name} | {m['auc']:.6f} | {ref_auc:.6f} | {m['tpr_at_1%fpr']:.4f} | {ref_tpr:.4f} |"
        )
    lira, loss = (
        res["attacks"]["lira_online"]["tpr_at_1%fpr"],
        res["attacks"]["loss"]["tpr_at_1%fpr"],
    )
    print(
        f"\nLiRA online TPR@1%FPR {lira:.4f} vs loss {loss:.4f}: {'ok' if lira >= loss else 'FAIL'}"
    )
    print("results.json agrees with sklearn:", "ok" if ok else "FAIL")
    return 0 if ok and lira >= loss else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
