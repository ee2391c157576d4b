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

from typing import TYPE_CHECKING, Any

from mia_bench.signals.compute import Signals

if TYPE_CHECKING:
    from mia_bench.experiment.run import Experiment
    from mia_bench.experiment.trained import TrainedModel

METRIC_KEYS = ("auc", "auc_ci95", "acc", "tpr_at_0.1%fpr", "tpr_at_1%fpr", "advantage")


def accuracies(sig: Signals) -> tuple[float, float]:
    """(train, test) accuracy of the answers the attacker sees (after any test-time defense),
    from a model's signals on its members and non-members."""
    correct = sig.logits.argmax(1) == sig.labels
    return float(correct[sig.member].mean()), float(correct[~sig.member].mean())


def target_summary(sig: Signals) -> dict[str, Any]:
    """Utility and loss statistics of the target from its signals (members = its training set);
    accuracies are those of the answers the attacker sees (after any test-time defense)."""
    member = sig.member
    train_acc, test_acc = accuracies(sig)
    train_loss, test_loss = sig.loss[member], sig.loss[~member]
    return {
        "train_acc": train_acc,
        "test_acc": test_acc,
        "gap": train_acc - test_acc,
        "train_loss_mean": float(train_loss.mean()),
        "train_loss_var": float(train_loss.var()),
        "test_loss_mean": float(test_loss.mean()),
        "test_loss_var": float(test_loss.var()),
        "n_members": int(member.sum()),
        "n_nonmembers": int((~member).sum()),
    }


def not_applicable(reason: str) -> dict[str, Any]:
    """The metrics entry of an attack the defense rules out: every metric null, and why."""
    return {**dict.fromkeys(METRIC_KEYS), "not_applicable": reason}


def evaluate_checkpoints(
    exp: Experiment, target: TrainedModel, shadows: list[TrainedModel], final: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """One entry per snapshot epoch of the target; `final` (the run's results so far) is reused
    for the last one, which is the final model."""
    # reference models (LiRA / RMIA) trained with the same defense go back in time too
    models = [target, *shadows, *exp.reference_list()]
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
            if exp.refs is not None:
                exp.refs.collect()
            target_sig = exp.signals(target)
            shadow_sigs = [exp.signals(s) for s in shadows]
            attacks, _, _ = exp.attack_all(target_sig, shadow_sigs)
            out[str(epoch)] = {
                "epoch": epoch,
                "target": target_summary(target_sig),
                "attacks": attacks,
            }
    finally:
        for tm in models:
            tm.model.load_state_dict(final_states[tm.role])
            tm.model.eval()
        if exp.refs is not None:
            exp.refs.collect()
    return out


def checkpoint_rows(
    results: dict[str, Any],
) -> list[tuple[int, float, float, dict[str, float | None]]]:
    """(epoch, train acc, test acc, {attack: AUC}) per checkpoint, in epoch order."""
    rows = []
    for entry in sorted(results.get("checkpoints", {}).values(), key=lambda e: e["epoch"]):
        aucs = {name: m.get("auc") for name, m in entry["attacks"].items()}
        rows.append(
            (entry["epoch"], entry["target"]["train_acc"], entry["target"]["test_acc"], aucs)
        )
    return rows
