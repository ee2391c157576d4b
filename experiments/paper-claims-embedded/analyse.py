"""Seed means, the claim checks and the plot for run.py's CSVs (no training here)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

ATTACKS = ["loss", "confidence", "entropy", "m_entropy", "nn"]
METRICS = [
    "train_acc",
    "test_acc",
    "train_loss_var",
    "test_loss_var",
    *(f"auc_{a}" for a in ATTACKS),
    "auc_mean",
]


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1) over seeds, one row per configuration."""
    g = df.groupby(["label", "method"], sort=False)
    out = g[METRICS].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out.insert(0, "seeds", g.size())
    return out.reset_index()


def _alpha(label: str) -> float:
    return float(label.split("alpha=")[1].split()[0])


def _pm(row: pd.Series, m: str, fmt: str = ".3f") -> str:
    return f"{row[f'{m}_mean']:{fmt}} ± {row[f'{m}_std']:{fmt}}"


def curve(s: pd.DataFrame, method: str) -> pd.DataFrame:
    """The rows of one RelaxLoss form, with their alpha, in order of alpha."""
    c = s[s.method == method].copy()
    c["alpha"] = c.label.map(_alpha)
    return c.sort_values("alpha")


def _row(name: str, r: pd.Series) -> str:
    return (
        f"| {name} | {_pm(r, 'train_acc')} | {_pm(r, 'test_acc')} | {_pm(r, 'auc_loss')} | "
        f"{_pm(r, 'auc_mean')} | {_pm(r, 'train_loss_var', '.3g')} |"
    )


