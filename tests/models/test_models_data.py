import pytest
import torch
from omegaconf import OmegaConf

from mia_bench.data import load_dataset
from mia_bench.models import build_model


def test_digits_is_uint8_images():
    d = load_dataset(OmegaConf.load("conf/dataset/digits.yaml"))
    assert d.x.dtype == torch.uint8 and d.x.shape == (1797, 1, 8, 8) and d.num_classes == 10
    assert int(d.x.max()) == 255


def test_synthetic_parameters_from_yaml():
    cfg = OmegaConf.create(
        {
            "name": "synthetic",
            "_target_": "mia_bench.data.synthetic.load_synthetic",
            "n_samples": 500,
            "n_features": 12,
            "n_informative": 6,
            "n_redundant": 2,
            "n_classes": 4,
        }
    )
    d = load_dataset(cfg)
    assert d.x.shape == (500, 12) and d.x.dtype == torch.float32 and d.num_classes == 4
    assert set(d.y.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "model,shape",
    [("mlp", (40,)), ("mlp", (1, 8, 8)), ("small_cnn", (1, 8, 8)), ("small_cnn", (3, 32, 32))],
)
def test_model_logits_and_features(model, shape):
    cfg = OmegaConf.load(f"conf/model/{model}.yaml")
    m = build_model(cfg, shape, 7)
    x = torch.randn(5, *shape)
    logits, feats = m.forward_with_features(x)
    assert logits.shape == (5, 7) and feats.shape == (5, m.feature_dim)
    torch.testing.assert_close(m(x), logits)


def test_cnn_refuses_tabular_input():
    from mia_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="model=mlp"):
        build_model(OmegaConf.load("conf/model/small_cnn.yaml"), (40,), 10)
