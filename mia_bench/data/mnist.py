"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from the four
original idx files, train (60,000) and test (10,000) pooled to 70,000 28x28 greyscale images of
10 classes, so that a split protocol cuts its own folds (RelaxLoss's image protocol: five equal
folds of 14,000, `split=relaxloss`).

On disk: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
`t10k-labels-idx1-ubyte`, each gzipped (`.gz`, as published) or not, in one folder. Searched
in order: the dataset's folders under `paths.data_dir` (`fashion-mnist/`, `fashion_mnist/`,
torchvision's `FashionMNIST/raw/`; `mnist/`, `MNIST/raw/`), then `dataset.system_dir` (for
Fashion-MNIST the folder where the Debian package `dataset-fashion-mnist` installs the files).
With `dataset.download=true` missing files are fetched by torchvision's own dataset class
(its mirrors and checksums) into `<paths.data_dir>/FashionMNIST/raw/` (`MNIST/raw/`).

Checksums (`dataset.verify=true`): a `.gz` file must have the published MD5 (the one
torchvision's MNIST / FashionMNIST classes check), or, when it was compressed again (the
Debian package's files are), its decompressed bytes must have the MD5 of the decompressed
published file; an uncompressed file must have the latter.

idx format (LeCun's page): big-endian int32 magic `0x0000 08 0D` (unsigned bytes, D
dimensions), D int32 sizes, then the bytes in row-major order.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from mia_bench.data.base import TensorData
from mia_bench.data.files import checksum_problem as file_checksum_problem
from mia_bench.data.files import data_root
from mia_bench.data.images import image_data
from mia_bench.data.tensor_cache import cached
from mia_bench.errors import ConfigError

log = logging.getLogger(__name__)

# (stem, MD5 of the published .gz, MD5 of its decompressed bytes), in pooled order per kind.
Checksums = tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class IdxSpec:
    name: str
    folders: tuple[str, ...]  # under data_dir, canonical first
    torchvision_class: str  # torchvision.datasets.<class> downloads the files
    files: Checksums  # train images, train labels, test images, test labels
    home: str


SPECS = {
    "fashion_mnist": IdxSpec(
        name="fashion_mnist",
        folders=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
        torchvision_class="FashionMNIST",
        files=(
            (
                "train-images-idx3-ubyte",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            ),
            (
                "train-labels-idx1-ubyte",
                "25c81989df183df01b3e8a0aad5dffbe",
                "9018921c3c673c538a1fc5bad174d6f9",
            ),
            (
                "t10k-images-idx3-ubyte",
                "bef4ecab320f06d8554ea6380940ec79",
                "8181f5470baa50b63fa0f6fddb340f0a",
            ),
            (
                "t10k-labels-idx1-ubyte",
                "bb300cfdad3c16e7a12a480ee83cd310",
                "15d484375f8d13e6eb1aabb0c3f46965",
            ),
        ),
        home="https://github.com/zalandoresearch/fashion-mnist (or the Debian package "
        "dataset-fashion-mnist)",
    ),
    "mnist": IdxSpec(
        name="mnist",
        folders=("mnist", "MNIST/raw"),
        torchvision_class="MNIST",
        files=(
            (
                "train-images-idx3-ubyte",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "6bbc9ace898e44ae57da46a324031adb",
            ),
            (
                "train-labels-idx1-ubyte",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "a25bea736e30d166cdddb491f175f624",
            ),
            (
                "t10k-images-idx3-ubyte",
                "9fb629c4189551a2d022fa330f9573f3",
                "2646ac647ad5339dbf082846283269ea",
            ),
            (
                "t10k-labels-idx1-ubyte",
                "ec29112dd5afa0611ce80d1b7f02629c",
                "27ae3e4e09519cfbb04c329615203637",
            ),
        ),
        home="http://yann.lecun.com/exdb/mnist/",
    ),
}
N_CLASSES = 10


def _present(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def find_folder(spec: IdxSpec, folders: Sequence[Path]) -> tuple[Path, list[Path]] | None:
    """(folder, its four files) of the first folder that holds all four, else None."""
    for folder in folders:
        paths = [_present(folder, stem) for stem, _, _ in spec.files]
        if all(p is not None for p in paths):
            return folder, paths  # type: ignore[return-value]
    return None


def read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ConfigError("dataset", f"{path} is not a readable gzip file ({err})") from err
    return raw


def checksum_problem(path: Path, gz_md5: str, raw_md5: str, data: bytes) -> str | None:
    """None when `path` (with decompressed bytes `data`) is the published file: the .gz as
    published (checked as every downloaded file is), or re-compressed around the published
    bytes (as the Debian package ships them)."""
    if path.suffix == ".gz" and file_checksum_problem(path, md5=gz_md5) is None:
        return None
    got = hashlib.md5(data).hexdigest()
    if got == raw_md5:
        return None
    return f"{path.name} decompresses to bytes with MD5 {got}, the published file's are {raw_md5}"


def parse_idx(data: bytes, path: Path, dims: int) -> np.ndarray:
    """The uint8 array of an idx file with `dims` dimensions."""
    if len(data) < 4 + 4 * dims or data[:3] != b"\x00\x00\x08" or data[3] != dims:
        raise ConfigError(
            "dataset",
            f"{path} is not an idx file of unsigned bytes with {dims} dimension(s) (magic "
            f"{data[:4].hex()}, expected 000008{dims:02x})",
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise ConfigError(
            "dataset", f"{path}: header says {shape} ({int(np.prod(shape))} bytes), has {body.size}"
        )
    return body.reshape(shape)


def torchvision_download(spec: IdxSpec, root: Path) -> None:
    """Fetch the four files with torchvision's dataset class (its mirrors, its MD5 checks)
    into `<root>/<Class>/raw/`."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.torchvision_class)
    try:
        for train in (True, False):
            cls(root=str(root), train=train, download=True)
    except Exception as err:  # noqa: BLE001 - network, mirror or checksum failure
        raise ConfigError(
            "dataset.download",
            f"{spec.name}: torchvision could not download the files ({err}). Without network "
            f"access, get them from {spec.home} and put them in {root / spec.folders[0]}",
        ) from err


def load_idx(
    name: str,
    data_dir: str | None = None,
    download: bool = False,
    verify: bool = True,
    system_dir: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TensorData:
    spec = SPECS[name]
    root = data_root(data_dir)
    folders = [root / f for f in spec.folders]
    if system_dir:
        folders.append(Path(system_dir).expanduser())
    found = find_folder(spec, folders)
    if found is None and download:
        torchvision_download(spec, root)
        found = find_folder(spec, folders)
    if found is None:
        listed = ", ".join(str(f) for f in folders)
        raise ConfigError(
            "dataset.download",
            f"{name}: the four idx files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) are in none of {listed}. "
            f"Put them in {folders[0]} (from {spec.home}), or run with dataset.download=true. To "
            "read data from another folder set paths.data_dir=... or $MIA_BENCH_DATA.",
        )
    folder, paths = found

    def decode() -> dict:
        arrays = []
        for path, (_, gz_md5, raw_md5) in zip(paths, spec.files):
            data = read_bytes(path)
            if verify:
                problem = checksum_problem(path, gz_md5, raw_md5, data)
                if problem:
                    raise ConfigError(
                        "dataset.verify",
                        f"{name}: {problem} ({path}). Replace it with the official file "
                        f"({spec.home}), or set dataset.verify=false to use it as it is.",
                    )
            arrays.append(parse_idx(data, path, 3 if "images" in path.name else 1))
        (xtr, ytr, xte, yte) = arrays
        for x, y, part in ((xtr, ytr, "train"), (xte, yte, "t10k")):
            if len(x) != len(y):
                raise ConfigError(
                    "dataset", f"{name}: {part} has {len(x)} images but {len(y)} labels"
                )
        if xtr.shape[1:] != xte.shape[1:]:
            raise ConfigError(
                "dataset", f"{name}: train images {xtr.shape[1:]} and test {xte.shape[1:]} differ"
            )
        return {
            "x": torch.from_numpy(np.concatenate([xtr, xte])[:, None].copy()),
            "y": torch.from_numpy(np.concatenate([ytr, yte]).astype(np.int64)),
            "n_train": len(ytr),
        }

    # The cache lives under data_dir even when the files are read from system_dir.
    t = cached(root, name, paths, {"verify": bool(verify)}, decode)
    log.info("%s: %d images from %s", name, len(t["y"]), folder)
    return image_data(
        name,
        t["x"],
        t["y"],
        N_CLASSES,
        mean,
        std,
        meta={"n_train": t["n_train"], "digest": t["digest"]},
    )


# `dataset._target_` of conf/dataset/fashion_mnist.yaml; a partial keeps load_idx's signature, so
# that a key it does not take is refused by name.
load_fashion_mnist = partial(load_idx, "fashion_mnist")


# `dataset._target_` of conf/dataset/mnist.yaml; a partial keeps load_idx's signature, so
# that a key it does not take is refused by name.
load_mnist = partial(load_idx, "mnist")
