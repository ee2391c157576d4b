"""Step 5 of a run, the numbers results.json holds beside the attacks' metrics: the target's
utility and loss statistics, each model's accuracies, and the environment."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from mia_bench import __version__
from mia_bench.experiment.context import container
from mia_bench.experiment.reference import ReferenceModels
from mia_bench.experiment.trained import TrainedModel
from mia_bench.metrics import METRIC_KEYS
from mia_bench.signals.compute import Signals


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


def model_entry(tm: TrainedModel, train_acc: float, test_acc: float) -> dict[str, Any]:
    """results.json `models[role]`: where the model came from, what it cost, how it fits."""
    return {
        "cache_hit": tm.cache_hit,
        "seconds": round(tm.seconds, 3),
        "train_acc": train_acc,
        "test_acc": test_acc,
        "final_train_loss": tm.epoch_loss[-1] if tm.epoch_loss else None,
    }


def assemble(
    cfg: DictConfig,
    target: TrainedModel,
    target_sig: Signals,
    num_shadows: int,
    refs: ReferenceModels | None,
    attacks: dict[str, dict],
    models: dict[str, dict],
    attack_hits: dict[str, bool],
    device: torch.device,
) -> dict[str, Any]:
    """results.json's sections, in their order; `timing` is filled in last."""
    return {
        "config": container(cfg),
        "target": target_summary(target_sig),
        "defense": target.defense.describe(),
        "shadow": {
            "defense": cfg.shadow.defense,
            "count": num_shadows,
            "adaptive": cfg.shadow.defense == "same",
        },
        "reference": (
            {
                "num_models": len(refs.models),
                "population": len(refs.population),
                "defense": cfg.shadow.defense,
            }
            if refs is not None
            else None
        ),
        "attacks": attacks,
        "models": models,
        "attack_cache_hits": attack_hits,
        "timing": {},
        "env": environment(device),
    }


def environment(device: torch.device) -> dict[str, str]:
    import hydra
    import sklearn

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    return {
        "mia_bench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "hydra": hydra.__version__,
        "device": str(device),
        "device_name": name,
        "threads": str(torch.get_num_threads()),
    }


def completed_results(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any] | None:
    """The results of an earlier, complete run of exactly this config in this folder, if any.

    results.json is written last and atomically, so its presence means the run finished; a
    rerun of the same sweep (same `hydra.sweep.dir`) then skips the jobs that are done.
    """
    path = Path(output_dir) / "results.json"
    if not path.exists():
        return None
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return results if results.get("config") == container(cfg) else None
