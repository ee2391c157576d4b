"""What the attacker sees of a model: its logits on queries, after the defense's test-time change.

The one function every stage queries a model with: signals and accuracies of audited models,
reference-model outputs for LiRA / RMIA, and defenses that read a model's outputs while they
train (DMP's teacher, SELENA's sub-models, MemGuard's and HAMP's fitting, with no `postprocess`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mia_bench.data.transforms import Preprocess


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    preprocess: Preprocess,
    device: torch.device,
    postprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 4096,
) -> torch.Tensor:
    """The model's logits (eval mode) for every row of x, computed in batches of `batch_size`,
    then changed by the defense's test-time `postprocess` if one is given; float32 on the CPU."""
    model.to(device).eval()
    out = [
        model(preprocess(x[i : i + batch_size].to(device))).float()
        for i in range(0, len(x), batch_size)
    ]
    logits = torch.cat(out).cpu() if out else torch.zeros(0)
    if postprocess is not None:
        logits = postprocess(logits.to(device)).float().cpu()
    return logits
