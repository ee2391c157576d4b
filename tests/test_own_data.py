"""A user's own data and model: dataset=npz / image_folder, a dataset or model of the user's
own module named by `_target_`, and a model cache that sees the data's content and the
model's code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, compose_cfg, run_cli
from omegaconf import OmegaConf, open_dict
from torch import nn

from mia_bench.data import load_dataset
from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline
from mia_bench.models import ModuleClassifier, build_model, source_digest

CONF = ROOT / "conf"


def npz_cfg(path: Path, **over):
    c = OmegaConf.load(CONF / "dataset" / "npz.yaml")
    c.path = str(path)
    for k, v in over.items():
        OmegaConf.update(c, k, v)
    return c


# -- dataset=npz, dataset=image_folder ------------------------------------------------------
def test_npz_images_channels_last_and_float(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 6, 5, 3), dtype=np.uint8)  # (N, H, W, C)
    y = np.arange(10) % 4
    np.savez(tmp_path / "a.npz", x=x, y=y)
    d = load_dataset(npz_cfg(tmp_path / "a.npz"), str(tmp_path / "data"))
    assert d.kind == "image" and d.num_classes == 4 and d.x.shape == (10, 3, 6, 5)
    np.testing.assert_array_equal(d.x.numpy(), x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(d.y.numpy(), y)
    # Floats in [0, 1] are the same pixels; the file's mean / std win over the YAML's.
    np.savez(tmp_path / "b.npz", x=x / 255.0, y=y, mean=[0.1, 0.2, 0.3], std=[1.0, 1.0, 2.0])
    e = load_dataset(npz_cfg(tmp_path / "b.npz", mean=[0.5]), str(tmp_path / "data"))
    np.testing.assert_array_equal(e.x.numpy(), d.x.numpy())
    assert e.mean == pytest.approx((0.1, 0.2, 0.3)) and e.std == pytest.approx((1.0, 1.0, 2.0))


def test_npz_tabular_and_bad_files(tmp_path):
    x = np.random.default_rng(1).normal(size=(12, 5)).astype(np.float32)
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(12) % 3)
    d = load_dataset(npz_cfg(tmp_path / "t.npz", num_classes=5), str(tmp_path))
    assert d.kind == "tabular" and d.num_classes == 5
    np.testing.assert_array_equal(d.x.numpy(), x)
    np.savez(tmp_path / "noy.npz", x=x)
    with pytest.raises(ConfigError, match="'y'") as err:
        load_dataset(npz_cfg(tmp_path / "noy.npz"), str(tmp_path))
    assert err.value.key == "dataset.path"
    with pytest.raises(ConfigError) as err:
        load_dataset(OmegaConf.load(CONF / "dataset" / "npz.yaml"), str(tmp_path))
    assert err.value.key == "dataset.path"


def test_image_folder_layout(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    want = {}
    for cls in ("dog", "cat"):  # labels by sorted name: cat 0, dog 1
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(3):
            a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(a).save(tmp_path / "pets" / cls / f"{i}.png")
            want[(cls, i)] = a
    c = OmegaConf.load(CONF / "dataset" / "image_folder.yaml")
    c.root, c.image_size = str(tmp_path / "pets"), 8
    d = load_dataset(c, str(tmp_path / "data"))
    assert d.num_classes == 2 and d.x.shape == (6, 3, 8, 8)
    assert d.y.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(d.x[4].numpy(), want[("dog", 1)].transpose(2, 0, 1))


def test_unknown_loader_names_the_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_dataset({"_target_": "no_such_module.load"}, str(tmp_path))
    assert err.value.key == "dataset._target_"


# -- any nn.Module as model -------------------------------------------------------------------
class PlainNet(nn.Module):
    """A user's model: not a mia_bench Classifier; its head is not the last registered module."""

    def __init__(self, width: int = 6, num_classes: int = 3) -> None:
        super().__init__()
        self.head = nn.Linear(width, num_classes)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(4, width), nn.ReLU())

    def forward(self, x):
        return self.head(self.body(x))


class NoLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 2)

    def forward(self, x):
        return self.conv(x).mean((2, 3))


