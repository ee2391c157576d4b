"""Stacked training equals training the same models one by one (same seeds, data, batches)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import Defense
from mia_bench.defenses.distillation import SelfDistillation
from mia_bench.defenses.early_stopping import EarlyStopping
from mia_bench.defenses.memguard import MemGuard
from mia_bench.defenses.none import NoDefense
from mia_bench.models.cnn import SmallCNN
from mia_bench.models.mlp import MLP
from mia_bench.train.loop import train_model
from mia_bench.train.stacked import train_stacked, trains_alone, unstackable_reason

CPU = torch.device("cpu")
# Milestone inside the run, momentum and weight decay on: every part of the update is used.
TRAINER = OmegaConf.create(
    {
        "epochs": 3,
        "batch_size": 16,
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "milestones": [2],
        "gamma": 0.1,
        "stack": 3,
    }
)


class CenterDefense(Defense):
    """A defense with its own parameters and optimiser (shaped like CRL's class centers), and a
    loss with a data-dependent branch: both must work per model when stacked."""

    name = "centers"
    needs_features = True

    def __init__(self, num_classes: int, feature_dim: int) -> None:
        super().__init__(num_classes, feature_dim)
        self.centers = torch.nn.Parameter(torch.randn(num_classes, feature_dim))
        self._opt = torch.optim.SGD([self.centers], lr=0.01)

    def loss(self, logits, targets, *, epoch, features=None):
        ce = F.cross_entropy(logits, targets)
        pull = (features - self.centers[targets]).pow(2).sum(1).mean() / 2
        return ce + 0.1 * pull if ce > 0.5 else ce - 0.01 * pull

    def extra_optimizers(self):
        return [self._opt]


class SetupDefense(NoDefense):
    """Overrides a training hook the stacked loop does not run."""

    name = "with_setup"

    def setup(self, model, optimizer, train_data):
        self.seen = len(train_data[1])


def _images(seed: int, n: int = 48):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.randint(
        0, 4, (n,), generator=g
    )


def _tabular(seed: int, n: int = 48):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, generator=g), torch.randint(0, 4, (n,), generator=g)


def _train_both(make_model, make_defense, datasets, preprocess):
    seeds = [11, 22, 33][: len(datasets)]
    models, defenses = [], []
    for s in seeds:
        torch.manual_seed(s)
        models.append(make_model())
        defenses.append(make_defense())
    alone_m, alone_d = copy.deepcopy(models), copy.deepcopy(defenses)
    alone_logs = [
        train_model(m, d, x, y, TRAINER, preprocess=preprocess, seed=s, device=CPU, progress=False)
        for m, d, (x, y), s in zip(alone_m, alone_d, datasets, seeds)
    ]
    logs = train_stacked(
        models,
        defenses,
        datasets,
        TRAINER,
        seeds=seeds,
        preprocess=preprocess,
        device=CPU,
        progress=False,
    )
    return (models, defenses, logs), (alone_m, alone_d, alone_logs)


def _assert_same(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=lambda m, k=k: f"{k}: {m}")


def test_stacked_cnn_with_batchnorm_and_augmentation_matches_one_by_one():
    pre = Preprocess("image", (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), crop_padding=2, flip=True)
    datasets = [_images(i) for i in range(3)]
    (ms, _, logs), (ms1, _, logs1) = _train_both(
        lambda: SmallCNN((3, 8, 8), 4, channels=(8, 16)), lambda: NoDefense(4, 16), datasets, pre
    )
    for m, m1, lg, lg1 in zip(ms, ms1, logs, logs1):
        # parameters, BatchNorm running mean/var and num_batches_tracked
        _assert_same(m.state_dict(), m1.state_dict(), atol=1e-5)
        assert int(m.body[1].num_batches_tracked) == TRAINER.epochs * 3  # 48 / 16 batches
        assert lg.epoch_loss == pytest.approx(lg1.epoch_loss, abs=1e-5)
        assert not m.training
    # the models really differ from each other (own data, own seed), and really trained
    assert not torch.allclose(ms[0].classifier.weight, ms[1].classifier.weight)
    assert logs[0].epoch_loss[-1] < logs[0].epoch_loss[0]
    # eval-mode outputs (which read the running statistics) agree too
    x = pre(datasets[0][0][:8])
    torch.testing.assert_close(ms[0](x), ms1[0](x), atol=1e-5, rtol=0)


def test_stacked_defense_with_own_optimizer_and_branching_loss():
    pre = Preprocess("tabular")
    datasets = [_tabular(i) for i in range(2)]
    (ms, ds, _), (ms1, ds1, _) = _train_both(
        lambda: MLP((10,), 4, hidden=(16,)), lambda: CenterDefense(4, 16), datasets, pre
    )
    for m, m1, d, d1 in zip(ms, ms1, ds, ds1):
        _assert_same(m.state_dict(), m1.state_dict(), atol=1e-5)
        _assert_same(d.state_dict(), d1.state_dict(), atol=1e-5)
    assert not torch.allclose(ds[0].centers, ds[1].centers)


def test_unstackable_falls_back_to_one_by_one_exactly():
    pre = Preprocess("tabular")
    datasets = [_tabular(0), _tabular(1)]
    (ms, ds, _), (ms1, _, _) = _train_both(
        lambda: MLP((10,), 4, hidden=(16,)), lambda: SetupDefense(4, 16), datasets, pre
    )
    assert ds[0].seen == 48  # setup ran: the sequential trainer was used
    for m, m1 in zip(ms, ms1):
        _assert_same(m.state_dict(), m1.state_dict(), atol=0)


def test_unstackable_reasons():
    mlp = MLP((10,), 4, hidden=(16,))
    d = NoDefense(4, 16)
    same = [_tabular(0), _tabular(1)]
    assert unstackable_reason([mlp, copy.deepcopy(mlp)], [d, d], same) is None
    assert "sizes" in unstackable_reason([mlp, mlp], [d, d], [_tabular(0), _tabular(1, n=40)])
    assert "architectures" in unstackable_reason([mlp, MLP((10,), 4, hidden=(8,))], [d, d], same)
    assert "setup" in unstackable_reason([mlp, mlp], [SetupDefense(4, 16)] * 2, same)
    # the one stacking predicate: also what the experiment asks before it groups models
    assert trains_alone(d) is None
    assert "setup" in trains_alone(SetupDefense(4, 16))
    assert "snapshots" in unstackable_reason([mlp, mlp], [EarlyStopping(4, 16, [1])] * 2, same)
    assert "inputs" in trains_alone(SelfDistillation(4, 16))
    assert "after_training" in trains_alone(MemGuard(4, 16))


@pytest.mark.gpu
def test_stacked_on_cuda_with_bf16_trains():
    dev = torch.device("cuda")
    pre = Preprocess("image", (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), crop_padding=2, flip=True)
    datasets = [_images(i, n=256) for i in range(2)]
    models = [SmallCNN((3, 8, 8), 4, channels=(8, 16)) for _ in range(2)]
    cfg = OmegaConf.merge(TRAINER, {"amp": "bf16", "epochs": 4})
    logs = train_stacked(
        models,
        [NoDefense(4, 16) for _ in models],
        datasets,
        cfg,
        seeds=[1, 2],
        preprocess=pre,
        device=dev,
        progress=False,
    )
    assert all(lg.epoch_loss[-1] < lg.epoch_loss[0] for lg in logs)


def test_pipeline_stacked_shadows_share_cache_keys_with_one_by_one(cfg_factory, tmp_path):
    from mia_bench.experiment import run as pipeline

    common = [
        "shadow.count=3",
        "attack=[loss]",
        "dataset.n_samples=1000",
        "trainer.epochs=3",
        "trainer.milestones=[2]",
    ]
    a = pipeline.run(cfg_factory([*common, "trainer.stack=2"]), tmp_path / "a")  # groups of 2 + 1
    assert not any(m["cache_hit"] for m in a["models"].values())
    # one by one, same cache: every shadow is found under the key the stacked run stored
    b = pipeline.run(cfg_factory([*common, "trainer.stack=1"]), tmp_path / "b")
    assert all(m["cache_hit"] for m in b["models"].values())
    assert a["attacks"] == b["attacks"]
    # trained one by one from scratch: the same shadows, up to float rounding
    c = pipeline.run(cfg_factory([*common, "trainer.stack=1", "cache=false"]), tmp_path / "c")
    assert c["target"] == a["target"]
    for role in ["shadow0", "shadow1", "shadow2"]:
        assert c["models"][role]["final_train_loss"] == pytest.approx(
            a["models"][role]["final_train_loss"], abs=1e-5
        )
        assert c["models"][role]["test_acc"] == pytest.approx(
            a["models"][role]["test_acc"], abs=2e-3
        )


@pytest.mark.gpu
def test_stacked_on_cuda_fp32_matches_one_by_one():
    dev = torch.device("cuda")
    cfg = OmegaConf.merge(
        TRAINER, {"amp": "none", "cudnn_benchmark": False, "channels_last": False}
    )
    pre = Preprocess("image", (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), crop_padding=2, flip=True)
    datasets = [_images(i) for i in range(3)]
    seeds = [11, 22, 33]
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(SmallCNN((3, 8, 8), 4, channels=(8, 16)))
    alone = copy.deepcopy(models)
    for m, (x, y), s in zip(alone, datasets, seeds):
        train_model(
            m, NoDefense(4, 16), x, y, cfg, preprocess=pre, seed=s, device=dev, progress=False
        )
    train_stacked(
        models,
        [NoDefense(4, 16) for _ in models],
        datasets,
        cfg,
        seeds=seeds,
        preprocess=pre,
        device=dev,
        progress=False,
    )
    for m, m1 in zip(models, alone):
        # TF32 / cuDNN algorithm choice differ between grouped and single convolutions
        _assert_same(m.state_dict(), m1.state_dict(), atol=1e-3)
