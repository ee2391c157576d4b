"""Writes my_data.npz: 1,500 greyscale 16x16 images of 3 classes (a horizontal bar, a vertical
bar or a diagonal at a random place, under heavy pixel noise), the format dataset=npz reads:
x (N, 1, 16, 16) uint8, y (N,) int labels 0..2. Replace it with your own arrays."""

import numpy as np


def make(n: int = 1500, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0.0, 0.7, (n, size, size))
    for i, label in enumerate(y):
        a, b = rng.integers(2, size - 2, 2)
        if label == 0:
            x[i, a, 1:-1] += 1.0
        elif label == 1:
            x[i, 1:-1, b] += 1.0
        else:
            x[i][np.eye(size, k=int(a) - size // 2, dtype=bool)] += 1.0
    pixels = np.clip((x + 0.5) * 170.0, 0, 255).astype(np.uint8)
    return pixels[:, None], y


if __name__ == "__main__":
    x, y = make()
    np.savez_compressed("my_data.npz", x=x, y=y)
    print(f"my_data.npz: x {x.shape} {x.dtype}, y {y.shape}, classes {np.bincount(y).tolist()}")
