"""Purchase100 and Texas100 as preprocessed by Shokri et al. (2017) and used by Nasr et al.
(2018), Song & Mittal (2021) and RelaxLoss (App. B.1): binary features, 100 classes.

Archives: `dataset_purchase.tgz` holds `dataset_purchase`, a headerless CSV whose first column
is the label 1..100 followed by 600 binary features (197,324 rows); `dataset_texas.tgz` holds
`texas/100/feats` (6,169 binary features per row, 67,330 rows) and `texas/100/labels` (1..100).

Where they may be: the canonical folder `<data_dir>/purchase100/` (`texas100/`), or the
folders public MIA code uses (`<data_dir>/`, `Purchase/`, `purchase/`; `Texas/`, `texas/`),
each holding either the archive or what it unpacks to (Texas also as `dataset_texas/feats`).
The literature's fixed orderings `random_r_purchase100.npy` / `random_r_texas100.npy`, if
present next to the data or in a `dataset_shuffle/` folder, reorder the pool
(`dataset.fixed_shuffle`); with `split.shuffle=false` the RelaxLoss split then cuts the same
blocks as the reference code. No checksum is published for these archives:
`dataset.verify=true` checks the published shape (rows, features, 100 classes) instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from mia_bench.data.base import TensorData
from mia_bench.data.files import Remote, data_root, extract, fetch, missing_error
from mia_bench.data.tensor_cache import cached
from mia_bench.errors import ConfigError


@dataclass(frozen=True)
class TabularSpec:
    name: str
    remote: Remote
    folders: tuple[str, ...]  # candidate sub-folders of data_dir, canonical first
    layouts: tuple[tuple[str, ...], ...]  # files of one unpacked layout, relative to a folder
    rows: int
    features: int
    shuffle_file: str


SPECS = {
    "purchase100": TabularSpec(
        name="purchase100",
        remote=Remote(
            "dataset_purchase.tgz",
            urls=(
                "https://www.comp.nus.edu.sg/~reza/files/dataset_purchase.tgz",
                "https://github.com/privacytrustlab/datasets/raw/master/dataset_purchase.tgz",
            ),
        ),
        folders=("purchase100", "", "Purchase", "purchase"),
        layouts=(("dataset_purchase",),),
        rows=197324,
        features=600,
        shuffle_file="random_r_purchase100.npy",
    ),
    "texas100": TabularSpec(
        name="texas100",
        remote=Remote(
            "dataset_texas.tgz",
            urls=(
                "https://www.comp.nus.edu.sg/~reza/files/dataset_texas.tgz",
                "https://github.com/privacytrustlab/datasets/raw/master/dataset_texas.tgz",
            ),
        ),
        folders=("texas100", "", "Texas", "texas"),
        layouts=(
            ("texas/100/feats", "texas/100/labels"),
            ("dataset_texas/feats", "dataset_texas/labels"),
        ),
        rows=67330,
        features=6169,
        shuffle_file="random_r_texas100.npy",
    ),
}


def find_files(spec: TabularSpec, root: Path, download: bool) -> tuple[Path, list[Path]]:
    """(folder, unpacked files) of the first folder that has them, unpacking an archive if
    that is all there is, downloading it (into the canonical folder) if allowed."""
    folders = [root / f for f in spec.folders]
    for folder in folders:
        for layout in spec.layouts:
            if all((folder / p).is_file() for p in layout):
                return folder, [folder / p for p in layout]
    archive = next(
        (f / spec.remote.filename for f in folders if (f / spec.remote.filename).is_file()), None
    )
    if archive is None:
        if not download:
            layout = " + ".join(spec.layouts[0])
            others = ", ".join(str(f) for f in folders[1:])
            raise missing_error(
                spec.name,
                f"{spec.remote.filename} (or its unpacked {layout})",
                folders[0],
                spec.remote,
                extra=f" Also searched: {others}.",
            )
        archive = fetch(spec.remote, folders[0], spec.name)
    extract(archive, archive.parent)
    for layout in spec.layouts:
        if all((archive.parent / p).is_file() for p in layout):
            return archive.parent, [archive.parent / p for p in layout]
    raise ConfigError("dataset", f"{spec.name}: {archive} holds none of {list(spec.layouts)}")


def read_numeric_csv(path: Path) -> np.ndarray:
    """A headerless CSV of numbers; uint8 when every value is an integer in 0..255 (the binary
    features and labels of both sets), else float32."""
    import pandas as pd  # imported here: only file-backed datasets need it

    try:
        return pd.read_csv(path, header=None, dtype=np.uint8).to_numpy()
    except ValueError:
        return pd.read_csv(path, header=None, dtype=np.float32).to_numpy()


def read_raw(spec: TabularSpec, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D) uint8 or float32, labels int64 in 0..99)."""
    if len(files) == 1:
        table = read_numeric_csv(files[0])
        labels, x = table[:, 0], table[:, 1:]
    else:
        x, labels = read_numeric_csv(files[0]), read_numeric_csv(files[1]).reshape(-1)
    if len(x) != len(labels):
        raise ConfigError("dataset", f"{spec.name}: {len(x)} feature rows but {len(labels)} labels")
    y = labels.astype(np.int64) - 1  # stored as 1..100
    if len(y) and (y.min() < 0 or y.max() > 99):
        raise ConfigError(
            "dataset", f"{spec.name}: labels must be 1..100, got {y.min() + 1}..{y.max() + 1}"
        )
    return np.ascontiguousarray(x), y


