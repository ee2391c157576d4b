"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the "python version" archives, train and test
pooled (60,000 images) as RelaxLoss (Sec. 6.1) and CRL (Sec. 5.1) do.

On disk: `<data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch}` and
`<data_dir>/cifar-100-python/{train,test}`, as torchvision's CIFAR classes leave them; the
`.tar.gz` archive in `<data_dir>` is unpacked when the folder is missing. Each batch is a
pickled dict with `data` (N x 3072 uint8, channel-major) and `labels` / `fine_labels`.
Checksums are the published ones (also carried by torchvision.datasets.CIFAR10/100).
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from mia_bench.data.base import TensorData
from mia_bench.data.files import Remote, data_root, extract, obtain, verify_file
from mia_bench.data.images import image_data, pooled
from mia_bench.data.tensor_cache import cached
from mia_bench.errors import ConfigError


@dataclass(frozen=True)
class CifarSpec:
    folder: str
    remote: Remote
    batches: tuple[tuple[str, str], ...]  # (file name, published MD5), train first
    label_key: str
    num_classes: int


SPECS = {
    "cifar10": CifarSpec(
        folder="cifar-10-batches-py",
        remote=Remote(
            "cifar-10-python.tar.gz",
            urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
            md5="c58f30108f718f92721af3b95e74349a",
        ),
        batches=(
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            ("test_batch", "40351d587109b95175f43aff81a1287e"),
        ),
        label_key="labels",
        num_classes=10,
    ),
    "cifar100": CifarSpec(
        folder="cifar-100-python",
        remote=Remote(
            "cifar-100-python.tar.gz",
            urls=("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
            md5="eb9058c3a382ffc7106e4002c42a8d85",
        ),
        batches=(
            ("train", "16019d7e3df5f24257cddd939b257f8d"),
            ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
        ),
        label_key="fine_labels",
        num_classes=100,
    ),
}

# The only globals a CIFAR batch may name: numpy's array reconstruction (Python 2 pickles say
# numpy.core, numpy 2 writes numpy._core) and the bytes codec of protocol-2 pickles.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts and strings, nothing that could run code: a file
    read with dataset.verify=false is not trusted."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, refused")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return getattr(importlib.import_module(module), name)


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64) of one pickled batch."""
    try:
        with open(path, "rb") as f:
            entry = _BatchUnpickler(f, encoding="latin1").load()
        if not isinstance(entry, dict):
            raise pickle.UnpicklingError(f"holds a {type(entry).__name__}, not a dict")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ConfigError(
            "paths.data_dir",
            f"{path} is not a readable CIFAR batch ({err}); replace it with the official file "
            "(dataset.verify=true checks it)",
        ) from err
    entry = {(k.decode() if isinstance(k, bytes) else k): v for k, v in entry.items()}
    if "data" not in entry or label_key not in entry:
        raise ConfigError(
            "dataset", f"{path} is not a CIFAR batch (needs 'data' and '{label_key}')"
        )
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ConfigError(
            "dataset", f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar(
    name: str,
    data_dir: str | None = None,
    download: bool = False,
    verify: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TensorData:
    spec = SPECS[name]
    root = data_root(data_dir)
    folder = root / spec.folder
    files = [folder / f for f, _ in spec.batches]
    if not all(f.is_file() for f in files):
        archive = obtain(
            spec.remote,
            root,
            name,
            download=download,
            verify=verify,
            what=f"the folder {spec.folder}/ (and the archive {spec.remote.filename})",
        )
        extract(archive, root)
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ConfigError("dataset", f"{name}: {archive} holds no {spec.folder}/{missing[0]}")

    def decode() -> dict:
        if verify:
            for f, (_, md5) in zip(files, spec.batches):
                verify_file(f, name, spec.remote.where(), md5=md5)
        return pooled([read_batch(f, spec.label_key) for f in files])

    t = cached(root, name, files, {"verify": bool(verify)}, decode)
    return image_data(
        name,
        t["x"],
        t["y"],
        spec.num_classes,
        mean,
        std,
        meta={"n_train": t["n_train"], "digest": t["digest"]},
    )


# `dataset._target_` of conf/dataset/cifar10.yaml; a partial keeps load_cifar's signature, so
# that a key it does not take is refused by name.
load_cifar10 = partial(load_cifar, "cifar10")


# `dataset._target_` of conf/dataset/cifar100.yaml; a partial keeps load_cifar's signature, so
# that a key it does not take is refused by name.
load_cifar100 = partial(load_cifar, "cifar100")
