"""Every architecture in conf/model: shapes, penultimate features, one training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from mia_bench.errors import ConfigError
from mia_bench.models import build_model

MODEL_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"
MODELS = sorted(p.stem for p in MODEL_DIR.glob("*.yaml"))
# Input shape of the dataset each MLP is for. Image models get small 3x16x16 images here to
# keep CPU time low; 32x32 CIFAR inputs run through every paper model in test_experiments.py.
TABULAR = {"mlp": (40,), "mlp_purchase": (600,), "mlp_texas": (6169,)}
SMALL_IMAGE = (3, 16, 16)
# Parameters for 10 classes as published: He et al. 2016 Table 6 (ResNet-20: 0.27M, here with
# the 1x1-projection shortcuts of the RelaxLoss code: 272,474), and the counts printed by the
# public PyTorch CIFAR models (kuangliu/pytorch-cifar) and objax's WRN-28-2 used by LiRA.
PUBLISHED = {
    "resnet20": 272_474,
    "resnet18": 11_173_962,
    "vgg11_bn": 9_231_114,
    "densenet121": 6_956_298,
    "googlenet": 6_166_250,
    "wrn28_2": 1_467_610,
    "mlp_purchase": 600 * 1024
    + 1024
    + 1024 * 512
    + 512
    + 512 * 256
    + 256
    + 256 * 128
    + 128
    + 128 * 10
    + 10,
    "mlp_texas": 6169 * 2048
    + 2048
    + 2048 * 1024
    + 1024
    + 1024 * 512
    + 512
    + 512 * 256
    + 256
    + 256 * 10
    + 10,
}


def load(name: str, **over):
    cfg = OmegaConf.load(MODEL_DIR / f"{name}.yaml")
    for k, v in over.items():
        cfg[k] = v
    return cfg


def test_every_paper_architecture_has_a_config():
    assert set(PUBLISHED) <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_shapes_features_and_one_training_step(name):
    torch.manual_seed(0)
    shape = TABULAR.get(name, SMALL_IMAGE)
    classes = 7
    m = build_model(load(name), shape, classes)
    x, y = torch.randn(2, *shape), torch.tensor([1, 5])
    m.eval()
    logits, feats = m.forward_with_features(x)
    assert logits.shape == (2, classes) and feats.shape == (2, m.feature_dim)
    torch.testing.assert_close(m(x), logits)
    torch.testing.assert_close(m.classifier(feats), logits)  # features are the classifier's input

    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    before = [p.detach().clone() for p in m.parameters()]
    loss = torch.nn.functional.cross_entropy(m(x), y)
    opt.zero_grad()
    loss.backward()
    # Every parameter takes part in the forward pass (no dead layers).
    assert all(p.grad is not None for p in m.parameters()), [
        n for n, p in m.named_parameters() if p.grad is None
    ]
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_published_architecture(name):
    m = build_model(load(name), TABULAR.get(name, (3, 32, 32)), 10)
    assert sum(p.numel() for p in m.parameters()) == PUBLISHED[name]


@pytest.mark.parametrize("name", [n for n in MODELS if n not in TABULAR])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 64, 64)])
def test_image_models_take_greyscale_28_and_64(name, shape):
    """CH-MNIST (1x28x28, or the 64x64 file) with any image architecture."""
    m = build_model(load(name), shape, 8).eval()
    logits, feats = m.forward_with_features(torch.rand(2, *shape))
    assert logits.shape == (2, 8) and feats.shape == (2, m.feature_dim)


@pytest.mark.parametrize("name", [n for n in MODELS if n not in TABULAR])
def test_image_models_refuse_tabular_input(name):
    with pytest.raises(ConfigError, match="model=mlp"):
        build_model(load(name), (600,), 100)


def test_dropout_sits_before_the_classifier():
    m = build_model(load("resnet20", dropout=0.5), (3, 32, 32), 10)
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    feats = m.features(x)
    m.train()
    torch.manual_seed(0)
    a = m.classifier(m.head_dropout(feats))
    torch.manual_seed(1)
    b = m.classifier(m.head_dropout(feats))
    assert not torch.allclose(a, b)  # dropout active in training...
    m.eval()
    torch.testing.assert_close(m(x), m.classifier(feats))  # ...and the identity in eval


@pytest.mark.parametrize(
    "name,key,value",
    [("resnet20", "depth", 21), ("wrn28_2", "depth", 27), ("vgg11_bn", "depth", 12)],
)
def test_bad_depth_is_a_config_error(name, key, value):
    with pytest.raises(ConfigError, match="depth"):
        build_model(load(name, **{key: value}), (3, 32, 32), 10)