def test_plain_module_features_are_the_input_of_its_last_linear():
    m = build_model({"_target_": "test_own_data.PlainNet", "width": 6}, (1, 2, 2), 3)
    assert isinstance(m, ModuleClassifier) and m.feature_dim == 6
    x = torch.randn(5, 1, 2, 2)
    logits, feats = m.forward_with_features(x)
    torch.testing.assert_close(feats, m.net.body(x))
    torch.testing.assert_close(logits, m.net(x))
    # The dropout defense's head_dropout sits in front of that layer: p=1 leaves the bias.
    m.head_dropout = nn.Dropout(1.0)
    m.train()
    torch.testing.assert_close(m(x), m.net.head.bias.expand(5, 3))


def test_wrong_output_width_is_a_model_error():
    with pytest.raises(ConfigError, match=r"\(2, 7\)") as err:
        build_model({"_target_": "test_own_data.PlainNet", "num_classes": 3}, (1, 2, 2), 7)
    assert err.value.key == "model"


def _exp(tmp_path, overrides, model=None, dataset=None):
    cfg = compose_cfg(
        ["trainer.epochs=2", "attack=[loss]", "split.min_queries=1", *overrides], tmp_path
    )
    with open_dict(cfg):
        if model is not None:
            cfg.model = OmegaConf.create(model)
        if dataset is not None:
            cfg.dataset = dataset
    exp = pipeline.Experiment(cfg, tmp_path / "out")
    exp.prepare()
    return exp


def test_crl_with_a_plain_module_and_refusal_without_linear(tmp_path, one_thread):
    np.savez(
        tmp_path / "d.npz", x=np.random.default_rng(3).random((100, 1, 2, 2)), y=np.arange(100) % 3
    )
    ds = npz_cfg(tmp_path / "d.npz")
    exp = _exp(tmp_path, ["defense=crl"], {"_target_": "test_own_data.PlainNet"}, ds)
    tm = exp.train("target", exp.defense_cfg, exp.split.target_train, exp.split.target_test)
    assert np.isfinite(tm.epoch_loss).all() and len(tm.epoch_loss) == 2
    with pytest.raises(ConfigError, match="defense=crl") as err:
        _exp(tmp_path, ["defense=crl"], {"_target_": "test_own_data.NoLinear"}, ds)
    assert err.value.key == "model"
    _exp(tmp_path, ["defense=relaxloss"], {"_target_": "test_own_data.NoLinear"}, ds)  # no features


# -- the model cache sees the data's content and the model's code -----------------------------
def _hit(tmp_path, ds, model=None) -> bool:
    exp = _exp(tmp_path, ["trainer.epochs=1"], model, ds)
    return exp.train(
        "target", exp.defense_cfg, exp.split.target_train, exp.split.target_test
    ).cache_hit


def test_cache_keys_data_content_not_folder(tmp_path, one_thread):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(200, 40)).astype(np.float32), np.arange(200) % 4
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    np.savez(tmp_path / "one" / "d.npz", x=x, y=y)
    assert not _hit(tmp_path, npz_cfg(tmp_path / "one" / "d.npz"))
    assert _hit(tmp_path, npz_cfg(tmp_path / "one" / "d.npz"))
    # Same content in another folder: the same model.
    shutil.copy(tmp_path / "one" / "d.npz", tmp_path / "two" / "d.npz")
    assert _hit(tmp_path, npz_cfg(tmp_path / "two" / "d.npz"))
    # Other content under the same name and config: trained again.
    time.sleep(0.01)
    np.savez(tmp_path / "one" / "d.npz", x=x[::-1].copy(), y=y)
    assert not _hit(tmp_path, npz_cfg(tmp_path / "one" / "d.npz"))


MODEL_SRC = """
import torch
from torch import nn


class UserNet(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_shape[0], 16), nn.ReLU(), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.net(x)
"""


def test_cache_keys_model_source(tmp_path, monkeypatch, one_thread):
    pkg = tmp_path / "src"
    pkg.mkdir()
    (pkg / "user_net_cache.py").write_text(MODEL_SRC)
    monkeypatch.syspath_prepend(str(pkg))
    model = {"_target_": "user_net_cache.UserNet"}
    assert not _hit(tmp_path, None, model)
    assert _hit(tmp_path, None, model)
    before = source_digest(build_model(model, (40,), 10))
    (pkg / "user_net_cache.py").write_text(MODEL_SRC.replace("nn.ReLU()", "nn.Tanh()"))
    sys.modules.pop("user_net_cache", None)
    assert source_digest(build_model(model, (40,), 10)) != before
    assert not _hit(tmp_path, None, model)


