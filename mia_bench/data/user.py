"""A user's own data without writing a loader: one `.npz` file (`dataset=npz`) or a folder of
images in torchvision's ImageFolder layout (`dataset=image_folder`).

npz: arrays `x` (N, ...) and `y` (N,) integer labels 0..K-1. `x` 4-D is images, (N, C, H, W)
or (N, H, W, C) with 1 or 3 channels, uint8 0..255 or floats in [0, 1] (stored as uint8);
2-D is tabular features, used as they are (float32). Optional arrays `mean` / `std`: the
images' per-channel normalisation on the [0, 1] scale (else `dataset.mean` / `dataset.std`,
else the pooled images' statistics).

image_folder: `root/<class>/<image>` (class names sorted give labels 0..K-1, as
torchvision.datasets.ImageFolder assigns them), each image converted to RGB (or greyscale with
`channels: 1`) and resized to `image_size` x `image_size`.

Both are decoded once into the tensor cache under `paths.data_dir` (keyed by the files' size
and modification time) and pooled: the split protocol cuts every fold from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mia_bench import checks
from mia_bench.data.base import TensorData
from mia_bench.data.files import data_root
from mia_bench.data.images import image_data
from mia_bench.data.tensor_cache import cached
from mia_bench.errors import ConfigError


def _file(path: str | None, key: str) -> Path:
    if not path:
        raise ConfigError(key, "is required: the file to read (dataset.path=/data/mine.npz)")
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(key, f"{p} is not a file")
    return p


def _labels(y: np.ndarray, path: Path, num_classes: int | None) -> tuple[np.ndarray, int]:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(
            "dataset.path", f"{path}: y must be a 1-D integer array, got {y.dtype} {y.shape}"
        )
    if len(y) and y.min() < 0:
        raise ConfigError("dataset.path", f"{path}: labels must be 0..K-1, found {int(y.min())}")
    k = int(y.max()) + 1 if len(y) else 0
    if num_classes is not None:
        if num_classes < k:
            raise ConfigError(
                "dataset.num_classes", f"is {num_classes} but labels go up to {k - 1}"
            )
        k = int(num_classes)
    return y.astype(np.int64), k


def images_uint8(x: np.ndarray, path: Path) -> np.ndarray:
    """(N, C, H, W) uint8 from uint8 or [0, 1] float images, channels first or last."""
    if x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise ConfigError(
            "dataset.path", f"{path}: images need 1 or 3 channels, got shape {x.shape}"
        )
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating) or x.min(initial=0) < 0 or x.max(initial=0) > 1:
            raise ConfigError(
                "dataset.path",
                f"{path}: images must be uint8 0..255 or floats in [0, 1], got {x.dtype}",
            )
        x = np.round(x * 255.0).astype(np.uint8)
    return np.ascontiguousarray(x)


def load_npz(
    path: str | None = None,
    data_dir: str | None = None,
    num_classes: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TensorData:
    p = _file(path, "dataset.path")

    def decode() -> dict:
        try:
            with np.load(p, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except Exception as err:  # noqa: BLE001 - any decoding failure: not a usable npz
            raise ConfigError("dataset.path", f"{p} is not a readable .npz file ({err})") from err
        missing = [k for k in ("x", "y") if k not in arrays]
        if missing:
            raise ConfigError("dataset.path", f"{p} has no array {missing[0]!r} (needs x and y)")
        x, y = arrays["x"], arrays["y"]
        if len(x) != len(y):
            raise ConfigError("dataset.path", f"{p}: {len(x)} rows of x but {len(y)} labels")
        if x.ndim == 4:
            x = images_uint8(x, p)
        elif x.ndim == 2:
            x = x.astype(np.float32)
        else:
            raise ConfigError(
                "dataset.path", f"{p}: x must be 4-D (images) or 2-D (tabular), got {x.shape}"
            )
        out = {"x": torch.from_numpy(x), "y": torch.from_numpy(y.astype(np.int64))}
        for k in ("mean", "std"):
            if k in arrays:
                out[k] = [float(v) for v in np.atleast_1d(arrays[k])]
        return out

    t = cached(data_root(data_dir), "npz", [p], {}, decode)
    y, k = _labels(t["y"].numpy(), p, num_classes)
    if t["x"].dim() == 2:
        return TensorData(
            p.stem, t["x"], torch.from_numpy(y), k, "tabular", meta={"digest": t["digest"]}
        )
    mean = t.get("mean", mean)
    std = t.get("std", std)
    return image_data(p.stem, t["x"], torch.from_numpy(y), k, mean, std, {"digest": t["digest"]})


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def load_image_folder(
    root: str | None = None,
    data_dir: str | None = None,
    image_size: int = 32,
    channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TensorData:
    if not root:
        raise ConfigError("dataset.root", "is required: the folder holding one folder per class")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ConfigError("dataset.root", f"{folder} is not a folder")
    checks.integer("dataset.image_size", image_size, lo=1)
    checks.choice("dataset.channels", channels, (1, 3))
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files = [
        (f, c)
        for c, name in enumerate(classes)
        for f in sorted((folder / name).rglob("*"))
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
    ]
    if len(classes) < 2 or not files:
        raise ConfigError(
            "dataset.root",
            f"{folder} must hold one sub-folder per class (at least 2) with images in it "
            f"(torchvision ImageFolder layout); found {len(classes)} folders, {len(files)} images",
        )

    def decode() -> dict:
        from PIL import Image

        x = np.empty((len(files), channels, image_size, image_size), np.uint8)
        for i, (f, _) in enumerate(files):
            with Image.open(f) as im:
                im = im.convert("RGB" if channels == 3 else "L")
                im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
                a = np.asarray(im, np.uint8)
            x[i] = a.transpose(2, 0, 1) if channels == 3 else a[None]
        y = np.array([c for _, c in files], np.int64)
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}

    params = {"image_size": image_size, "channels": channels, "classes": classes}
    t = cached(data_root(data_dir), "image_folder", [f for f, _ in files], params, decode)
    return image_data(
        folder.name, t["x"], t["y"], len(classes), mean, std, meta={"digest": t["digest"]}
    )
