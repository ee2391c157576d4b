"""Per-sample gradient norms agree with a naive per-sample loop (the definition)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mia_bench.models.cnn import SmallCNN
from mia_bench.models.mlp import MLP
from mia_bench.signals.gradnorms import per_sample_grad_norms
from mia_bench.signals.gradnorms import per_sample_grad_norms as direct

REL = 1e-4


def naive(model, x, y, wrt):
    """One forward/backward per sample, norms of the concatenated gradient, in float64."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    l1, l2 = [], []
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        loss = F.cross_entropy(model(xi), y[i : i + 1])
        gs = torch.autograd.grad(loss, [xi] if wrt == "inputs" else params, allow_unused=True)
        v = torch.cat([g.flatten() for g in gs if g is not None]).double()
        l1.append(v.abs().sum())
        l2.append(v.norm())
    return torch.stack(l1), torch.stack(l2)


def assert_matches(model, x, y, wrt, **kw):
    ours = per_sample_grad_norms(model, x, y, wrt, **kw)
    r1, r2 = naive(model, x, y, wrt)
    assert ours["l1"].shape == ours["l2"].shape == (len(x),)
    torch.testing.assert_close(ours["l1"].double(), r1, rtol=REL, atol=0)
    torch.testing.assert_close(ours["l2"].double(), r2, rtol=REL, atol=0)


def _randomise_bn(model):
    """Non-trivial running statistics and affine parameters, as after training."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return model


def test_public_name_is_the_implementation():
    assert per_sample_grad_norms is direct


@pytest.mark.parametrize("wrt", ["inputs", "params"])
def test_mlp_matches_loop(wrt):
    torch.manual_seed(0)
    model = MLP((30,), 7, hidden=(64, 32))
    x, y = torch.randn(25, 30), torch.randint(0, 7, (25,))
    assert_matches(model, x, y, wrt)


@pytest.mark.parametrize("wrt", ["inputs", "params"])
def test_cnn_with_batchnorm_in_eval_mode_matches_loop(wrt):
    torch.manual_seed(0)
    model = _randomise_bn(SmallCNN((3, 16, 16), 10, channels=(8, 16, 16)))
    x, y = torch.randn(12, 3, 16, 16), torch.randint(0, 10, (12,))
    assert_matches(model, x, y, wrt, chunk_size=5)


def test_eval_mode_is_used_and_the_mode_restored():
    torch.manual_seed(0)
    model = _randomise_bn(SmallCNN((3, 8, 8), 4, channels=(4,), dropout=0.5))
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 4, (6,))
    model.train()
    ours = per_sample_grad_norms(model, x, y, "params")
    assert model.training and all(m.training for m in model.modules())
    # in train mode BatchNorm would use batch statistics and dropout would be random
    r1, _ = naive(model, x, y, "params")
    torch.testing.assert_close(ours["l1"].double(), r1, rtol=REL, atol=0)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("size", [8, 16])  # 16x16 maps take the grouped-convolution path
def test_conv_paths_match_loop(groups, size):
    torch.manual_seed(0)
    model = _randomise_bn(
        nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1, groups=groups),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 8, 3, stride=2, padding=1, dilation=2, groups=groups),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(32, 3),
        )
    )
    x, y = torch.randn(7, 16, size, size), torch.randint(0, 3, (7,))
    assert_matches(model, x, y, "params", chunk_size=4)


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "vgg11_bn", "wrn28_2", "densenet121"])
def test_repo_image_models_match_loop(name):
    """Residual additions, in-place ReLUs, concatenations, 1x1 shortcuts: every layer of the
    repo's image models takes a closed form, and the sums stay accurate over long layers."""
    from omegaconf import OmegaConf

    from mia_bench.models import build_model

    torch.manual_seed(0)
    model = _randomise_bn(build_model(OmegaConf.load(f"conf/model/{name}.yaml"), (3, 32, 32), 10))
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 10, (2,))
    assert_matches(model, x, y, "params")


