"""(Fashion-)MNIST idx files: small fake files in the real format, read by the real loader."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from mia_bench.data import load_dataset, mnist
from mia_bench.errors import ConfigError
from mia_bench.repro.fakedata import idx_bytes, write_idx

CONF = Path(__file__).resolve().parents[2] / "conf" / "dataset"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def cfg(name: str = "fashion_mnist", **over):
    c = OmegaConf.load(CONF / f"{name}.yaml")
    c.system_dir = None  # never the machine's own copy
    for k, v in over.items():
        OmegaConf.update(c, k, v)
    return c


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("test tried to download")

    monkeypatch.setattr(mnist, "torchvision_download", refuse)


def test_idx_header_by_hand():
    # magic 0x00000803 (ubyte, 3 dims), sizes 2, 2, 3, then the 12 bytes
    a = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    blob = idx_bytes(a)
    assert blob[:16] == bytes.fromhex("00000803000000020000000200000003")
    np.testing.assert_array_equal(mnist.parse_idx(blob, Path("x"), 3), a)
    with pytest.raises(ConfigError, match="idx file"):
        mnist.parse_idx(blob, Path("x"), 1)
    with pytest.raises(ConfigError, match="header says"):
        mnist.parse_idx(blob[:-1], Path("x"), 3)


@pytest.mark.parametrize("name,folder", [("fashion_mnist", "fashion-mnist"), ("mnist", "mnist")])
@pytest.mark.parametrize("gz", [True, False])
def test_fake_idx_files_pool_train_then_test(tmp_path, name, folder, gz):
    x, y = write_idx(tmp_path / folder, n_train=9, n_test=4, gz=gz)
    d = load_dataset(cfg(name, verify=False), str(tmp_path))
    assert d.name == name and d.kind == "image" and d.num_classes == 10
    assert d.x.shape == (13, 1, 28, 28) and d.meta["n_train"] == 9
    np.testing.assert_array_equal(d.x.numpy(), x)
    np.testing.assert_array_equal(d.y.numpy(), y)


def test_torchvision_layout_and_system_dir_are_searched(tmp_path):
    write_idx(tmp_path / "FashionMNIST" / "raw", n_train=5, n_test=2)
    assert len(load_dataset(cfg(verify=False), str(tmp_path))) == 7
    system = tmp_path / "system"
    write_idx(system, n_train=4, n_test=2)
    d = load_dataset(cfg(verify=False, system_dir=str(system)), str(tmp_path / "empty"))
    assert len(d) == 6


def test_wrong_md5_is_refused(tmp_path):
    write_idx(tmp_path / "fashion-mnist")
    with pytest.raises(ConfigError, match="dataset.verify") as err:
        load_dataset(cfg(), str(tmp_path))
    assert "train-images-idx3-ubyte.gz" in str(err.value) and "MD5" in str(err.value)


def test_published_md5_of_gz_or_of_content_is_accepted(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    write_idx(folder, n_train=3, n_test=2)
    # Published checksums replaced by the fake files': first those of the .gz files ...
    sums = tuple(
        (stem, hashlib.md5((folder / f"{stem}.gz").read_bytes()).hexdigest(), "0" * 32)
        for stem, _, _ in mnist.SPECS["fashion_mnist"].files
    )
    spec = mnist.SPECS["fashion_mnist"]
    monkeypatch.setitem(
        mnist.SPECS, "fashion_mnist", mnist.IdxSpec(**{**spec.__dict__, "files": sums})
    )
    assert len(load_dataset(cfg(), str(tmp_path))) == 5
    # ... then recompressed files (other .gz bytes) checked by the MD5 of their content.
    for stem, _, _ in sums:
        p = folder / f"{stem}.gz"
        p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes()), compresslevel=1, mtime=7))
    raw = tuple(
        (
            stem,
            "0" * 32,
            hashlib.md5(gzip.decompress((folder / f"{stem}.gz").read_bytes())).hexdigest(),
        )
        for stem, _, _ in sums
    )
    monkeypatch.setitem(
        mnist.SPECS, "fashion_mnist", mnist.IdxSpec(**{**spec.__dict__, "files": raw})
    )
    assert len(load_dataset(cfg(), str(tmp_path / "."))) == 5


def test_missing_files_name_the_folders_and_download(tmp_path):
    with pytest.raises(ConfigError, match="dataset.download") as err:
        load_dataset(cfg(), str(tmp_path))
    assert str(tmp_path / "fashion-mnist") in str(err.value)


def test_download_goes_through_torchvision(tmp_path, monkeypatch):
    calls = []

    def fake(spec, root):
        calls.append(spec.torchvision_class)
        write_idx(root / "FashionMNIST" / "raw", n_train=3, n_test=1)

    monkeypatch.setattr(mnist, "torchvision_download", fake)
    assert len(load_dataset(cfg(download=True, verify=False), str(tmp_path))) == 4
    assert calls == ["FashionMNIST"]


def test_relaxloss_split_of_the_pool_has_five_equal_folds():
    from mia_bench.data.splits import make_split

    cfg = OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "split" / "relaxloss.yaml")
    s = make_split(70000, "image", cfg, 0, 1)
    folds = [s.target_train, s.target_test, *s.shadows[0], s.reference]
    assert [len(f) for f in folds] == [14000] * 5
    assert len(np.unique(np.concatenate(folds))) == 70000


@pytest.mark.slow
@pytest.mark.skipif(
    not DEBIAN.is_dir(), reason="the Debian package dataset-fashion-mnist is absent"
)
def test_real_fashion_mnist_files(tmp_path):
    c = OmegaConf.load(CONF / "fashion_mnist.yaml")
    d = load_dataset(c, str(tmp_path))  # verify=true: the published MD5s
    assert d.x.shape == (70000, 1, 28, 28) and d.meta["n_train"] == 60000
    assert d.y.bincount().tolist() == [7000] * 10
    assert abs(float(d.x.float().mean() / 255) - d.mean[0]) < 1e-3
