"""Small fake dataset files in each real on-disk format and shape, for feeding the real loaders.

Random pixels, features and labels: nothing to learn, but every byte goes through the same
decoder, split, model and attack code as the published files. The tests use the writers one by
one; `SCALE=smoke` of the table targets uses `python -m mia_bench.repro.fakedata DIR`, which writes
every dataset into DIR (read with `paths.data_dir=DIR dataset.verify=false`).

Each writer returns what it wrote (images / features and 0-based labels, in pooled order) so a
test can compare the decoded tensors element by element.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
import scipy.io

from mia_bench.io import locked


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _pickle_batch(path: Path, entry: dict, py2_style: bool) -> None:
    blob = pickle.dumps(entry, protocol=2)
    if py2_style:
        # The published batches were pickled by Python 2 with numpy 1: same opcodes, old module.
        blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.write_bytes(blob)


def write_cifar(
    root: Path, name: str = "cifar10", per_file: int = 10, seed: int = 0, py2_style: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """cifar-10-batches-py/{data_batch_1..5,test_batch} or cifar-100-python/{train,test}."""
    rng = _rng(seed)
    if name == "cifar10":
        folder, files, key, classes = (
            "cifar-10-batches-py",
            [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"],
            "labels",
            10,
        )
    else:
        folder, files, key, classes = "cifar-100-python", ["train", "test"], "fine_labels", 100
    (root / folder).mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for f in files:
        data = rng.integers(0, 256, (per_file, 3072), dtype=np.uint8)
        labels = rng.integers(0, classes, per_file).tolist()
        entry = {
            "batch_label": f,
            "data": data,
            key: labels,
            "filenames": [f"{i}.png" for i in range(per_file)],
        }
        if name == "cifar100":
            entry["coarse_labels"] = [c // 5 for c in labels]
        _pickle_batch(root / folder / f, entry, py2_style)
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(np.array(labels))
    return np.concatenate(xs), np.concatenate(ys)


def tar_folder(archive: Path, root: Path, folder: str) -> None:
    """Pack root/folder into a .tar.gz whose members start with `folder/`."""
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(root / folder, arcname=folder)


def write_svhn(
    root: Path, n_train: int = 12, n_test: int = 8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """train_32x32.mat / test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) in 1..10."""
    rng = _rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for fname, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        digit = rng.integers(0, 10, n)
        digit[0] = 0  # make sure the "10 means 0" rule is exercised
        y = np.where(digit == 0, 10, digit).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(root / fname, {"X": x, "y": y})
        xs.append(x.transpose(3, 2, 0, 1))
        ys.append(digit)
    return np.concatenate(xs), np.concatenate(ys)


def write_chmnist(
    root: Path, n: int = 24, size: int = 28, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """hmnist_S_S_L.csv: header pixel0000.., label; one row per image, labels 1..8."""
    rng = _rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (n, size * size))
    labels = rng.integers(1, 9, n)
    header = ",".join([f"pixel{i:04d}" for i in range(size * size)] + ["label"])
    lines = [header] + [",".join(map(str, [*row, lab])) for row, lab in zip(pixels, labels)]
    (root / f"hmnist_{size}_{size}_L.csv").write_text("\n".join(lines) + "\n")
    return pixels.astype(np.uint8).reshape(n, 1, size, size), labels - 1


def idx_bytes(a: np.ndarray) -> bytes:
    """An array of unsigned bytes in the idx format: magic 0x000008<ndim>, sizes, data."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    head = bytes([0, 0, 8, a.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    return head + a.tobytes()


