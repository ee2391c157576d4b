"""results.json `audit`: every attack's metrics on the target's canaries, the empirical epsilon
lower bounds they give, and, for DP-SGD, the accountant's epsilon at the same delta.

Which attacks adapt to the defense (Aerni, Zhang & Tramer, CCS 2024, Sec. 5): with
`shadow.defense=same` the shadows and the LiRA / RMIA reference models are trained with the
target's defense, so every attack that fits on shadows (nn, the shadow-chosen thresholds) or
reads reference models (lira_online / lira_offline, rmia) is adaptive to it; the headline is
lira_online. With `shadow.defense=none` no attack is adaptive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mia_bench.audit.epsilon import epsilon_lower_bounds
from mia_bench.metrics import attack_metrics

HEADLINE = "lira_online"


def theoretical_epsilon(defense: Any, delta: float) -> dict[str, Any] | None:
    """The accountant's epsilon at `delta` of a defense that has one (DP-SGD), with whether its
    batches were Poisson-sampled as the accountant assumes (Chua et al., ICML 2024: with
    shuffled batches the reported epsilon does not hold); None for other defenses."""
    epsilon = getattr(defense, "epsilon", None)
    if not callable(epsilon):
        return None
    return {
        "epsilon": epsilon(delta=delta),
        "delta": delta,
        "poisson_sampling": bool(getattr(defense, "poisson_sampling", False)),
        "valid": bool(getattr(defense, "poisson_sampling", False)),
    }


def audit_results(
    settings: dict[str, Any],
    canary_scores: dict[str, np.ndarray],
    member: np.ndarray,
    defense: Any,
    adaptive: bool,
) -> dict[str, Any]:
    """The `audit` block of results.json from each attack result's scores on the canaries
    (`member`: the target trained on the canary)."""
    member = np.asarray(member, dtype=bool)
    both = bool(member.any() and (~member).any())
    canaries, bounds = {}, {}
    for name, s in canary_scores.items():
        canaries[name] = attack_metrics(s, member, None) if both else None
        bounds[name] = (
            epsilon_lower_bounds(s, member, settings["delta"], settings["alpha"]) if both else None
        )
    return {
        **settings,
        "num_in": int(member.sum()),
        "num_out": int((~member).sum()),
        "adaptive": adaptive,
        "headline": HEADLINE if HEADLINE in canary_scores else None,
        "canaries": canaries,
        "epsilon_lower_bound": bounds,
        "epsilon_theory": theoretical_epsilon(defense, settings["delta"]),
    }


def ranking_attack(names: list[str]) -> str:
    """The attack whose scores rank samples by vulnerability: the headline (LiRA online) when
    it ran, else the loss attack, else the first one."""
    for name in (HEADLINE, "loss"):
        if name in names:
            return name
    return names[0]


def most_vulnerable(
    scores: dict[str, np.ndarray],
    member: np.ndarray,
    index: np.ndarray,
    labels: np.ndarray,
    canary: np.ndarray,
    x: np.ndarray | None = None,
    k: int = 32,
) -> dict[str, np.ndarray]:
    """The k members of the target (usual and canaries) that the ranking attack scores highest,
    i.e. the training samples it exposes first: dataset index, label as trained, score,
    whether a canary, and for image data the images themselves (vulnerable.npz)."""
    attack = ranking_attack([n for n in scores if n not in ("member", "target_loss")])
    s = np.nan_to_num(np.asarray(scores[attack], dtype=np.float64), nan=-np.inf)
    members = np.flatnonzero(np.asarray(member, dtype=bool))
    top = members[np.argsort(-s[members], kind="mergesort")[:k]]
    out = {
        "attack": np.array(attack),
        "index": np.asarray(index)[top],
        "label": np.asarray(labels)[top],
        "score": s[top],
        "canary": np.asarray(canary, dtype=bool)[top],
    }
    if x is not None:
        out["x"] = np.asarray(x)[out["index"]]
    return out
