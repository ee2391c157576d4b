"""Privacy-utility curves as in RelaxLoss Fig. 3: x = attack AUC (privacy, lower is better),
y = target test accuracy (utility), one panel per attack, one line per defense across its
swept parameter, the no-defense point and the ideal defense (AUC 0.5 at the best accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure

from mia_bench.report.aggregate import Group, short_names
from mia_bench.report.plots import LINESTYLES, defense_style, panels, shared_legend
from mia_bench.report.rows import fmt_value, sort_value


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
    fig, axes = panels(len(attacks), extra=0.3 if len(attacks) % 3 else 0.8, sharey=True)
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
    shared_legend(fig, axes, len(attacks), title)
    return fig
