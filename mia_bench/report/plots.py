"""Report figures, drawn with matplotlib's Agg backend and saved as PNG (viewing) and PDF (papers).

- privacy-utility curves as in RelaxLoss Fig. 3: x = attack AUC (privacy, lower is better),
  y = target test accuracy (utility), one panel per attack, one line per defense across its
  swept parameter, the no-defense point and the ideal defense (AUC 0.5 at the best accuracy);
- ROC curves on log-log axes, as in Carlini et al. (LiRA, 2022) Fig. 1, from FPR 1/(number
  of non-members), the smallest one the queries resolve, with the chance line and each
  curve's AUC and TPR at 1% FPR;
- train (member) vs test (non-member) loss histograms with mean and variance in the legend,
  as in RelaxLoss Fig. 1, on one shared y axis.

Each defense has one colour and marker in every figure (`defense_style`).
"""

from __future__ import annotations

import hashlib
import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from mia_bench.io import atomic_write_bytes  # noqa: E402
from mia_bench.metrics import auc, roc_points, tpr_at_fpr  # noqa: E402
from mia_bench.report.aggregate import Group, fmt_value, short_names, sort_value  # noqa: E402

MARKERS = "os^Dvp<>h"
LINESTYLES = ("-", "--", ":", "-.")
# One colour and marker per defense, the same in every report (the undefended curve is grey;
# its single point is the black "no defense" cross).
DEFENSE_STYLE: dict[str, tuple[str, str]] = {
    "none": ("0.45", "o"),
    "relaxloss": ("C0", "s"),
    "ccl": ("C1", "^"),
    "crl": ("C2", "D"),
    "adv_reg": ("C3", "v"),
    "memguard": ("C4", "p"),
    "dmp": ("C5", "<"),
    "dp_sgd": ("C6", ">"),
    "distillation": ("C8", "h"),
    "label_smoothing": ("C9", "P"),
    "confidence_penalty": ("navy", "d"),
    "dropout": ("olive", "H"),
    "early_stopping": ("teal", "8"),
}
_SPARE_COLORS = ("maroon", "darkorange", "indigo", "darkgreen", "magenta", "sienna")


