"""Turn stored tensors into model inputs on the device, in whole batches.

Images stay uint8 until the batch is on the device; normalisation and augmentation
(random crop with zero padding, horizontal flip) run there, batched, as cifar10-airbench does,
so no DataLoader workers are needed.
"""

from __future__ import annotations

import torch


class Preprocess:
    """x (uint8 images or float features) -> float model input."""

    def __init__(
        self,
        kind: str,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        crop_padding: int = 0,
        flip: bool = False,
    ) -> None:
        self.kind = kind
        self.crop_padding = crop_padding
        self.flip = flip
        self._mean = torch.tensor(mean).view(1, -1, 1, 1) if mean is not None else None
        self._std = torch.tensor(std).view(1, -1, 1, 1) if std is not None else None
        # One copy per device, so a training step does no host-to-device transfer.
        self._stats_on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor, *, train: bool = False, generator=None) -> torch.Tensor:
        if self.kind != "image":
            return x.float()
        x = x.float().div_(255.0)
        # Augment before normalising, so the padding is black as in torchvision's
        # RandomCrop(padding=p) followed by Normalize (the papers' pipelines).
        if train and self.crop_padding > 0:
            x = random_crop(x, self.crop_padding, generator)
        if train and self.flip:
            x = random_flip(x, generator)
        if self._mean is not None:
            if x.device not in self._stats_on:
                self._stats_on[x.device] = (self._mean.to(x.device), self._std.to(x.device))
            mean, std = self._stats_on[x.device]
            x = (x - mean) / std
        return x


def random_crop(
    x: torch.Tensor, pad: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pad by `pad` pixels (zeros) and cut a random HxW window per image, batched via unfold-free
    gather: build index grids shifted by each image's offset."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (b,), device=x.device, generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (b,), device=x.device, generator=generator)
    rows = (dy.view(b, 1) + torch.arange(h, device=x.device).view(1, h)).view(b, 1, h, 1)
    cols = (dx.view(b, 1) + torch.arange(w, device=x.device).view(1, w)).view(b, 1, 1, w)
    c = x.shape[1]
    rows = rows.expand(b, c, h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = cols.expand(b, c, h, w)
    return out.gather(3, cols)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror a random half of the batch left-right."""
    mask = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)