def fixed_order(
    spec: TabularSpec, root: Path, data_folder: Path, n: int
) -> tuple[np.ndarray | None, Path | None]:
    """The literature's permutation of the rows, if its file is present."""
    for d in (data_folder, data_folder / "dataset_shuffle", root / "dataset_shuffle", root):
        path = d / spec.shuffle_file
        if path.is_file():
            r = np.load(path, allow_pickle=False).astype(np.int64).reshape(-1)
            if len(r) != n or not np.array_equal(np.sort(r), np.arange(n)):
                raise ConfigError(
                    "dataset.fixed_shuffle",
                    f"{spec.name}: {path} is not a permutation of the {n} rows; remove it or set "
                    "dataset.fixed_shuffle=false",
                )
            return r, path
    return None, None


def load_tabular(
    name: str,
    data_dir: str | None = None,
    download: bool = False,
    verify: bool = True,
    fixed_shuffle: bool = True,
) -> TensorData:
    spec = SPECS[name]
    root = data_root(data_dir)
    folder, files = find_files(spec, root, download)

    def decode() -> dict:
        x, y = read_raw(spec, files)
        if verify and (x.shape != (spec.rows, spec.features) or len(np.unique(y)) != 100):
            raise ConfigError(
                "dataset.verify",
                f"{name}: {files[0]} holds {x.shape[0]} rows x {x.shape[1]} features and "
                f"{len(np.unique(y))} classes; the published set has {spec.rows} x {spec.features} "
                f"and 100 classes. Use the official {spec.remote.filename}, or set dataset.verify=false.",
            )
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}

    t = cached(root, name, files, {"verify": bool(verify)}, decode)
    x, y = t["x"], t["y"]
    meta: dict = {"fixed_shuffle": None, "digest": t["digest"]}
    if fixed_shuffle:
        order, path = fixed_order(spec, root, folder, len(y))
        if order is not None:
            x, y = x[order], y[order]
            meta["fixed_shuffle"] = path.name
            # The order file's content decides the rows too.
            h = hashlib.sha256(t["digest"].encode())
            h.update(np.ascontiguousarray(order, dtype=np.int64).tobytes())
            meta["digest"] = h.hexdigest()
    return TensorData(
        name=name, x=x.float(), y=y.long(), num_classes=100, kind="tabular", meta=meta
    )


# `dataset._target_` of conf/dataset/purchase100.yaml; a partial keeps load_tabular's signature, so
# that a key it does not take is refused by name.
load_purchase100 = partial(load_tabular, "purchase100")


# `dataset._target_` of conf/dataset/texas100.yaml; a partial keeps load_tabular's signature, so
# that a key it does not take is refused by name.
load_texas100 = partial(load_tabular, "texas100")