# -- the user's own module via --config-dir, under the joblib launcher ------------------------
USER_DATA = """
import numpy as np
import torch
from mia_bench.data import TensorData


def blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 10)) + 2.0 * np.eye(3, 10)[y]
    return TensorData("blobs", torch.tensor(x, dtype=torch.float32), torch.tensor(y), 3, "tabular")
"""


NO_LINEAR_SRC = """

class NoLinear(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_classes))

    def forward(self, x):
        return x[:, : len(self.scale)] * self.scale
"""


def test_user_dataset_and_model_from_config_dir_under_joblib(tmp_path):
    (tmp_path / "my_blobs.py").write_text(USER_DATA)
    (tmp_path / "user_net_cli.py").write_text(MODEL_SRC + NO_LINEAR_SRC)
    (tmp_path / "myconf" / "dataset").mkdir(parents=True)
    (tmp_path / "myconf" / "model").mkdir(parents=True)
    (tmp_path / "myconf" / "dataset" / "blobs.yaml").write_text(
        "name: blobs\n_target_: my_blobs.blobs\nn: 600\n"
    )
    (tmp_path / "myconf" / "model" / "usernet.yaml").write_text(
        "name: usernet\n_target_: user_net_cli.UserNet\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    args = ["--config-dir", "myconf", "dataset=blobs", "model=usernet", "trainer.epochs=2"]
    args += ["attack=[loss]", "progress=false"]
    r = run_cli(
        [
            "-m",
            *args,
            "seed=0,1",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "hydra.sweep.dir=sweep",
        ],
        tmp_path,
        env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "sweep" / "0" / "results.json").exists()
    assert (tmp_path / "sweep" / "1" / "results.json").exists()
    # A model without nn.Linear and CRL: one line naming the setting, exit 2, before training.
    (tmp_path / "myconf" / "model" / "nolin.yaml").write_text(
        "name: nolin\n_target_: user_net_cli.NoLinear\n"
    )
    r = run_cli([*args[:3], "model=nolin", "defense=crl"], tmp_path, env)
    assert r.returncode == 2
    line = [x for x in r.stderr.splitlines() if x.startswith("mia_bench: invalid setting")]
    assert line and line[0].startswith("mia_bench: invalid setting model: nolin")
    assert "defense=crl" in line[0]


# -- the README's example, as a user runs it ------------------------------------------------------
def test_your_own_data_example(tmp_path):
    src = ROOT / "experiments" / "your-own-data"
    work = tmp_path / "your-own-data"
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("my_data.npz", "outputs"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MIA_BENCH_CACHE": str(tmp_path / "cache")}
    made = subprocess.run(
        [sys.executable, "make_data.py"], cwd=work, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    # The README's command, plus where to write and no progress bars.
    r = run_cli(
        [
            "--config-dir",
            "conf",
            "dataset=my_data",
            "model=tinynet",
            "progress=false",
            "hydra.run.dir=run",
        ],
        work,
        env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((work / "run" / "results.json").read_text())
    assert res["target"]["train_acc"] > res["target"]["test_acc"] + 0.1
    assert res["attacks"]["loss"]["auc"] > 0.6
    # The numbers in the example's README are this run's: to the digit on the machine that
    # wrote them; another CPU's kernels may move a trained model's last digits, not more.
    readme = (src / "README.md").read_text()
    train, test = re.search(r"train acc ([\d.]+)%, test acc ([\d.]+)%", readme).groups()
    assert float(train) == pytest.approx(100 * res["target"]["train_acc"], abs=0.05)
    assert float(test) == pytest.approx(100 * res["target"]["test_acc"], abs=2.0)
    auc = float(re.search(r"^\| loss \| ([\d.]+) \|", readme, re.M).group(1))
    assert auc == pytest.approx(res["attacks"]["loss"]["auc"], abs=0.02)
