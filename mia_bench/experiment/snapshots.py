"""Early stopping as a privacy-utility curve (RelaxLoss App. B.5): every weight snapshot the
trainer kept is one point, evaluated by every attack, without retraining.

results.json then has a `checkpoints` section keyed by epoch count ("10", "20", ...):
`{"epoch": 10, "target": {...same keys as results["target"]...}, "attacks": {...same keys as
results["attacks"]...}}`. Training stops at the last listed epoch, so the last checkpoint is the
final model and equals the main `target` / `attacks` keys.

Shadows trained with the same defense (adaptive attacker) kept snapshots at the same epochs;
for checkpoint e the attacks fit on the shadows' checkpoint e. Shadows trained without a
defense have no snapshots and are used fully trained at every checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mia_bench.experiment.trained import TrainedModel


def evaluate_checkpoints(
    target: TrainedModel,
    models: list[TrainedModel],
    final: dict[str, Any],
    evaluate: Callable[[], dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """One entry per snapshot epoch of the target. For each earlier epoch, every model of
    `models` (target, shadows, reference models) that kept snapshots is rewound to it and
    `evaluate()` gives that point's {"target": ..., "attacks": ...}; `final` (the run's results
    so far) is reused for the last epoch, which is the final model. The final weights are back
    in place afterwards."""
    last = max(target.snapshots)
    final_states = {
        tm.role: {k: v.detach().clone() for k, v in tm.model.state_dict().items()} for tm in models
    }
    out: dict[str, dict[str, Any]] = {}
    try:
        for epoch in sorted(target.snapshots):
            if epoch == last:
                out[str(epoch)] = {
                    "epoch": epoch,
                    "target": final["target"],
                    "attacks": final["attacks"],
                }
                continue
            for tm in models:
                if tm.defense.snapshot_epochs:
                    if epoch not in tm.snapshots:
                        raise RuntimeError(f"{tm.role} kept no weights after epoch {epoch}")
                    tm.model.load_state_dict(tm.snapshots[epoch])
                    tm.model.eval()
            out[str(epoch)] = {"epoch": epoch, **evaluate()}
    finally:
        for tm in models:
            tm.model.load_state_dict(final_states[tm.role])
            tm.model.eval()
    return out
