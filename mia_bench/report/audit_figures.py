"""The canary audit's figures (see `mia_bench.report.audit` for the files): privacy vs
utility per defense setting, empirical vs theoretical epsilon, and the most vulnerable images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mia_bench.report.audit import mean_std, settings


def privacy_utility(rows: list[dict[str, Any]]):
    import matplotlib.pyplot as plt

    # the lowest FPR the canaries resolve (0.1% needs >= 1000 OUT canaries, 1% >= 100)
    col = next(
        (
            c
            for c in ("canary_tpr_at_0.1%fpr", "canary_tpr_at_1%fpr")
            if any(r[c] is not None for r in rows)
        ),
        "canary_auc",
    )
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    for i, (key, group) in enumerate(settings(rows).items()):
        (x, xs), (y, ys) = (
            mean_std([r["test_acc"] for r in group]),
            mean_std([r[col] for r in group]),
        )
        if x is None or y is None:
            continue
        ax.errorbar(x, y, xerr=xs, yerr=ys, fmt="o", ms=6, color=f"C{i % 10}", label=key[2])
    what = {"canary_auc": "AUC"}.get(col, "TPR at " + ("0.1%" if "0.1%" in col else "1%") + " FPR")
    ax.set_xlabel("test accuracy")
    ax.set_ylabel(f"canary {what} ({rows[0]['attack']})")
    ax.set_title("Canary audit: privacy vs utility", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def epsilon_plot(rows: list[dict[str, Any]]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    pts = [r for r in rows if r["eps_theory"] is not None]
    top = max(r["eps_theory"] for r in pts) * 1.1
    ax.plot([0, top], [0, top], ls="--", color="0.6", lw=0.8, label="empirical = theory")
    for c, marker, name in (
        ("eps_clopper_pearson", "o", "Clopper-Pearson"),
        ("eps_one_run", "s", "one run"),
    ):
        ax.scatter([r["eps_theory"] for r in pts], [r[c] for r in pts], marker=marker, label=name)
    ax.set_xlabel("accountant's epsilon (DP-SGD)")
    ax.set_ylabel("empirical epsilon lower bound (95%)")
    ax.set_title("Empirical vs theoretical epsilon", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def image_grid(path: Path, title: str):
    """4 x 8 grid of the most vulnerable images with their labels (as trained), or None."""
    if not path.exists():
        return None
    with np.load(path) as z:
        if "x" not in z.files:
            return None
        x, labels, canary = z["x"], z["label"], z["canary"]
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 8, figsize=(8, 4.6))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(x):
            continue
        img = np.moveaxis(x[i], 0, -1)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
        ax.set_title(f"{int(labels[i])}" + (" (c)" if canary[i] else ""), fontsize=7)
    fig.suptitle(f"{title}: most vulnerable training images ((c) = canary)", fontsize=9)
    fig.tight_layout()
    return fig