def claim_checks(s: pd.DataFrame) -> list[str]:
    """Markdown lines: each paper claim, the numbers, and whether it holds here."""
    ce = s[s.method == "none"].iloc[0]
    rl = curve(s, "relaxloss")
    lines = [
        "## RelaxLoss: alpha vs attack AUC and training-loss variance",
        "",
        "| config | train acc | test acc | loss AUC | mean AUC (5 attacks) | train-loss var |",
        "|---|---|---|---|---|---|",
        _row("CE (no defense)", ce),
    ]
    lines += [_row(f"paper form, alpha {r.alpha:g}", r) for _, r in rl.iterrows()]
    for form in ("relaxloss-image", "relaxloss-tabular"):
        lines += [
            _row(r.label.replace("relaxloss ", "") + " form", r)
            for _, r in curve(s, form).iterrows()
        ]
    rho_auc = spearmanr(rl.alpha, rl.auc_loss_mean).statistic
    rho_var = spearmanr(rl.alpha, rl.train_loss_var_mean).statistic
    auc_down = bool(np.all(np.diff(rl.auc_loss_mean) < 0))
    var_up = bool(np.all(np.diff(rl.train_loss_var_mean) > 0))
    peak = rl.loc[rl.train_loss_var_mean.idxmax()]
    lines += [
        "",
        f"- Paper form: Spearman rho(alpha, loss AUC) = {rho_auc:.2f}; strictly decreasing: "
        f"{auc_down}; loss AUC at the largest alpha: {rl.auc_loss_mean.iloc[-1]:.3f}.",
        f"- Paper form: Spearman rho(alpha, training-loss variance) = {rho_var:.2f}; strictly "
        f"increasing: {var_up}; largest at alpha = {peak.alpha:g} ({peak.train_loss_var_mean:.3g}); "
        f"every alpha above CE's {ce.train_loss_var_mean:.3g}.",
    ]
    allrl = s[s.method.str.startswith("relaxloss")]
    for name, pool in (("paper form", rl), ("any form", allrl)):
        ok = pool[pool.test_acc_mean >= ce.test_acc_mean - 0.02]
        if not len(ok):
            lines.append(
                f"- Well-chosen alpha, {name}: no configuration keeps test accuracy within 2 points of CE."
            )
            continue
        best = ok.loc[ok.auc_mean_mean.idxmin()]
        lines.append(
            f"- Well-chosen alpha, {name} (lowest mean AUC with test accuracy at most 2 points below CE): "
            f"{best.label}: test acc {best.test_acc_mean:.3f} vs {ce.test_acc_mean:.3f} "
            f"({100 * (best.test_acc_mean - ce.test_acc_mean):+.1f} points), mean AUC "
            f"{best.auc_mean_mean:.3f} vs {ce.auc_mean_mean:.3f} ({best.auc_mean_mean - ce.auc_mean_mean:+.3f})."
        )

    ccl = s[s.method == "ccl"]
    lines += [
        "",
        "## CCL vs CE at similar test accuracy",
        "",
        "| config | test acc | train-loss var | " + " | ".join(f"{a} AUC" for a in ATTACKS) + " |",
        "|---" * (3 + len(ATTACKS)) + "|",
    ]
    for _, r in pd.concat([ce.to_frame().T, ccl]).iterrows():
        lines.append(
            f"| {r.label} | {_pm(r, 'test_acc')} | {_pm(r, 'train_loss_var', '.3g')} | "
            + " | ".join(_pm(r, f"auc_{a}") for a in ATTACKS)
            + " |"
        )
    similar = ccl[(ccl.test_acc_mean - ce.test_acc_mean).abs() <= 0.02]
    lines.append("")
    for _, r in similar.iterrows():
        lower = [a for a in ATTACKS if r[f"auc_{a}_mean"] < ce[f"auc_{a}_mean"]]
        lines.append(
            f"- {r.label} (test acc {100 * (r.test_acc_mean - ce.test_acc_mean):+.1f} points vs CE): "
            f"training-loss variance {r.train_loss_var_mean:.3g} vs {ce.train_loss_var_mean:.3g} "
            f"(x{r.train_loss_var_mean / ce.train_loss_var_mean:.2g}); AUC lower than CE for "
            f"{len(lower)}/{len(ATTACKS)} attacks ({', '.join(lower) or 'none'}); mean AUC "
            f"{r.auc_mean_mean:.3f} vs {ce.auc_mean_mean:.3f}."
        )

    crl = s[s.method == "crl"]
    if len(crl):
        c = crl.iloc[0]
        lines += [
            "",
            "## CRL vs RelaxLoss at a matched accuracy",
            "",
            f"- CRL ({c.label}): test acc {_pm(c, 'test_acc')}, mean AUC {_pm(c, 'auc_mean')}, "
            f"loss AUC {_pm(c, 'auc_loss')}, train-loss var {c.train_loss_var_mean:.3g}.",
        ]
        for form in ("relaxloss", "relaxloss-tabular", "relaxloss-image"):
            cur = curve(s, form).sort_values("test_acc_mean")
            if len(cur) < 2:
                continue
            acc, auc = cur.test_acc_mean.to_numpy(), cur.auc_mean_mean.to_numpy()
            nearest = cur.loc[(cur.test_acc_mean - c.test_acc_mean).abs().idxmin()]
            text = (
                f"- {form}: nearest point {nearest.label} (test acc {_pm(nearest, 'test_acc')}, "
                f"mean AUC {_pm(nearest, 'auc_mean')}); "
            )
            if acc.min() <= c.test_acc_mean <= acc.max():
                interp = float(np.interp(c.test_acc_mean, acc, auc))
                text += (
                    f"curve interpolated to CRL's test accuracy: mean AUC {interp:.3f} "
                    f"(CRL {c.auc_mean_mean - interp:+.3f})."
                )
            else:
                text += (
                    f"CRL's test accuracy is above every point of this curve (max "
                    f"{acc.max():.3f}): no RelaxLoss point of this form reaches it."
                )
            lines.append(text)
    return lines


def short(label: str) -> str:
    """A plot annotation: 'ccl ccel alpha=0.5 beta=1.0' -> 'ccel a=0.5 b=1'."""
    if label.startswith("crl"):
        return "CRL defaults"
    words = label.replace("relaxloss", "").replace("ccl", "").split()
    words = [
        re.sub(
            r"\.0$", "", w.replace("alpha=", "a=").replace("beta=", "b=").replace("upper=", "u=")
        )
        for w in words
    ]
    return " ".join(words)


STYLES = {
    "none": ("k", "*", "CE (no defense)"),
    "relaxloss": ("C0", "o", "RelaxLoss (paper form)"),
    "relaxloss-image": ("C4", "v", "RelaxLoss (image form)"),
    "relaxloss-tabular": ("C5", "P", "RelaxLoss (tabular form)"),
    "ccl": ("C1", "^", "CCL"),
    "crl": ("C2", "D", "CRL"),
}