class _Odd(nn.Module):
    """Layers without a closed form (fallback) next to ones with a closed form, plus the cases
    that break layer identities: a module used twice, a tied weight, an in-place ReLU after a
    recorded output, a bare parameter, a grouped strided conv, a Linear over tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2)
        self.bn = nn.BatchNorm2d(8)
        self.gn = nn.GroupNorm(2, 8)
        self.conv1d = nn.Conv1d(8, 6, 3)
        self.tok = nn.Linear(6, 5)
        self.twice = nn.Linear(5, 5)
        self.ln = nn.LayerNorm(5)
        self.scale = nn.Parameter(torch.tensor(1.3))
        self.a = nn.Linear(5, 5)
        self.b = nn.Linear(5, 5)
        self.b.weight = self.a.weight  # tied
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        h = F.relu(self.bn(self.conv(x)), inplace=True)
        h = self.gn(h).flatten(2)  # (B, 8, 16)
        h = self.conv1d(h).transpose(1, 2)  # (B, 14, 6)
        h = torch.tanh(self.tok(h)).mean(1)  # (B, 5)
        h = self.twice(torch.tanh(self.twice(h)))
        h = self.ln(h) * self.scale
        h = torch.tanh(self.a(h)) + torch.tanh(self.b(h))
        return self.head(h)


@pytest.mark.parametrize("fallback", ["vmap", "loop"])
def test_fallback_and_special_cases_match_loop(fallback):
    torch.manual_seed(0)
    model = _randomise_bn(_Odd())
    x, y = torch.randn(9, 4, 8, 8), torch.randint(0, 3, (9,))
    assert_matches(model, x, y, "params", fallback=fallback)


def test_frozen_parameters_are_left_out():
    torch.manual_seed(0)
    model = MLP((10,), 4, hidden=(8,))
    model.classifier.weight.requires_grad_(False)
    x, y = torch.randn(6, 10), torch.randint(0, 4, (6,))
    assert_matches(model, x, y, "params")


def test_no_side_effects_on_grad_fields():
    model = MLP((10,), 4, hidden=(8,))
    per_sample_grad_norms(model, torch.randn(3, 10), torch.tensor([0, 1, 2]), "params")
    assert all(p.grad is None for p in model.parameters())


def test_batchnorm_without_running_stats_is_refused():
    model = nn.Sequential(
        nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)
    )
    with pytest.raises(ValueError, match="couples the samples"):
        per_sample_grad_norms(model, torch.randn(5, 4), torch.zeros(5, dtype=torch.long), "params")


def test_bad_arguments():
    model = MLP((4,), 2, hidden=(3,))
    x, y = torch.randn(2, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="wrt"):
        per_sample_grad_norms(model, x, y, "weights")
    with pytest.raises(ValueError, match="fallback"):
        per_sample_grad_norms(model, x, y, "params", fallback="guess")


@pytest.mark.gpu
@pytest.mark.parametrize("wrt", ["inputs", "params"])
def test_cuda_matches_cpu(wrt, monkeypatch):
    torch.manual_seed(0)
    model = _randomise_bn(SmallCNN((3, 32, 32), 10))
    x, y = torch.randn(300, 3, 32, 32), torch.randint(0, 10, (300,))
    cpu = per_sample_grad_norms(model, x, y, wrt)
    # TF32 matmuls would change the result beyond 1e-4; compare in full fp32. cuDNN's
    # autotuner (switched on by any earlier training on CUDA) may pick Winograd / FFT
    # convolutions, whose fp32 rounding differs by up to 1e-3: ask for the plain algorithms.
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    gpu = per_sample_grad_norms(model.cuda(), x.cuda(), y.cuda(), wrt)
    for k in ("l1", "l2"):
        rel = ((gpu[k].cpu() - cpu[k]).abs() / cpu[k]).double()
        # Typical samples agree to fp32 rounding. A confidently classified sample's gradient
        # is (softmax - onehot) with 1 - p near 0, where CPU and CUDA softmax roundings differ
        # by a relative 1e-3 (seen on one sample in 300 on an H100); a wrong layer or norm
        # moves every sample by far more.
        assert rel.median() < REL / 10, (k, rel.median())
        assert rel.max() < 20 * REL, (k, rel.max(), rel.argmax())


def test_default_chunk_size_on_cpu():
    from mia_bench.signals.gradnorms import default_chunk_size

    # about 2^17 input values per chunk, a power of two between 16 and 512
    assert default_chunk_size(torch.zeros(2, 3, 32, 32)) == 32  # 131072 / 3072 = 42 -> 32
    assert default_chunk_size(torch.zeros(2, 600)) == 128  # 218 -> 128
    assert default_chunk_size(torch.zeros(2, 40)) == 512
    assert default_chunk_size(torch.zeros(2, 3, 224, 224)) == 16
