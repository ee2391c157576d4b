"""DP-SGD trains the papers' image models (their ReLUs are in place, which Opacus's hooks
cannot take): one noisy step of ResNet20 and VGG11-BN changes every trainable tensor."""

import pytest
import torch
from omegaconf import OmegaConf
from test_dp_sgd import _cfg, _ctx

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.dp_sgd import DPSGD
from mia_bench.models import build_model
from mia_bench.train.loop import train_model

MODELS = {
    "resnet20": {"_target_": "mia_bench.models.resnet.CifarResNet", "depth": 20},
    "vgg11_bn": {"_target_": "mia_bench.models.vgg.VGG", "depth": 11},
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_one_dp_sgd_step_on_a_paper_image_model(name):
    torch.manual_seed(0)
    model = build_model(OmegaConf.create(MODELS[name]), (3, 32, 32), 10)
    d = DPSGD(10, model.feature_dim, noise_multiplier=0.5, max_grad_norm=1.0)
    d.attach(_ctx(8))
    model = d.wrap_model(model)
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (8,))
    pre = Preprocess("image", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    train_model(
        model, d, x, y, _cfg(8), preprocess=pre, seed=0, device=torch.device("cpu"), progress=False
    )
    after = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert all(not torch.equal(a.detach(), b) for a, b in zip(after, before))
