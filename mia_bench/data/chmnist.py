"""CH-MNIST: Kather et al. (2016) colorectal histology tiles, 5,000 greyscale images of 8
tissue types, in the Kaggle "colorectal-histology-mnist" CSV used by RelaxLoss (App. B.1).

On disk: `<data_dir>/hmnist_28_28_L.csv` (28x28, what RelaxLoss uses) or
`<data_dir>/hmnist_64_64_L.csv` (64x64), also accepted under `<data_dir>/chmnist/`. One row per
image: a header, the pixel columns `pixel0000..`, and a `label` column with classes 1..8.
Kaggle needs a login, so the file is placed by hand. No checksum is published for it;
`dataset.verify=true` checks the published shape instead: 5,000 rows, 8 classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mia_bench.data.base import TensorData
from mia_bench.data.files import Remote, data_root, missing_error
from mia_bench.data.images import image_data
from mia_bench.data.tensor_cache import cached
from mia_bench.errors import ConfigError

KAGGLE = "https://www.kaggle.com/datasets/kmader/colorectal-histology-mnist"
N_IMAGES, N_CLASSES = 5000, 8


def remote(size: int) -> Remote:
    return Remote(
        f"hmnist_{size}_{size}_L.csv",
        how=f"download the Kaggle dataset {KAGGLE} (a Kaggle login is needed) and unzip it",
    )


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 1, S, S), labels as stored) from one hmnist_S_S_L.csv."""
    import pandas as pd  # imported here: only file-backed datasets need it

    with open(path) as f:
        first = f.readline()
    has_header = any(ch.isalpha() for ch in first)
    frame = pd.read_csv(path, header=0 if has_header else None)
    cols = [str(c).strip().lower() for c in frame.columns]
    label_col = cols.index("label") if "label" in cols else len(cols) - 1
    labels = frame.iloc[:, label_col].to_numpy(dtype=np.int64)
    pixels = frame.drop(columns=frame.columns[label_col]).to_numpy()
    side = math.isqrt(pixels.shape[1])
    if side * side != pixels.shape[1] or pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise ConfigError(
            "dataset",
            f"chmnist: {path} must hold a square greyscale image (0..255) per row plus a label "
            f"column; got {pixels.shape[1]} pixel columns",
        )
    return pixels.astype(np.uint8).reshape(-1, 1, side, side), labels


def load_chmnist(
    data_dir: str | None = None,
    download: bool = False,
    verify: bool = True,
    image_size: int = 28,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TensorData:
    if image_size not in (28, 64):
        raise ConfigError(
            "dataset.image_size", f"choose 28 or 64 (the Kaggle CSVs), got {image_size}"
        )
    root = data_root(data_dir)
    src = remote(image_size)
    path = next(
        (d / src.filename for d in (root, root / "chmnist") if (d / src.filename).is_file()), None
    )
    if path is None:
        # download=true cannot help: the message says how to get the file instead.
        other = remote(92 - image_size).filename  # the other size: 28 <-> 64
        hint = ""
        if any((d / other).is_file() for d in (root, root / "chmnist")):
            hint = f" ({other} is there: set dataset.image_size={92 - image_size} to use it.)"
        raise missing_error("chmnist", src.filename, root, src, extra=hint)

    def decode() -> dict:
        x, y = read_csv(path)
        # Labels are 1..8 in the Kaggle file; accept 0-based files as well.
        y = y - 1 if len(y) and y.min() >= 1 else y
        if verify and (len(y) != N_IMAGES or len(np.unique(y)) != N_CLASSES):
            raise ConfigError(
                "dataset.verify",
                f"chmnist: {path} has {len(y)} rows and {len(np.unique(y))} classes; the published "
                f"file has {N_IMAGES} rows and {N_CLASSES} classes (is it the skin-lesion "
                f"HMNIST of HAM10000?). Use the file from {KAGGLE}, or set dataset.verify=false.",
            )
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}

    t = cached(root, f"chmnist{image_size}", [path], {"verify": bool(verify)}, decode)
    return image_data("chmnist", t["x"], t["y"], N_CLASSES, mean, std, {"digest": t["digest"]})
