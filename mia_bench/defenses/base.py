"""The Defense interface: how a model is trained, and optionally how it answers queries.

The trainer counts epochs from 0 and hands `loss` that count; a defense whose paper counts
otherwise converts it (CRL's Algorithm 1 counts from 1, RelaxLoss's code from 0).

Life cycle of one model, every step optional but `loss`:

1. `wrap_model(model)`: change the architecture (dropout rate, GroupNorm for DP-SGD);
2. `attach(ctx)`: the pipeline hands over a `DefenseContext` (reference data, teachers);
3. `setup(model, optimizer, train_data)`: before the first epoch; may return `TrainingParts`
   to replace the model the trainer steps through, its optimiser, its training data, or the
   way batches are drawn (DP-SGD, DMP);
4. `loss(...)` once per batch; `end_training()` after the last epoch;
5. `after_training(model, ctx)`: once the trained model is final, also when it came from the
   cache (MemGuard fits its surrogate here); then `postprocess(logits)` at query time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

# (number of samples, generator) -> index tensors, one per batch.
BatchSampler = Callable[[int, torch.Generator], Iterable[torch.Tensor]]


@dataclass
class DefenseContext:
    """What a defense may need beyond its batch; built by the pipeline for each model.

    role: the model's role ("target", "shadow0", ...); seed: that model's seed.
    x, y: the whole dataset (raw, on the CPU, before `preprocess`; not copied), with
    train_idx: the model's training set, and reference_idx: the split's reference fold
    (disjoint from every member and query set); `train` and `reference` slice them on demand.
    teacher(defense_cfg, subset=None, name="teacher"): a model of the same architecture trained
    on the same training set (or on the positions `subset` of it, under the role
    `<role>.<name>`: SELENA's sub-models) with `defense_cfg` (a defense config mapping), from
    the model cache when it exists; eval mode, on `device`. Calling it leaves the global RNG
    as it was.
    batch_size / eval_batch_size: the trainer's (DP-SGD's sampling rate needs the first).
    """

    role: str
    seed: int
    device: torch.device
    preprocess: Callable[..., torch.Tensor]
    x: torch.Tensor
    y: torch.Tensor
    train_idx: np.ndarray
    reference_idx: np.ndarray
    teacher: Callable[..., nn.Module]
    batch_size: int = 64
    eval_batch_size: int = 4096

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[self.train_idx], self.y[self.train_idx]

    @property
    def reference(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[self.reference_idx], self.y[self.reference_idx]

    @classmethod
    def from_tensors(
        cls,
        train: tuple[torch.Tensor, torch.Tensor],
        reference: tuple[torch.Tensor, torch.Tensor],
        **kwargs: Any,
    ) -> DefenseContext:
        """A context over given training and reference tensors (tests, notebooks)."""
        n = len(train[1])
        return cls(
            x=torch.cat([train[0], reference[0]]),
            y=torch.cat([train[1], reference[1]]),
            train_idx=np.arange(n),
            reference_idx=np.arange(n, n + len(reference[1])),
            **kwargs,
        )


@dataclass
class TrainingParts:
    """Replacements `Defense.setup` may hand the trainer; None keeps the trainer's own.

    model: what the trainer calls forward on (e.g. Opacus's GradSampleModule wrapping the
        model; the wrapped model's parameters must be the original's).
    optimizer: what the trainer steps (e.g. Opacus's DPOptimizer around the trainer's SGD;
        the learning-rate schedule stays on the trainer's SGD, whose param groups it shares).
    data: (x, targets) to train on instead of the model's training set (DMP's soft labels).
    batches: how batches are drawn each epoch (Poisson sampling for DP-SGD).
    """

    model: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    data: tuple[torch.Tensor, torch.Tensor] | None = None
    batches: BatchSampler | None = None


class Defense(nn.Module):
    """Base class. A defense is an `nn.Module` so that learnable state (CRL's class centers)
    moves to the device with `.to(device)` and is saved with the model's checkpoint.

    Subclasses override `loss`; the rest is optional.
    """

    name: str = "none"
    # Set when `loss` reads the model's penultimate features (the trainer then computes them).
    needs_features: bool = False
    # Set when `loss` reads the batch's model input: the trainer then passes `inputs=` (the
    # preprocessed, augmented batch) to `loss` (distillation: the teacher sees the same input).
    needs_inputs: bool = False
    # False when training state lives outside `state_dict()` and the defense's optimisers, so a
    # per-epoch checkpoint could not resume it exactly (mia_bench.train.resume).
    resumable: bool = True
    # Set when the defense reads the reference fold (the model's cache key then includes it).
    uses_reference: bool = False
    # Signals this defense cannot give, e.g. gradients for a test-time output defense;
    # attacks that need them are reported as not applicable.
    blocks_signals: frozenset[str] = frozenset()
    # Config keys that act only at query time (in `after_training` / `postprocess`): left out
    # of the model's cache key, so a sweep over them reuses one trained model.
    query_time_params: frozenset[str] = frozenset()
    # Epoch counts (1 = after the first epoch) at which the trainer keeps a copy of the
    # weights; each becomes one evaluated point (early stopping).
    snapshot_epochs: tuple[int, ...] = ()

    def __init__(self, num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.ctx: DefenseContext | None = None

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        epoch: int,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The scalar training objective for one batch; `epoch` counts from 0. A defense with
        `needs_inputs` also receives `inputs=` (the batch as the model saw it)."""
        raise NotImplementedError

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Change the architecture before training (dropout rate, GroupNorm for DP-SGD)."""
        return model

    def attach(self, ctx: DefenseContext) -> None:
        """Receive the run's context before training (and before `after_training`)."""
        self.ctx = ctx

    def attached_context(self, purpose: str) -> DefenseContext:
        """The context `attach` handed over; a RuntimeError saying what it is needed for when
        there is none (a defense used outside the pipeline without `attach`)."""
        if self.ctx is None:
            raise RuntimeError(f"{self.name} needs a DefenseContext (Defense.attach) for {purpose}")
        return self.ctx

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, train_data: Any
    ) -> TrainingParts | None:
        """Called once before the first epoch (teachers, privacy engines, ...); may return
        replacements for the trainer's model, optimiser, data or batch sampler."""
        return None

    def end_training(self) -> None:
        """Called by the trainer after the last epoch (undo what `setup` attached)."""

    def after_training(self, model: nn.Module, ctx: DefenseContext | None) -> None:
        """Called once the model is final (trained or loaded from the cache), in eval mode."""

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimisers of the defense's own parameters, stepped after the model's each batch."""
        return []

    def postprocess(self, logits: torch.Tensor) -> torch.Tensor:
        """Test-time change of the model's output (MemGuard); identity by default."""
        return logits

    def describe(self) -> dict[str, Any]:
        """Parameters recorded in results.json."""
        return {"name": self.name}
