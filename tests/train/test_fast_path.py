"""The trainer's CUDA fast path: off on the CPU (results unchanged), on where CUDA is."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from mia_bench.config import validate
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.none import NoDefense
from mia_bench.errors import ConfigError
from mia_bench.models.cnn import SmallCNN
from mia_bench.train.core import FastPath, compile_mode, make_optimizer
from mia_bench.train.loop import train_model

CPU = torch.device("cpu")
TRAINER = OmegaConf.create(
    {
        "epochs": 2,
        "batch_size": 16,
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "milestones": [1],
        "gamma": 0.1,
        "amp": "bf16",
        "channels_last": True,
        "compile": False,
    }
)
PRE = Preprocess("image", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), crop_padding=1, flip=True)


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.randint(
        0, 4, (n,), generator=g
    )


def _train(cfg, device=CPU):
    torch.manual_seed(0)
    m = SmallCNN((3, 8, 8), 4, channels=(8, 16))
    x, y = _data()
    log = train_model(
        m, NoDefense(4, 16), x, y, cfg, preprocess=PRE, seed=3, device=device, progress=False
    )
    return m, log


def test_fast_path_is_off_on_cpu():
    fp = FastPath.from_cfg(TRAINER, CPU)
    assert fp.amp_dtype is None and fp.channels_last is False and fp.compile is None
    x = torch.zeros(2, 3, 4, 4)
    assert fp.batch(x) is x
    opt = make_optimizer([torch.zeros(2, requires_grad=True)], TRAINER, CPU)
    # the default per-tensor loop, exactly as before the fast path existed
    assert not opt.defaults.get("fused") and not opt.defaults.get("foreach")


def test_cpu_ignores_amp_and_channels_last_bit_for_bit():
    plain = OmegaConf.merge(TRAINER, {"amp": "none", "channels_last": False})
    a, la = _train(TRAINER)
    b, lb = _train(plain)
    assert la.epoch_loss == lb.epoch_loss
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


@pytest.mark.parametrize(
    "override,key",
    [
        ("trainer.amp=fp16", "trainer.amp"),
        ("trainer.channels_last=maybe", "trainer.channels_last"),
        ("trainer.compile=1", "trainer.compile"),
        ("trainer.compile=fast", "trainer.compile"),
        ("trainer.cudnn_benchmark=yes", "trainer.cudnn_benchmark"),
        ("trainer.stack=0", "trainer.stack"),
        ("trainer.stack=two", "trainer.stack"),
    ],
)
def test_bad_speed_settings_name_the_key(cfg_factory, override, key):
    with pytest.raises(ConfigError) as err:
        validate(cfg_factory([override]))
    assert err.value.key == key


def test_speed_keys_default_from_the_yaml_for_a_hand_built_trainer(cfg_factory):
    # A composed run config always holds every trainer key (conf/trainer/default.yaml), so
    # validate refuses one without them; a trainer config built by hand for train_model may
    # leave them out and gets the YAML's values, written once.
    cfg = cfg_factory()
    with open_dict(cfg):
        for k in ["amp", "channels_last", "cudnn_benchmark", "compile", "stack"]:
            cfg.trainer.pop(k)
    with pytest.raises(ConfigError, match="trainer.amp"):
        validate(cfg)
    assert FastPath.from_cfg(cfg.trainer, CPU) == FastPath()


def test_compile_modes_of_the_config():
    assert [compile_mode(v) for v in (False, None, True)] == [None, None, "default"]
    assert compile_mode("reduce-overhead") == "reduce-overhead"
    with pytest.raises(ValueError, match="trainer.compile"):
        compile_mode("fast")


def test_compile_mode_string_passes_validation_and_reaches_the_trainer(cfg_factory):
    cfg = cfg_factory(["trainer.compile=reduce-overhead"])
    validate(cfg)  # a refusal raises ConfigError
    # the mode the trainer compiles with (honoured on every device), not eager nor "default"
    assert FastPath.from_cfg(cfg.trainer, CPU).compile == "reduce-overhead"
    assert FastPath.from_cfg(cfg_factory().trainer, CPU).compile is None


@pytest.mark.slow
def test_compile_on_cpu_matches_eager():
    a, la = _train(OmegaConf.merge(TRAINER, {"compile": True}))
    b, lb = _train(TRAINER)
    assert la.epoch_loss == pytest.approx(lb.epoch_loss, abs=1e-4)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], atol=1e-4, rtol=0)


@pytest.mark.gpu
def test_cuda_fast_path_bf16_channels_last_fused():
    dev = torch.device("cuda")
    fp = FastPath.from_cfg(TRAINER, dev)
    assert fp.amp_dtype is torch.bfloat16 and fp.channels_last
    assert torch.backends.cudnn.benchmark
    opt = make_optimizer([torch.zeros(2, device=dev, requires_grad=True)], TRAINER, dev)
    assert opt.defaults.get("fused") or opt.defaults.get("foreach")
    m, log = _train(OmegaConf.merge(TRAINER, {"epochs": 6}), dev)
    assert log.epoch_loss[-1] < log.epoch_loss[0]
    assert m.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    # bf16 changes the arithmetic only slightly: fp32 on the GPU ends close by
    _, log32 = _train(OmegaConf.merge(TRAINER, {"epochs": 6, "amp": "none"}), dev)
    assert log.epoch_loss[-1] == pytest.approx(log32.epoch_loss[-1], rel=0.1)


def test_cuda_settings_run_through_both_trainers_on_cpu(monkeypatch):
    """The CUDA code path (bf16 autocast, channels_last) exercised on the CPU, which supports
    both: training must run, keep fp32 weights, and still learn, alone and stacked."""
    from mia_bench.train.stacked import train_stacked

    cuda_like = FastPath(amp_dtype=torch.bfloat16, channels_last=True)
    monkeypatch.setattr(FastPath, "from_cfg", classmethod(lambda cls, cfg, device: cuda_like))
    cfg = OmegaConf.merge(TRAINER, {"epochs": 6, "milestones": [5]})
    m, log = _train(cfg)
    assert log.epoch_loss[-1] < log.epoch_loss[0]
    assert m.body[0].weight.dtype == torch.float32
    assert m.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    x, y = _data()
    models = [SmallCNN((3, 8, 8), 4, channels=(8, 16)) for _ in range(2)]
    logs = train_stacked(
        models,
        [NoDefense(4, 16) for _ in models],
        [(x, y)] * 2,
        cfg,
        seeds=[1, 2],
        preprocess=PRE,
        device=CPU,
        progress=False,
    )
    assert all(lg.epoch_loss[-1] < lg.epoch_loss[0] for lg in logs)
    assert models[0].body[0].weight.dtype == torch.float32
