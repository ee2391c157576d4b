"""Per-epoch training checkpoints, so that a killed run resumes where it stopped.

Every `trainer.checkpoint_every` epochs the trainer writes, atomically, everything that decides
the rest of the run: model and defense state (CRL's centers), every optimiser (momentum
buffers), the learning-rate schedule, the batch-order and augmentation generators, torch's
global RNG (dropout), the losses so far and any early-stopping snapshots. Resuming from it
continues with the same epoch counter, so RelaxLoss / CRL keep their even/odd-epoch parity,
and ends with exactly the weights of an uninterrupted run on the CPU.

The file sits next to the model's cache entry (`<key>.ckpt`) and is deleted once the finished
model is stored. Defenses whose hidden state is not in their `state_dict` (an Opacus privacy
accountant, Adv-Reg's inference-model optimiser) set `Defense.resumable = False` and train
without checkpoints.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mia_bench.io import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass
class Checkpointer:
    path: Path
    every: int

    def active(self) -> bool:
        return self.every > 0

    def save(
        self,
        epochs_done: int,
        *,
        model: torch.nn.Module,
        defense: torch.nn.Module,
        optimizers: Sequence[torch.optim.Optimizer],
        scheduler: Any,
        generators: Sequence[torch.Generator],
        epoch_loss: list[float],
        snapshots: dict[int, dict[str, torch.Tensor]],
    ) -> None:
        state = {
            "epochs_done": epochs_done,
            "model": model.state_dict(),
            "defense": defense.state_dict(),
            "optimizers": [o.state_dict() for o in optimizers],
            "scheduler": scheduler.state_dict(),
            "generators": [g.get_state() for g in generators],
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "epoch_loss": torch.tensor(epoch_loss, dtype=torch.float64),
            "snapshots": {str(k): v for k, v in snapshots.items()},
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.path, buf.getvalue())

    def restore(
        self,
        *,
        model: torch.nn.Module,
        defense: torch.nn.Module,
        optimizers: Sequence[torch.optim.Optimizer],
        scheduler: Any,
        generators: Sequence[torch.Generator],
    ) -> tuple[int, list[float], dict[int, dict[str, torch.Tensor]]]:
        """(epochs already done, their losses, snapshots); (0, [], {}) when there is nothing
        usable to resume from. A damaged file is reported and ignored."""
        if not self.path.exists():
            return 0, [], {}
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
            defense.load_state_dict(state["defense"])
            for opt, sd in zip(optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(sd)
            scheduler.load_state_dict(state["scheduler"])
            for gen, gs in zip(generators, state["generators"], strict=True):
                gen.set_state(gs)
            torch.set_rng_state(state["torch_rng"])
            if state["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
        except Exception as err:  # noqa: BLE001 - a bad checkpoint only costs the time to retrain
            log.warning("training checkpoint %s is unusable (%s); starting over", self.path, err)
            self.clear()
            return 0, [], {}
        done = int(state["epochs_done"])
        log.info("resuming %s after epoch %d", self.path.name, done)
        snaps = {int(k): v for k, v in state["snapshots"].items()}
        return done, state["epoch_loss"].tolist(), snaps

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
