"""Our numbers next to a paper's: the report's summary.csv + the paper's paper.csv ->
ours.csv (one row per setting: mean and sample std over seeds) and comparison.md.

Units follow the papers: accuracies, attack accuracies and AUCs in % (paper.csv columns
`train_acc`, `test_acc`, `acc_<attack>`, `auc_<attack>`); training-loss statistics as they are.
A paper row is matched to our setting by every key column it fills: `dataset`, `model`,
`defense`, `shadow` (our shadow_defense) and any defense parameter (`alpha` -> defense.alpha).
The rows come from `compare_rows`, the text from `compare_render`, the figure from
`compare_plot`.

`python -m mia_bench.repro.compare TARGET SUMMARY_CSV OUT_DIR` redraws a comparison from a report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mia_bench.io import atomic_write_text
from mia_bench.repro import compare_plot, compare_render
from mia_bench.repro.compare_rows import match, ours_csv, paper_keys, read_csv, settings
from mia_bench.repro.targets import TARGETS, Target

__all__ = ["main", "match", "paper_keys", "read_csv", "settings", "write"]


def write(
    target: Target,
    summary_csv: Path,
    out: Path,
    *,
    scale: str = "full",
    seeds: str = "",
    paper: Path | None = None,
) -> list[Path]:
    """ours.csv, comparison.md (and paper_vs_ours.png when paper numbers were matched)."""
    ours = settings(read_csv(summary_csv))
    paper_rows = read_csv(paper) if paper is not None else []
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "ours.csv", out / "comparison.md"]
    atomic_write_text(written[0], ours_csv(ours))
    pairs = [(r, match(r, paper_keys(paper_rows), ours)) for r in paper_rows]
    text = compare_render.markdown(target, ours, pairs, out, scale=scale, seeds=seeds)
    atomic_write_text(written[1], text)
    png = compare_plot.paper_vs_ours(target, pairs, out / "paper_vs_ours.png")
    return written + ([png] if png else [])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mia_bench.repro.compare", description=__doc__)
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("summary", help="summary.csv written by mia_bench.report")
    p.add_argument("out", help="folder for ours.csv and comparison.md")
    p.add_argument("--paper", help="paper.csv (default: the target's)")
    p.add_argument("--scale", default="full", choices=["full", "smoke"])
    p.add_argument("--seeds", default="", help="the seeds the runs used (for the header)")
    args = p.parse_args(argv)
    t = TARGETS[args.target]
    paper = Path(args.paper) if args.paper else (Path(t.paper) if t.paper else None)
    written = write(
        t, Path(args.summary), Path(args.out), scale=args.scale, seeds=args.seeds, paper=paper
    )
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
