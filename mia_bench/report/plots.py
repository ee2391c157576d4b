"""What every report figure shares: matplotlib's Agg backend, one colour and marker per
defense (`defense_style`, the same in every report), distinct line styles, a grid of panels
with one shared legend, saving as PNG (viewing) and PDF (papers), and reading a run's
scores.npz (`load_scores`).

The figures themselves: `privacy_utility`, `score_plots` (ROC curves, loss histograms),
`reference_count`, `audit_figures`.
"""

from __future__ import annotations

import hashlib
import io
import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mia_bench.io import atomic_write_bytes  # noqa: E402

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


def panels(
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
        ax.axis("off")  # a spare panel holds the legend (see shared_legend)
    return fig, flat


def shared_legend(fig: Figure, axes: list, n: int, title: str) -> None:
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
