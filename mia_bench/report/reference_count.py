"""Attack strength against the number of LiRA / RMIA reference models (a sweep of
`attack.lira.num_models`)."""

from __future__ import annotations

from matplotlib.figure import Figure

from mia_bench.report.aggregate import Group
from mia_bench.report.plots import line_style, plt
from mia_bench.report.rows import fmt_value

REFERENCE_COUNT_KEY = "attack.lira.num_models"
REFERENCE_ATTACKS = ("lira_online", "lira_offline", "rmia")


def reference_count(groups: list[Group], title: str) -> Figure | None:
    """Attack strength against the number of reference models: AUC and TPR at 0.1% FPR (mean
    over seeds, error bar one standard deviation) of LiRA online / offline and RMIA, x = count
    on a log2 axis; one line per attack and per further setting (defense, ...). None when the
    groups do not vary the count."""
    counts = {g.setting.get(REFERENCE_COUNT_KEY) for g in groups} - {None}
    if len(counts) < 2:
        return None
    lines: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        if g.setting.get(REFERENCE_COUNT_KEY) is None:
            continue
        rest = ", ".join(
            f"{k.rsplit('.', 1)[-1]}={fmt_value(v)}"
            for k, v in sorted(g.setting.items())
            if k != REFERENCE_COUNT_KEY and not k.startswith(("attack.lira.", "attack.rmia."))
        )
        label = g.approach + (f", {rest}" if rest else "")
        lines.setdefault(("", label), []).append(g)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    i = 0
    for (_, label), gs in lines.items():
        gs = sorted(gs, key=lambda g: g.setting[REFERENCE_COUNT_KEY])
        x = [g.setting[REFERENCE_COUNT_KEY] for g in gs]
        for attack in REFERENCE_ATTACKS:
            if all(g.mean(f"{attack}.auc") is None for g in gs):
                continue
            style = line_style(i)
            i += 1
            for ax, metric in zip(axes, ("auc", "tpr_at_0.1%fpr")):
                y = [g.mean(f"{attack}.{metric}") for g in gs]
                err = [g.std(f"{attack}.{metric}") or 0.0 for g in gs]
                pts = [(a, b, e) for a, b, e in zip(x, y, err) if b is not None]
                if not pts:
                    continue
                xs, ys, es = zip(*pts)
                ax.errorbar(
                    xs, ys, yerr=es, marker="o", capsize=3, label=f"{attack} ({label})", **style
                )
    for ax, name in zip(axes, ("attack AUC", "TPR at 0.1% FPR")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("reference models")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig
