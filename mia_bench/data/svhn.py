"""SVHN (Netzer et al. 2011), cropped digits, `train_32x32.mat` + `test_32x32.mat` pooled
(99,289 images; the "extra" set is not used), as CRL (Sec. 5.1) does.

On disk: `<data_dir>/train_32x32.mat` and `<data_dir>/test_32x32.mat` (also accepted under
`<data_dir>/svhn/`), MATLAB files with `X` (32, 32, 3, N) uint8 and `y` (N, 1) in 1..10 where
10 stands for the digit 0, the layout torchvision.datasets.SVHN reads. Published MD5s as
torchvision carries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mia_bench.data.base import TensorData
from mia_bench.data.files import Remote, data_root, obtain
from mia_bench.data.images import image_data, pooled
from mia_bench.data.tensor_cache import cached
from mia_bench.errors import ConfigError

REMOTES = (
    Remote(
        "train_32x32.mat",
        urls=("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",),
        md5="e26dedcc434d2e4c54c9b2d4a06d8373",
    ),
    Remote(
        "test_32x32.mat",
        urls=("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",),
        md5="eb5a983be6a315427106f1b164d9cef3",
    ),
)


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 in 0..9) of one SVHN .mat file."""
    import scipy.io  # imported here: only this dataset needs it

    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # noqa: BLE001 - any decoding failure: not an SVHN file
        raise ConfigError("dataset", f"svhn: {path} is not a readable .mat file ({err})") from err
    if "X" not in mat or "y" not in mat:
        raise ConfigError("dataset", f"svhn: {path} has no 'X' and 'y' arrays")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y):
        raise ConfigError("dataset", f"svhn: {path}: X must be (H, W, 3, N), got {x.shape}")
    y[y == 10] = 0  # the digit 0 is stored as class 10
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False), y


def load_svhn(
    data_dir: str | None = None,
    download: bool = False,
    verify: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TensorData:
    root = data_root(data_dir)
    # Both files side by side in data_dir (torchvision's layout) or in data_dir/svhn.
    folder = next(
        (d for d in (root, root / "svhn") if all((d / r.filename).is_file() for r in REMOTES)),
        root,
    )
    files = [folder / r.filename for r in REMOTES]
    if not all(f.is_file() for f in files):
        # Checksums are checked on download or below, when decoding.
        files = [obtain(r, folder, "svhn", download=download, verify=False) for r in REMOTES]

    def decode() -> dict:
        if verify:
            for r in REMOTES:
                obtain(r, folder, "svhn", download=False, verify=True)
        return pooled([read_mat(f) for f in files])

    t = cached(root, "svhn", files, {"verify": bool(verify)}, decode)
    return image_data(
        "svhn", t["x"], t["y"], 10, mean, std, meta={"n_train": t["n_train"], "digest": t["digest"]}
    )