def defense_style(defense: str) -> tuple[str, str]:
    """(colour, marker) of a defense: fixed for the known ones; a defense added later gets a
    pair chosen from its name, so it too keeps it from report to report."""
    if defense in DEFENSE_STYLE:
        return DEFENSE_STYLE[defense]
    h = int(hashlib.sha256(defense.encode()).hexdigest(), 16)
    return _SPARE_COLORS[h % len(_SPARE_COLORS)], MARKERS[(h // 7) % len(MARKERS)]


def line_style(i: int) -> dict[str, str]:
    """Colour and dash of the i-th curve: the 10 default colours solid, then dashed, dotted and
    dash-dotted, so 40 curves stay distinct."""
    return {"color": f"C{i % 10}", "ls": LINESTYLES[(i // 10) % len(LINESTYLES)]}


@dataclass
class Curve:
    """Points of one defense, ordered by the swept key (None: a single setting)."""

    defense: str
    label: str
    swept: str | None
    points: list[Group]


def _value(g: Group, key: str):
    return (
        g.params.get(key[len("defense.") :]) if key.startswith("defense.") else g.setting.get(key)
    )


def curves(groups: list[Group], settings: list[str]) -> list[Curve]:
    """One curve per defense across the first key that varies within it (its parameters
    first, then other settings); further varying keys split it into several curves."""
    out: list[Curve] = []
    names = short_names(settings)
    for defense in dict.fromkeys(g.defense for g in groups):
        mine = [g for g in groups if g.defense == defense]
        keys = [f"defense.{p}" for p in dict.fromkeys(p for g in mine for p in g.params)] + settings
        varying = [k for k in keys if len({repr(_value(g, k)) for g in mine}) > 1]
        swept, rest = (varying[0], varying[1:]) if varying else (None, [])
        lines: dict[tuple, list[Group]] = {}
        for g in mine:
            lines.setdefault(tuple(repr(_value(g, k)) for k in rest), []).append(g)
        for pts in lines.values():
            if swept:
                pts = sorted(pts, key=lambda g: sort_value(_value(g, swept)))
            fixed = ", ".join(f"{_short(k, names)}={fmt_value(_value(pts[0], k))}" for k in rest)
            label = defense + (f" ({fixed})" if fixed else "")
            out.append(Curve(defense, label, swept, pts))
    return out


def _short(key: str, names: dict[str, str]) -> str:
    return key[len("defense.") :] if key.startswith("defense.") else names.get(key, key)


def no_defense(groups: list[Group]) -> Group | None:
    """The undefended model: the defense=none setting with the best mean test accuracy
    (the one a practitioner would deploy when several were swept, e.g. training lengths)."""
    none = [g for g in groups if g.defense == "none" and g.mean("test_acc") is not None]
    return max(none, key=lambda g: g.mean("test_acc")) if none else None


def _grid(
    n: int, w: float = 3.4, h: float = 3.0, extra: float = 0.8, sharey: bool = False
) -> tuple[Figure, list]:
    """Panels in rows of three; `extra` inches of height for the title and a legend below."""
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(w * cols, h * rows + extra),
        squeeze=False,
        sharey=sharey,
        layout="constrained",
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.axis("off")  # a spare panel holds the legend (see _legend)
    return fig, flat


def _legend(fig: Figure, axes: list, n: int, title: str) -> None:
    """The legend of the first panel, shared: in a spare panel when the grid has one and the
    legend fits there, else below the panels, the figure made taller to hold it."""
    handles, labels = axes[0].get_legend_handles_labels()
    # Curves first, then the reference markers.
    order = sorted(
        range(len(labels)), key=lambda i: labels[i].startswith(("no defense", "ideal defense"))
    )
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    # Long labels (a CRL setting lists ten parameters) are wrapped: unwrapped, the legend
    # outgrew the figure and constrained layout gave up ("axes sizes collapsed to zero").
    labels = [textwrap.fill(lb, 44) for lb in labels]
    lines = sum(lb.count("\n") + 1 for lb in labels)
    fig.suptitle(title, fontsize=11)
    if len(axes) > n and lines <= 14:
        axes[n].legend(handles, labels, loc="center", frameon=False, fontsize=8.5)
        return
    ncol = max(1, min(len(labels), int(fig.get_figwidth() // 3.2)))
    rows = math.ceil(lines / ncol) + 1
    fig.set_figheight(fig.get_figheight() + 0.15 * rows)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=ncol,
        frameon=False,
        fontsize=8,
    )


def privacy_utility(
    groups: list[Group], attacks: list[str], settings: list[str], title: str
) -> Figure:
    lines = curves(groups, settings)
    base = no_defense(groups)
    best = max((g.mean("test_acc") for g in groups if g.mean("test_acc") is not None), default=None)
    names = short_names(settings)
    # several curves of one defense (other fixed settings) keep its colour, differ in dash
    nth = {id(cv): sum(c.defense == cv.defense for c in lines[:i]) for i, cv in enumerate(lines)}
    # One accuracy axis for every panel: a setting has the same accuracy under every attack.
    fig, axes = _grid(len(attacks), extra=0.3 if len(attacks) % 3 else 0.8, sharey=True)
    for i_ax, (ax, attack) in enumerate(zip(axes, attacks)):
        col = f"{attack}.auc"
        for cv in lines:
            pts = [
                g for g in cv.points if g.mean(col) is not None and g.mean("test_acc") is not None
            ]
            if not pts or (cv.defense == "none" and len(pts) == 1):
                continue  # the single undefended point is drawn as "no defense" below
            color, marker = defense_style(cv.defense)
            x = [g.mean(col) for g in pts]
            y = [100 * g.mean("test_acc") for g in pts]
            xerr = [g.std(col) or 0.0 for g in pts]
            yerr = [100 * (g.std("test_acc") or 0.0) for g in pts]
            swept = f", swept over {_short(cv.swept, names)}" if cv.swept else ""
            ax.errorbar(
                x,
                y,
                xerr=xerr,
                yerr=yerr,
                color=color,
                marker=marker,
                ls=LINESTYLES[nth[id(cv)] % len(LINESTYLES)],
                ms=4.5,
                lw=1.2,
                elinewidth=0.7,
                capsize=2,
                label=cv.label + swept,
            )
            if cv.swept:
                # Alternate above / below so that labels of near-identical points stay apart.
                for k, (g, xi, yi) in enumerate(zip(pts, x, y)):
                    ax.annotate(
                        fmt_value(_value(g, cv.swept)),
                        (xi, yi),
                        textcoords="offset points",
                        xytext=(6, 4) if k % 2 == 0 else (6, -10),
                        fontsize=7,
                        color=color,
                        bbox={
                            "boxstyle": "square,pad=0.05",
                            "fc": "white",
                            "ec": "none",
                            "alpha": 0.8,
                        },
                    )
        if base is not None and base.mean(col) is not None:
            ax.errorbar(
                [base.mean(col)],
                [100 * base.mean("test_acc")],
                xerr=[base.std(col) or 0.0],
                yerr=[100 * (base.std("test_acc") or 0.0)],
                fmt="X",
                ms=9,
                color="black",
                elinewidth=0.7,
                capsize=2,
                zorder=5,
                label="no defense",
            )
        elif base is None:
            # Say so rather than leave the reader looking for the reference point.
            ax.plot([], [], ls="none", label="no defense: no undefended run in these folders")
        # The axis spans the points, not 0.5: the ideal defense is drawn on it when in range,
        # else as an arrow head at the left edge at its accuracy.
        xs = [g.mean(col) for g in groups if g.mean(col) is not None]
        lo, hi = (min(xs), max(xs)) if xs else (0.5, 0.5)
        pad = 0.06 * max(hi - lo, 0.02)
        left, right = lo - pad, hi + 2 * pad
        ax.set_xlim(left, right)
        if best is not None:
            # (x, marker, label): on the axis, or an arrow head at the edge it lies beyond
            x, marker, label = (
                (0.5, "*", "ideal defense")
                if left <= 0.5 <= right
                else (left, "<", "ideal defense (AUC 0.5, left of the axis)")
                if 0.5 < left
                else (right, ">", "ideal defense (AUC 0.5, right of the axis)")
            )
            ax.scatter(
                [x],
                [100 * best],
                marker=marker,
                s=150 if marker == "*" else 60,
                c="crimson",
                zorder=5,
                clip_on=False,
                label=label,
            )
        ax.set_title(attack, fontsize=10)
        ax.set_xlabel("attack AUC", fontsize=9)
        if i_ax % 3 == 0:
            ax.set_ylabel("test accuracy (%)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    _legend(fig, axes, len(attacks), title)
    return fig


Scores = dict[str, np.ndarray]


def load_scores(path: Path | Scores | None) -> Scores | None:
    """A scores.npz as a dict; one already loaded (a dict) or None is passed through, so that
    a caller drawing several figures of the same runs reads each file once."""
    if path is None or isinstance(path, dict):
        return path
    try:
        with np.load(path) as z:
            s = {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None
    # A canary audit's scores.npz also holds the canaries; these plots show the usual queries.
    canary = s.pop("canary", None)
    if canary is None:
        return s
    usual = ~canary.astype(bool)
    return {k: v[usual] if v.shape[:1] == usual.shape else v for k, v in s.items()}


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
    fig, axes = _grid(len(attacks), 3.3, 3.1, extra=0.3 if len(attacks) % 3 else 0.8)
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
    _legend(fig, axes, len(attacks), title)
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
    fig, axes = _grid(len(loaded), 3.6, 2.9, extra=0.3, sharey=True)
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


def save(fig: Figure, stem: Path, pdf: bool = True) -> list[Path]:
    """stem.png (150 dpi) and stem.pdf, written atomically; the PDF carries no creation date,
    so that the same inputs give the same bytes."""
    paths = []
    for ext in ("png", "pdf") if pdf else ("png",):
        buf = io.BytesIO()
        meta = {"CreationDate": None} if ext == "pdf" else {}
        fig.savefig(buf, format=ext, dpi=150, metadata=meta)
        path = stem.with_suffix(f".{ext}")
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


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
