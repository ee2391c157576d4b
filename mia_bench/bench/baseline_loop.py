"""The benchmark's plain baseline: a training loop written the way the papers' public code
trains, which part (a) times against our trainer.

torchvision-style: a Dataset that turns each stored image into a PIL image and applies
per-sample transforms (`ToTensor`, `Normalize`, optionally `RandomCrop`/`RandomHorizontalFlip`),
a DataLoader with worker processes, fp32, and the running loss read with `.item()` every step
for logging. Only `mia_bench.bench` uses it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mia_bench.bench.common import timed


class _PerSampleDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 dataset does per item: HWC uint8 array -> PIL -> transform."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform) -> None:
        self.x = x.permute(0, 2, 3, 1).contiguous().numpy()
        self.y = y.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def baseline_epoch(
    model, x, y, device: torch.device, augment: bool, *, mean, std, recipe: dict, workers: int = 4
) -> float:
    """One epoch the papers' way; returns seconds (worker start-up included, as every epoch
    of their loop pays it)."""
    import warnings

    from torchvision import transforms as T

    # torch warns when workers outnumber cores; 4 workers is the setting being reproduced.
    warnings.filterwarnings("ignore", message="This DataLoader will create")

    steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
    tf = T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])
    loader = torch.utils.data.DataLoader(
        _PerSampleDataset(x, y, tf),
        batch_size=recipe["batch_size"],
        shuffle=True,
        num_workers=workers,
    )
    model.to(device).train()
    opt = torch.optim.SGD(
        model.parameters(),
        lr=recipe["lr"],
        momentum=recipe["momentum"],
        weight_decay=recipe["weight_decay"],
    )

    def epoch() -> None:
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()  # their loops log the running loss every step

    return timed(epoch, device)
