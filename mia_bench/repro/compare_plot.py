"""paper_vs_ours.png of `mia_bench.repro.compare`: every compared cell, the paper's number against
ours, so that agreement is the diagonal."""

from __future__ import annotations

import io
from pathlib import Path

from mia_bench.repro.compare_render import NAMES, Pair, compared_cells
from mia_bench.repro.targets import Target


def paper_vs_ours(target: Target, pairs: list[Pair], path: Path) -> Path | None:
    """Scatter of every compared cell: paper (x) vs ours (y, ± std), the diagonal for equal."""
    pts: dict[str, list[tuple[float, float, float]]] = {}
    for m, paper, s in compared_cells(pairs):
        kind = "accuracy" if m in NAMES else f"attack {'AUC' if m[:3] == 'auc' else 'acc'}"
        pts.setdefault(kind, []).append((paper, s.mean(m), s.std(m) or 0.0))
    if not pts:
        return None
    from mia_bench.io import atomic_write_bytes
    from mia_bench.report import plots

    fig = plots.plt.figure(figsize=(4.6, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for i, (kind, p) in enumerate(pts.items()):
        x, y, e = zip(*p)
        ax.errorbar(x, y, yerr=e, fmt="os^"[i % 3], ms=4, capsize=2, elinewidth=0.8, label=kind)
    lo = min(min(x, y) for p in pts.values() for x, y, _ in p)
    lo = min(lo, 40.0)
    ax.plot([lo, 100], [lo, 100], ls="--", lw=0.8, color="0.5", label="ours = paper")
    ax.set_xlabel("paper (%)")
    ax.set_ylabel("ours (%)")
    ax.set_title(f"{target.name}: every compared cell", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    plots.plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
