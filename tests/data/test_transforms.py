"""Batched on-device augmentation: random crop after zero padding, horizontal flip."""

import torch
import torch.nn.functional as F

from mia_bench.data.transforms import Preprocess, random_crop, random_flip


def _windows(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Every HxW window of the zero-padded image, (n_offsets, C, H, W), by a naive loop."""
    _, h, w = x.shape
    p = F.pad(x, (pad, pad, pad, pad))
    return torch.stack(
        [p[:, dy : dy + h, dx : dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    )


def test_random_crop_is_a_window_of_the_padded_image_and_covers_every_offset():
    torch.manual_seed(0)
    pad = 2
    x = torch.rand(400, 3, 6, 5) + 0.1  # no zeros inside, so each window is unique
    out = random_crop(x, pad, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    seen = set()
    for i in range(len(x)):
        match = (_windows(x[i], pad) == out[i]).flatten(1).all(1).nonzero().flatten().tolist()
        assert len(match) == 1, f"image {i} is not a window of its padded input"
        seen.add(match[0])
    assert seen == set(range((2 * pad + 1) ** 2))  # 25 offsets, 400 draws: all appear


def test_random_flip_mirrors_about_half_the_batch():
    x = torch.rand(1000, 1, 4, 4)
    out = random_flip(x, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    # Binomial(1000, 0.5): 400..600 holds with probability 1 - 2e-10.
    assert 400 <= int(mirrored.sum()) <= 600


def test_preprocess_pads_black_before_normalising_and_augments_only_in_training():
    mean, std = (0.5, 0.25, 0.1), (0.5, 0.5, 0.2)
    pre = Preprocess("image", mean, std, crop_padding=4, flip=True)
    x = torch.full((64, 3, 8, 8), 200, dtype=torch.uint8)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    inside, border = (200 / 255 - m) / s, (0.0 - m) / s
    torch.testing.assert_close(pre(x), inside.expand(64, 3, 8, 8))  # eval: normalise only
    out = pre(x, train=True, generator=torch.Generator().manual_seed(0))
    is_inside = torch.isclose(out, inside.expand_as(out))
    is_border = torch.isclose(out, border.expand_as(out))
    assert bool((is_inside | is_border).all()) and bool(is_border.any())
