"""Figures of chosen runs' scores.npz:

- ROC curves on log-log axes, as in Carlini et al. (LiRA, 2022) Fig. 1, from FPR 1/(number
  of non-members), the smallest one the queries resolve, with the chance line and each
  curve's AUC and TPR at 1% FPR;
- train (member) vs test (non-member) loss histograms with mean and variance in the legend,
  as in RelaxLoss Fig. 1, on one shared y axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from mia_bench.metrics import auc, roc_points, tpr_at_fpr
from mia_bench.report.plots import Scores, line_style, load_scores, panels, shared_legend


def roc_curves(
    runs: list[tuple[str, Path | Scores | None]], attacks: list[str], title: str
) -> Figure | None:
    """`runs`: (label, scores.npz path or its `load_scores`). Points at FPR 0 or TPR 0 cannot be drawn on log axes;
    with n non-members the first drawable FPR is 1/n."""
    loaded = [
        (label, s) for label, p in runs if (s := load_scores(p)) is not None and "member" in s
    ]
    attacks = [a for a in attacks if any(a in s for _, s in loaded)]
    if not loaded or not attacks:
        return None
    # The smallest FPR (TPR) that n non-members (members) resolve is 1/n: the axes start there.
    fpr_lo = 1 / max(int((~s["member"].astype(bool)).sum()) for _, s in loaded)
    tpr_lo = 1 / max(int(s["member"].astype(bool).sum()) for _, s in loaded)
    fig, axes = panels(len(attacks), 3.3, 3.1, extra=0.3 if len(attacks) % 3 else 0.8)
    for ax, attack in zip(axes, attacks):
        grid = np.logspace(np.log10(min(fpr_lo, tpr_lo)), 0, 50)
        ax.plot(grid, grid, ls="--", lw=0.8, color="0.6", label="chance (AUC 0.5)")
        handles, numbers = [], []
        for i, (label, s) in enumerate(loaded):
            if attack not in s:
                continue
            member = s["member"].astype(bool)
            fpr, tpr, _ = roc_points(s[attack], member)
            keep = (fpr > 0) & (tpr > 0)
            (line,) = ax.plot(fpr[keep], tpr[keep], lw=1.2, label=label, **line_style(i))
            low = tpr_at_fpr(s[attack], member, 0.01)
            handles.append(line)
            numbers.append(
                f"AUC {auc(s[attack], member):.3f}, TPR@1%FPR "
                + ("n/a" if low is None else f"{low:.3f}")
            )
        # Curves that overlap stay apart in this panel's own legend: its numbers, same lines.
        ax.legend(handles, numbers, loc="lower right", fontsize=6, framealpha=0.85)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Minor ticks on 5 decades cost most of the drawing time and add little.
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlim(fpr_lo, 1)
        ax.set_ylim(tpr_lo, 1)
        ax.set_title(attack, fontsize=10)
        ax.set_xlabel("false positive rate", fontsize=9)
        ax.set_ylabel("true positive rate", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, which="major")
    shared_legend(fig, axes, len(attacks), title)
    return fig


def loss_histograms(
    runs: list[tuple[str, Path | Scores | None, float | None]], title: str
) -> Figure | None:
    """`runs`: (label, scores.npz path or its `load_scores`, loss-attack AUC or None). One panel per run: the
    target's cross-entropy on members (train) and non-members (test), as fractions of each
    set. The x-axis ends at the 99th percentile of all losses, so that a long tail does not
    squeeze the bulk; mean and variance in the legend cover every sample."""
    loaded = [
        (label, s, a)
        for label, p, a in runs
        if (s := load_scores(p)) is not None and "target_loss" in s and "member" in s
    ]
    if not loaded:
        return None
    # One y axis for all panels: different scales would make similar runs look different.
    fig, axes = panels(len(loaded), 3.6, 2.9, extra=0.3, sharey=True)
    for ax in axes[len(loaded) :]:
        ax.set_visible(False)
    for i_ax, (ax, (label, s, loss_auc)) in enumerate(zip(axes, loaded)):
        loss, member = s["target_loss"].astype(float), s["member"].astype(bool)
        top = max(float(np.quantile(loss, 0.99)), 1e-3)
        bins = np.linspace(0, top, 41)
        for mask, name, color in [
            (member, "member (train)", "C0"),
            (~member, "non-member (test)", "C1"),
        ]:
            v = loss[mask]
            ax.hist(
                v,
                bins=bins,
                weights=np.full(len(v), 1 / len(v)),
                alpha=0.55,
                color=color,
                label=f"{name}\nmean {v.mean():.3g}, var {v.var():.3g}",
            )
        ax.set_title(
            label + (f"\nloss-attack AUC {loss_auc:.3f}" if loss_auc is not None else ""),
            fontsize=8.5,
        )
        ax.set_xlabel("cross-entropy loss (largest 1% not shown)", fontsize=9)
        if i_ax % 3 == 0:
            ax.set_ylabel("fraction of samples", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title + " (one y axis for all panels)", fontsize=11)
    return fig
