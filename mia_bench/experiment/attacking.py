"""Step 4 of a run: every attack fits on the shadows' signals and scores the target's queries,
through the attack cache (a `ModelCache` of kind "attacks"), then the metrics of its scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mia_bench.attacks.base import Attack
from mia_bench.cache import ModelCache, arrays_digest
from mia_bench.experiment.results import not_applicable
from mia_bench.metrics import attack_metrics
from mia_bench.signals.compute import Signals


def _signal_arrays(s: Signals) -> dict[str, np.ndarray]:
    extra = {f"extra.{k}": v for k, v in s.extra.items()}
    if s.population is not None:  # the model's outputs on the reference population (LiRA, RMIA)
        extra["population.index"] = s.population.index
        extra["population.logits"] = s.population.logits
    if s.public is not None:  # the model's signals on public non-members (quantile regression)
        extra.update({f"public.{k}": v for k, v in _signal_arrays(s.public).items()})
    return {"logits": s.logits, "labels": s.labels, "member": s.member, **extra}


def _tensors(d: dict[str, Any], dtype: Any) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v, dtype)) for k, v in d.items() if v is not None}


def attack_outputs(
    cache: ModelCache,
    attack: Attack,
    attack_cfg: dict[str, Any],
    seed: int,
    shadow: list[Signals],
    target: Signals,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], bool]:
    """(scores, member decisions, cache_hit) of one attack fitted on `shadow` and applied to
    `target`. Keyed by the attack's config, the run seed and the exact signals that
    fit/score/predict receive, so that a repeated sweep refits no attack model (the NN attack
    alone costs more than loading the cached target and shadows). An attack that reads
    anything else must add it to this key."""
    spec = {
        "attack": attack_cfg,
        "seed": seed,
        "shadow": [arrays_digest(_signal_arrays(s)) for s in shadow],
        "target": arrays_digest(_signal_arrays(target)),
    }
    inputs = attack.cache_inputs()
    if inputs:  # e.g. the reference models' outputs that LiRA / RMIA were given
        spec["inputs"] = arrays_digest(inputs)

    def make() -> tuple[dict[str, Any], dict[str, Any]]:
        attack.fit(shadow)
        sc, pred = attack.score(target), attack.predict(target)
        return {"score": _tensors(sc, np.float64), "pred": _tensors(pred, bool)}, {}

    state, _, hit = cache.get_or_make(spec, make)
    arrays = {part: {k: v.numpy() for k, v in state[part].items()} for part in ("score", "pred")}
    return arrays["score"], arrays["pred"], hit


def attack_all(
    attacks: list[Attack],
    attack_cfgs: dict[str, dict[str, Any]],
    seed: int,
    cache: ModelCache,
    target_sig: Signals,
    shadow_sigs: list[Signals],
    inapplicable: dict[str, str],
    usual: int | None = None,
) -> tuple[dict, dict, dict]:
    """Fit every attack on the shadows and score the target (through `cache`): (metrics,
    scores, cache hits) by result name; `attack_cfgs` is each attack's config by name, the
    attack cache's key part. Attacks the defense makes inapplicable (`inapplicable`: result
    name -> why) get null metrics and the reason. Metrics read the first `usual` queries (all
    by default); the rest are canaries, scored alike and judged by `audit_results`."""
    n = len(target_sig) if usual is None else usual
    metrics: dict[str, dict] = {}
    scores: dict[str, np.ndarray] = {}
    hits: dict[str, bool] = {}
    for attack in attacks:
        sc, pred, hits[attack.name] = attack_outputs(
            cache, attack, attack_cfgs[attack.name], seed, shadow_sigs, target_sig
        )
        for name, s in sc.items():
            scores[name] = np.asarray(s, dtype=np.float64)
            p = pred.get(name)
            metrics[name] = attack_metrics(
                s[:n], target_sig.member[:n], p[:n] if p is not None else None
            )
    for name, reason in inapplicable.items():
        metrics[name] = not_applicable(reason)
    return metrics, scores, hits