def plot(s: pd.DataFrame, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ce = s[s.method == "none"].iloc[0]
    rl = s[s.method == "relaxloss"].copy()
    rl["alpha"] = rl.label.map(_alpha)
    rl = rl.sort_values("alpha")
    fig, ax = plt.subplots(2, 2, figsize=(13, 10))

    a = ax[0, 0]
    for m, style in (("auc_loss", "o-"), ("auc_mean", "s--")):
        a.errorbar(
            rl.alpha,
            rl[f"{m}_mean"],
            rl[f"{m}_std"],
            fmt=style,
            capsize=3,
            label=f"RelaxLoss, {'loss attack' if m == 'auc_loss' else 'mean of 5 attacks'}",
        )
        a.axhline(ce[f"{m}_mean"], color="gray", ls=":" if m == "auc_loss" else "-.", lw=1)
    a.axhline(0.5, color="k", lw=0.8)
    a.set(
        xlabel="alpha", ylabel="attack AUC", title="(a) RelaxLoss: attack AUC vs alpha (grey: CE)"
    )
    a.legend(fontsize=8)

    a = ax[0, 1]
    a.errorbar(
        rl.alpha,
        rl.train_loss_var_mean,
        rl.train_loss_var_std,
        fmt="o-",
        capsize=3,
        label="RelaxLoss: variance of training loss",
    )
    a.axhline(ce.train_loss_var_mean, color="gray", ls=":", label="CE: variance of training loss")
    a2 = a.twinx()
    a2.plot(rl.alpha, rl.test_acc_mean, "s--", color="C3", label="RelaxLoss: test accuracy")
    a2.axhline(ce.test_acc_mean, color="C3", ls=":", lw=1)
    a2.set_ylabel("test accuracy", color="C3")
    a.set(
        xlabel="alpha",
        ylabel="variance of training loss",
        yscale="log",
        title="(b) RelaxLoss: training-loss variance and accuracy vs alpha",
    )
    handles = a.get_legend_handles_labels()[0] + a2.get_legend_handles_labels()[0]
    a.legend(handles=handles, fontsize=8, loc="center left")

    for a, (x, xlabel, title) in zip(
        (ax[1, 0], ax[1, 1]),
        (
            ("test_acc", "target test accuracy", "(c) privacy-utility (mean ± std over 3 seeds)"),
            (
                "train_loss_var",
                "variance of training loss (log)",
                "(d) training-loss variance vs attack AUC",
            ),
        ),
    ):
        for method, (color, marker, name) in STYLES.items():
            sub = rl if method == "relaxloss" else s[s.method == method]
            if not len(sub):
                continue
            line = "-" if method == "relaxloss" and x == "test_acc" else ""
            a.errorbar(
                sub[f"{x}_mean"],
                sub.auc_mean_mean,
                sub.auc_mean_std,
                sub[f"{x}_std"],
                fmt=marker + line,
                color=color,
                capsize=2,
                label=name,
                ms=7,
            )
            for i, (_, r) in enumerate(sub.iterrows()):
                if method != "none":  # alternate offsets: CCL points crowd around CE
                    a.annotate(
                        short(r.label),
                        (r[f"{x}_mean"], r.auc_mean_mean),
                        fontsize=7,
                        xytext=(5, 4 - 11 * (i % 3)),
                        textcoords="offset points",
                    )
        a.axhline(0.5, color="k", lw=0.8)
        a.set(xlabel=xlabel, ylabel="mean AUC of 5 attacks", title=title)
        if x == "train_loss_var":
            a.set_xscale("log")
        a.legend(fontsize=8, loc="upper left" if x == "test_acc" else "lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(here) -> None:
    lines = [
        "# Paper claims on the embedded data: computed tables",
        "",
        "Written by `run.py report` from results.csv and crl_sweep.csv; mean ± std over seeds.",
        "",
    ]
    if (here / "crl_sweep.csv").exists():
        sw = pd.read_csv(here / "crl_sweep.csv")
        lines += [
            "## CRL sweep (seed 0)",
            "",
            "| config | train acc | test acc | loss AUC | nn AUC | mean AUC | train-loss var |",
            "|---|---|---|---|---|---|---|",
        ]
        for _, r in sw.iterrows():
            lines.append(
                f"| {r.label} | {r.train_acc:.3f} | {r.test_acc:.3f} | {r.auc_loss:.3f} | "
                f"{r.auc_nn:.3f} | {r.auc_mean:.3f} | {r.train_loss_var:.3g} |"
            )
        lines.append("")
    if (here / "results.csv").exists():
        s = summarise(pd.read_csv(here / "results.csv"))
        s.to_csv(here / "summary.csv", index=False, float_format="%.6g")
        lines += claim_checks(s)
        plot(s, here / "claims.png")
    text = "\n".join(lines) + "\n"
    (here / "tables.md").write_text(text)
    print(text)
