"""Step 3 of a run: what the attacker observes of each audited model, its signals on its own
members (training set) and non-members (test set), on the target's canaries, and, for LiRA /
RMIA, on the reference population (`ReferenceModels.attach`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from mia_bench.experiment.context import RunContext
from mia_bench.experiment.reference import ReferenceModels, attacker_logits
from mia_bench.experiment.trained import TrainedModel
from mia_bench.signals.compute import PopulationView, Signals, compute_signals

Views = Mapping[str, Sequence[Callable[[torch.Tensor], torch.Tensor]]]


def model_signals(
    ctx: RunContext,
    tm: TrainedModel,
    needs: frozenset[str],
    views: Views,
    refs: ReferenceModels | None,
) -> Signals:
    """Signals of a model on its own members (train set) and non-members (test set): those the
    attacks `needs`, label correctness on the augmented query `views` of label-only attacks,
    and the population view when reference models run."""
    idx = np.concatenate([tm.train_idx, tm.test_idx])
    member = np.r_[np.ones(len(tm.train_idx), bool), np.zeros(len(tm.test_idx), bool)]
    sig = compute_signals(
        tm.model,
        ctx.data.x[idx],
        ctx.data.y[idx],
        member,
        preprocess=ctx.preprocess,
        device=ctx.device,
        postprocess=tm.defense.postprocess,
        batch_size=ctx.eval_batch_size,
        needs=needs,
        views=views,
    )
    if "public" in needs and tm.role == "target":  # only the audited model is scored
        pub = ctx.split.reference
        sig.public = compute_signals(
            tm.model,
            ctx.data.x[pub],
            ctx.data.y[pub],
            np.zeros(len(pub), bool),
            preprocess=ctx.preprocess,
            device=ctx.device,
            postprocess=tm.defense.postprocess,
            batch_size=ctx.eval_batch_size,
            needs=frozenset({"inputs"}),
        )
    if refs is not None:
        refs.attach(ctx, tm, sig)
    return sig


def canary_signals(
    ctx: RunContext,
    target: TrainedModel,
    needs: frozenset[str],
    views: Views,
    refs: ReferenceModels | None,
) -> Signals:
    """Signals of the target on the canaries (member = the target trained on it), with
    their labels as trained and, for LiRA / RMIA, the population view."""
    can = ctx.canaries
    sig = compute_signals(
        target.model,
        ctx.data.x[can.index],
        ctx.data.y[can.index],
        can.keep_row(target.role),
        preprocess=ctx.preprocess,
        device=ctx.device,
        postprocess=target.defense.postprocess,
        batch_size=ctx.eval_batch_size,
        needs=needs,
        views=views,  # label-only attacks score canaries through the same queries
    )
    if refs is not None:
        refs.attach(ctx, target, sig, can.index)
    return sig


def join_queries(target_sig: Signals, canary_sig: Signals) -> Signals:
    """The target's usual queries followed by its canaries, as one query set for the attacks
    (every attack scores each query on its own); population views are joined too, and the
    audited model's signals on the public reference fold (quantile regression) carried over."""
    joined = Signals.concat([target_sig, canary_sig])
    a, b = target_sig.population, canary_sig.population
    if a is not None and b is not None:
        joined.population = PopulationView(np.r_[a.index, b.index], a.logits)
    joined.public = target_sig.public
    return joined


def answer_accuracies(ctx: RunContext, tm: TrainedModel) -> tuple[float, float]:
    """(train, test) accuracy of the answers the attacker sees, with one pass over both (for
    models whose signals are not computed: teachers, reference models)."""
    idx = np.concatenate([tm.train_idx, tm.test_idx])
    logits = attacker_logits(ctx, tm, idx)
    correct = logits.argmax(1) == ctx.data.y[idx].numpy()
    n = len(tm.train_idx)
    return float(correct[:n].mean()), float(correct[n:].mean())