def write_idx(
    folder: Path, n_train: int = 12, n_test: int = 6, seed: int = 0, gz: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The four (Fashion-)MNIST idx files, 28x28 images, labels 0..9, gzipped or not."""
    import gzip

    rng = _rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    x = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n_train + n_test).astype(np.uint8)
    parts = {
        "train-images-idx3-ubyte": x[:n_train],
        "train-labels-idx1-ubyte": y[:n_train],
        "t10k-images-idx3-ubyte": x[n_train:],
        "t10k-labels-idx1-ubyte": y[n_train:],
    }
    for stem, a in parts.items():
        data = idx_bytes(a)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / stem).write_bytes(data)
    return x[:, None], y.astype(np.int64)


def _tgz(archive: Path, members: dict[str, bytes]) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _csv(rows: np.ndarray) -> bytes:
    # tolist(): Python ints format several times faster than numpy scalars (Texas: 6,169 columns).
    return ("\n".join(",".join(map(str, r)) for r in rows.tolist()) + "\n").encode()


def write_purchase(
    folder: Path, n: int = 40, features: int = 600, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """dataset_purchase.tgz holding `dataset_purchase`: label (1..100), then binary features."""
    rng = _rng(seed)
    x = rng.integers(0, 2, (n, features))
    labels = rng.integers(1, 101, n)
    _tgz(folder / "dataset_purchase.tgz", {"dataset_purchase": _csv(np.column_stack([labels, x]))})
    return x.astype(np.float32), labels - 1


def write_texas(
    folder: Path, n: int = 40, features: int = 6169, seed: int = 0, layout: str = "texas/100"
) -> tuple[np.ndarray, np.ndarray]:
    """dataset_texas.tgz holding `<layout>/feats` (binary features) and `<layout>/labels`."""
    rng = _rng(seed)
    x = rng.integers(0, 2, (n, features))
    labels = rng.integers(1, 101, n)
    _tgz(
        folder / "dataset_texas.tgz",
        {f"{layout}/feats": _csv(x), f"{layout}/labels": _csv(labels[:, None])},
    )
    return x.astype(np.float32), labels - 1


MANIFEST = "FAKE_DATA.json"
# Bump when a writer changes what it writes, so that `ensure` writes the files again.
VERSION = 2


def write_all(root: Path, n: int = 40) -> None:
    """Every file-backed dataset, with at least `n` samples each, in its canonical place."""
    root = Path(root)
    per = max(2, -(-n // 6))
    write_cifar(root, "cifar10", per_file=per)
    write_cifar(root, "cifar100", per_file=-(-n // 2))
    write_svhn(root, n_train=n - n // 3, n_test=n // 3)
    write_chmnist(root, n=n)
    write_purchase(root / "purchase100", n=n)
    write_texas(root / "texas100", n=n)
    write_idx(root / "fashion-mnist", n_train=n - n // 3, n_test=n // 3)
    write_idx(root / "mnist", n_train=n - n // 3, n_test=n // 3, seed=1)


def ensure(root: Path, n: int = 200) -> bool:
    """Write every dataset into `root` unless an earlier call wrote the same size there;
    True when files were written. A manifest marks the folder as fake data."""
    root = Path(root)
    want = {"version": VERSION, "n": n}
    root.mkdir(parents=True, exist_ok=True)
    # `make -j tables SCALE=smoke`: one target writes, the others wait and then read.
    with locked(root / ".write.lock"):
        try:
            if json.loads((root / MANIFEST).read_text()) == want:
                return False
        except (OSError, ValueError):
            pass
        write_all(root, n)
        # Written last: a folder whose writing was interrupted gets written again.
        (root / MANIFEST).write_text(json.dumps(want) + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mia_bench.repro.fakedata",
        description="Write random CIFAR-10/100, SVHN, CH-MNIST, (Fashion-)MNIST, Purchase100 and Texas100 files "
        "in their published formats and shapes (read them with paths.data_dir=DIR "
        "dataset.verify=false).",
    )
    p.add_argument("dir", help="folder to write into (created if missing)")
    p.add_argument("--n", type=int, default=200, help="samples per dataset (default 200)")
    args = p.parse_args(argv)
    if args.n < 10:
        print("mia_bench.repro.fakedata: --n must be >= 10", file=sys.stderr)
        return 2
    wrote = ensure(Path(args.dir), args.n)
    print(
        f"fake data ({args.n} samples per dataset) {'written to' if wrote else 'already in'} {args.dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
