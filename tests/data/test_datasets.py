"""File-backed datasets: small fake files in each real on-disk format, read by the real code."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mia_bench.data import cifar, files, load_dataset, tabular
from mia_bench.data.tensor_cache import CACHE_FOLDER
from mia_bench.errors import ConfigError
from mia_bench.repro.fakedata import (
    tar_folder,
    write_chmnist,
    write_cifar,
    write_purchase,
    write_svhn,
    write_texas,
)

CONF = Path(__file__).resolve().parents[2] / "conf" / "dataset"


def cfg(name: str, **over) -> OmegaConf:
    """conf/dataset/<name>.yaml as the app composes it, with overrides."""
    c = OmegaConf.load(CONF / f"{name}.yaml")
    for k, v in over.items():
        OmegaConf.update(c, k, v)
    return c


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """No test downloads: any call to the download function fails the test."""

    def refuse(url, dest, timeout=None):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(files, "download", refuse)


# -- CIFAR ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
@pytest.mark.parametrize("py2_style", [False, True])
def test_cifar_fake_batches_decode_exactly(tmp_path, name, classes, py2_style):
    x, y = write_cifar(tmp_path, name, per_file=7, py2_style=py2_style)
    d = load_dataset(cfg(name, verify=False), str(tmp_path))
    assert d.kind == "image" and d.num_classes == classes and d.x.dtype == torch.uint8
    assert d.x.shape == (len(x), 3, 32, 32)
    # Train batches first, then the test batch, row order kept: pixel-exact round trip.
    np.testing.assert_array_equal(d.x.numpy(), x)
    np.testing.assert_array_equal(d.y.numpy(), y)
    assert d.meta["n_train"] == len(x) - 7
    assert d.mean == (0.4914, 0.4822, 0.4465) and d.std == (0.2023, 0.1994, 0.2010)


def test_cifar_verify_refuses_other_content_naming_the_file(tmp_path):
    write_cifar(tmp_path, "cifar10", per_file=3)
    with pytest.raises(ConfigError) as err:
        load_dataset(cfg("cifar10"), str(tmp_path))
    assert err.value.key == "dataset.verify"
    assert "data_batch_1" in str(err.value) and "c99cafc152244af753f735de768cd75f" in str(err.value)
    assert "dataset.verify=false" in str(err.value)


def test_cifar_verify_accepts_files_matching_the_checksums(tmp_path, monkeypatch):
    write_cifar(tmp_path, "cifar100", per_file=4)
    folder = tmp_path / "cifar-100-python"
    md5 = {f: hashlib.md5((folder / f).read_bytes()).hexdigest() for f in ("train", "test")}
    spec = cifar.SPECS["cifar100"]
    patched = type(spec)(
        **{**spec.__dict__, "batches": tuple((f, md5[f]) for f, _ in spec.batches)}
    )
    monkeypatch.setitem(cifar.SPECS, "cifar100", patched)
    assert len(load_dataset(cfg("cifar100"), str(tmp_path))) == 8


def test_cifar_archive_is_checked_then_unpacked(tmp_path):
    src = tmp_path / "src"
    x, _ = write_cifar(src, "cifar10", per_file=3)
    data = tmp_path / "data"
    data.mkdir()
    tar_folder(data / "cifar-10-python.tar.gz", src, "cifar-10-batches-py")
    # verify=true: the fake archive is not the published one, refused before unpacking.
    with pytest.raises(ConfigError, match="cifar-10-python.tar.gz has MD5"):
        load_dataset(cfg("cifar10"), str(data))
    assert not (data / "cifar-10-batches-py").exists()
    d = load_dataset(cfg("cifar10", verify=False), str(data))
    np.testing.assert_array_equal(d.x.numpy(), x)


def test_cifar_batch_cannot_run_code(tmp_path):
    write_cifar(tmp_path, "cifar10", per_file=2)

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled code ran",))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(
        pickle.dumps({"data": Evil()}, protocol=2)
    )
    with pytest.raises(ConfigError, match=r"print, refused") as err:
        load_dataset(cfg("cifar10", verify=False), str(tmp_path))
    assert err.value.key == "paths.data_dir"
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)


# -- SVHN, CH-MNIST ------------------------------------------------------------------------
@pytest.mark.parametrize("sub", ["", "svhn"])
def test_svhn_mat_files_pool_train_then_test(tmp_path, sub):
    x, y = write_svhn(tmp_path / sub, n_train=9, n_test=5)
    d = load_dataset(cfg("svhn", verify=False), str(tmp_path))
    np.testing.assert_array_equal(d.x.numpy(), x)
    np.testing.assert_array_equal(d.y.numpy(), y)  # class "10" decoded as digit 0
    assert d.y.min() >= 0 and d.y.max() <= 9 and d.meta["n_train"] == 9
    with pytest.raises(ConfigError, match="train_32x32.mat has MD5"):
        load_dataset(cfg("svhn"), str(tmp_path))


@pytest.mark.parametrize("size", [28, 64])
def test_chmnist_csv_both_sizes(tmp_path, size):
    x, y = write_chmnist(tmp_path, n=11, size=size)
    d = load_dataset(cfg("chmnist", verify=False, image_size=size), str(tmp_path))
    assert d.x.shape == (11, 1, size, size) and d.num_classes == 8
    np.testing.assert_array_equal(d.x.numpy(), x)
    np.testing.assert_array_equal(d.y.numpy(), y)  # Kaggle labels 1..8 -> 0..7
    assert d.mean == (0.5,) and d.std == (0.5,)


def test_chmnist_missing_size_points_to_the_other_file(tmp_path):
    write_chmnist(tmp_path / "chmnist", n=3, size=64)
    with pytest.raises(ConfigError, match="set dataset.image_size=64"):
        load_dataset(cfg("chmnist", verify=False), str(tmp_path))


def test_chmnist_verify_checks_the_published_shape(tmp_path):
    write_chmnist(tmp_path, n=11)
    with pytest.raises(ConfigError, match="5000 rows and 8 classes") as err:
        load_dataset(cfg("chmnist"), str(tmp_path))
    assert err.value.key == "dataset.verify"


# -- Purchase100, Texas100 -----------------------------------------------------------------
@pytest.mark.parametrize("folder", ["purchase100", "", "Purchase"])
def test_purchase_tgz_unpacked_and_read(tmp_path, folder):
    x, y = write_purchase(tmp_path / folder, n=13)
    d = load_dataset(cfg("purchase100", verify=False), str(tmp_path))
    assert d.kind == "tabular" and d.x.dtype == torch.float32 and d.x.shape == (13, 600)
    np.testing.assert_array_equal(d.x.numpy(), x)
    np.testing.assert_array_equal(d.y.numpy(), y)  # labels 1..100 -> 0..99
    assert d.num_classes == 100 and (tmp_path / folder / "dataset_purchase").is_file()


@pytest.mark.parametrize(
    "folder,layout", [("texas100", "texas/100"), ("Texas", "texas/100"), ("", "dataset_texas")]
)
def test_texas_tgz_both_layouts(tmp_path, folder, layout):
    x, y = write_texas(tmp_path / folder, n=9, features=50, layout=layout)
    d = load_dataset(cfg("texas100", verify=False), str(tmp_path))
    np.testing.assert_array_equal(d.x.numpy(), x)
    np.testing.assert_array_equal(d.y.numpy(), y)
    with pytest.raises(ConfigError, match="67330 x 6169"):
        load_dataset(cfg("texas100"), str(tmp_path))


def test_fixed_shuffle_file_reorders_rows(tmp_path):
    x, y = write_texas(tmp_path / "texas100", n=10, features=5)
    order = np.random.default_rng(3).permutation(10)
    (tmp_path / "texas100" / "dataset_shuffle").mkdir()
    np.save(tmp_path / "texas100" / "dataset_shuffle" / "random_r_texas100.npy", order)
    d = load_dataset(cfg("texas100", verify=False), str(tmp_path))
    np.testing.assert_array_equal(d.x.numpy(), x[order])
    np.testing.assert_array_equal(d.y.numpy(), y[order])
    assert d.meta["fixed_shuffle"] == "random_r_texas100.npy"
    plain = load_dataset(cfg("texas100", verify=False, fixed_shuffle=False), str(tmp_path))
    np.testing.assert_array_equal(plain.x.numpy(), x)
    np.save(tmp_path / "texas100" / "dataset_shuffle" / "random_r_texas100.npy", np.zeros(10, int))
    with pytest.raises(ConfigError, match="not a permutation"):
        load_dataset(cfg("texas100", verify=False), str(tmp_path))


# -- missing files, downloads --------------------------------------------------------------
MISSING = {
    "cifar10": [
        "cifar-10-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ],
    "cifar100": [
        "cifar-100-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ],
    "svhn": ["train_32x32.mat", "http://ufldl.stanford.edu/housenumbers/train_32x32.mat"],
    "chmnist": ["hmnist_28_28_L.csv", "kaggle.com/datasets/kmader/colorectal-histology-mnist"],
    "purchase100": [
        "dataset_purchase.tgz",
        "https://www.comp.nus.edu.sg/~reza/files/dataset_purchase.tgz",
    ],
    "texas100": ["dataset_texas.tgz", "https://www.comp.nus.edu.sg/~reza/files/dataset_texas.tgz"],
}


@pytest.mark.parametrize("name", sorted(MISSING))
def test_missing_file_stops_at_once_naming_file_folder_and_source(tmp_path, name):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_dataset(cfg(name), str(tmp_path / "empty"))
    assert time.perf_counter() - t0 < 2.0
    msg = str(err.value)
    assert err.value.key == "dataset.download"
    for part in [*MISSING[name], str(tmp_path / "empty"), "paths.data_dir"]:
        assert part in msg, (part, msg)
    if name != "chmnist":
        assert "dataset.download=true" in msg


def test_data_dir_defaults_to_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MIA_BENCH_DATA", str(tmp_path / "d"))
    assert files.data_root(None) == tmp_path / "d"
    assert files.data_root("~/x") == Path.home() / "x"


def _fake_cifar_archive(tmp_path: Path) -> bytes:
    write_cifar(tmp_path / "src", "cifar10", per_file=2)
    tar_folder(tmp_path / "a.tar.gz", tmp_path / "src", "cifar-10-batches-py")
    return (tmp_path / "a.tar.gz").read_bytes()


def test_download_is_checked_against_the_published_checksum(tmp_path, monkeypatch):
    blob = _fake_cifar_archive(tmp_path)
    calls = []

    def fake_download(url, dest, timeout=None):
        calls.append(url)
        dest.write_bytes(blob)

    monkeypatch.setattr(files, "download", fake_download)
    data = tmp_path / "data"
    # The fake archive is not the published one: refused and deleted, nothing unpacked.
    with pytest.raises(ConfigError, match="has MD5") as err:
        load_dataset(cfg("cifar10", download=True, verify=False), str(data))
    assert err.value.key == "dataset.download" and calls == [cifar.SPECS["cifar10"].remote.urls[0]]
    assert not (data / "cifar-10-python.tar.gz").exists()
    # With the published MD5 equal to the archive's, the same download is accepted and read.
    spec = cifar.SPECS["cifar10"]
    remote = type(spec.remote)(**{**spec.remote.__dict__, "md5": hashlib.md5(blob).hexdigest()})
    monkeypatch.setitem(cifar.SPECS, "cifar10", type(spec)(**{**spec.__dict__, "remote": remote}))
    d = load_dataset(cfg("cifar10", download=True, verify=False), str(data))
    assert len(d) == 12 and len(calls) == 2


def test_download_offline_names_url_and_folder(tmp_path, monkeypatch):
    def offline(url, dest, timeout=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(files, "download", offline)
    with pytest.raises(ConfigError) as err:
        load_dataset(cfg("texas100", download=True), str(tmp_path))
    msg = str(err.value)
    assert "could not download dataset_texas.tgz" in msg and "Name or service not known" in msg
    assert "privacytrustlab" in msg and str(tmp_path / "texas100") in msg  # both mirrors tried


# -- tensor cache, archive safety --------------------------------------------------------------
def test_decoded_once_then_served_from_tensor_cache(tmp_path, monkeypatch):
    write_purchase(tmp_path / "purchase100", n=6)
    first = load_dataset(cfg("purchase100", verify=False), str(tmp_path))
    assert len(list((tmp_path / CACHE_FOLDER).glob("purchase100-*.pt"))) == 1

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(tabular, "read_raw", boom)
    again = load_dataset(cfg("purchase100", verify=False), str(tmp_path))
    torch.testing.assert_close(again.x, first.x)
    # A changed source file is decoded again.
    src = tmp_path / "purchase100" / "dataset_purchase"
    src.write_text(src.read_text() + src.read_text().splitlines()[0] + "\n")
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(cfg("purchase100", verify=False), str(tmp_path))


def test_archive_members_cannot_escape_the_folder(tmp_path):
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ConfigError, match="would be extracted to") as err:
        files.extract(archive, tmp_path / "out")
    assert isinstance(err.value.__cause__, tarfile.FilterError)
    assert not (tmp_path / "escaped").exists()


def test_normalisation_from_data_when_not_given(tmp_path):
    x, _ = write_chmnist(tmp_path, n=10)
    d = load_dataset(cfg("chmnist", verify=False, mean=None, std=None), str(tmp_path))
    xf = x.astype(np.float64) / 255.0
    assert d.mean[0] == pytest.approx(xf.mean()) and d.std[0] == pytest.approx(xf.std(ddof=1))
    with pytest.raises(ConfigError, match="dataset.mean"):
        load_dataset(cfg("chmnist", verify=False, mean=[0.1, 0.2]), str(tmp_path))


REAL_DOWNLOAD = files.download  # bound at import, before the autouse fixture replaces it


def test_download_goes_through_torchvision_and_is_atomic(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    seen = []

    def fake_download_url(url, root, filename=None, md5=None, **kw):
        seen.append((url, Path(root), filename))
        (Path(root) / filename).write_bytes(b"payload")

    monkeypatch.setattr(tvu, "download_url", fake_download_url)
    REAL_DOWNLOAD("https://example.org/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == b"payload"
    assert seen[0][0] == "https://example.org/f.bin" and seen[0][2] != "f.bin"  # a temporary name

    def failing(url, root, filename=None, **kw):
        (Path(root) / filename).write_bytes(b"half")
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(tvu, "download_url", failing)
    with pytest.raises(urllib.error.URLError):
        REAL_DOWNLOAD("https://example.org/g.bin", tmp_path / "g.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]  # no partial file left


def test_checksums_use_torchvision_md5(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    # MD5("abc"), RFC 1321 test suite
    assert files.checksum_problem(tmp_path / "a", md5="900150983cd24fb0d6963f7d28e17f72") is None
    assert "has MD5 900150983cd24fb0d6963f7d28e17f72" in files.checksum_problem(
        tmp_path / "a", md5="0" * 32
    )
