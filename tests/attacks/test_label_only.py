"""Label-only attacks (Choquette-Choo et al. 2021): the gap attack's decision rule, the
augmentation sets, the combination rules, and the attacks' reach through MemGuard."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from mia_bench.attacks.label_only import (
    AugmentationAttack,
    GapAttack,
    image_views,
    noise_views,
    shift,
)
from mia_bench.config import validate
from mia_bench.data.transforms import Preprocess
from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline
from mia_bench.signals.compute import Signals, compute_signals

pytestmark = pytest.mark.usefixtures("one_thread")


def _sig(logits, labels, member, extra=None):
    return Signals(
        np.asarray(logits, np.float32),
        np.asarray(labels),
        np.asarray(member, bool),
        extra or {},
    )


def test_gap_attack_is_correctness_and_its_accuracy_is_half_plus_half_the_gap():
    # 4 members, 3 correct; 4 non-members, 1 correct
    logits = [[2, 0], [2, 0], [0, 2], [2, 0], [0, 2], [0, 2], [2, 0], [0, 2]]
    labels = [0, 0, 0, 0, 0, 0, 0, 1]
    member = [1, 1, 1, 1, 0, 0, 0, 0]
    s = _sig(logits, labels, member)
    a = GapAttack()
    a.name = "label_gap"
    a.fit([s])
    sc = a.score(s)["label_gap"]
    assert sc.tolist() == [1, 1, 0, 1, 0, 0, 1, 1]
    pred = a.predict(s)["label_gap"]
    tpr, tnr = pred[:4].mean(), 1 - pred[4:].mean()
    # train acc 3/4, test acc 2/4 -> balanced accuracy 1/2 + (3/4 - 2/4)/2 = 0.625
    assert (tpr + tnr) / 2 == pytest.approx(0.625)
    assert roc_auc_score(member, sc) == pytest.approx(0.625)


def test_shift_moves_pixels_and_fills_with_zero():
    x = torch.arange(1, 10, dtype=torch.uint8).view(1, 1, 3, 3)
    assert shift(x, 1, 0)[0, 0].tolist() == [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    assert shift(x, 0, -1)[0, 0].tolist() == [[2, 3, 0], [5, 6, 0], [8, 9, 0]]
    assert shift(x, -1, 1)[0, 0].tolist() == [[0, 4, 5], [0, 7, 8], [0, 0, 0]]


@pytest.mark.parametrize(
    "d, flip, count", [(0, False, 1), (1, False, 5), (1, True, 10), (2, True, 18)]
)
def test_image_views_are_the_papers_4d_plus_1_positions_times_flips(d, flip, count):
    x = torch.randint(
        0, 255, (2, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    views = image_views(d, flip)
    assert len(views) == count
    assert torch.equal(views[0](x), x)  # the identity comes first
    outs = [v(x) for v in views]
    assert len({o.numpy().tobytes() for o in outs}) == count  # all distinct


def test_noise_views_are_repeatable_and_scaled():
    x = torch.zeros(2000, 3)
    a, b = noise_views(4, 0.5, seed=3), noise_views(4, 0.5, seed=3)
    assert torch.equal(a[0](x), x)
    assert torch.equal(a[2](x), b[2](x)) and not torch.equal(a[1](x), a[2](x))
    assert a[1](x).std().item() == pytest.approx(0.5, rel=0.05)


def test_augmentation_count_threshold_from_hand_worked_vectors():
    # fraction correct: members 1, 3/4, 3/4; non-members 1/4, 1/2, 1
    v = np.array(
        [[1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 1, 1], [1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]], float
    )
    member = [1, 1, 1, 0, 0, 0]
    a = AugmentationAttack(combine="count")
    a.name = "label_aug"
    s = _sig(np.zeros((6, 2)), np.zeros(6, int), member, {a.key: v})
    a.fit([s])
    assert a.score(s)["label_aug"].tolist() == [1, 0.75, 0.75, 0.25, 0.5, 1]
    # best balanced accuracy on these: threshold 0.75 -> TPR 1, TNR 2/3 (5/6)
    assert a.predict(s)["label_aug"].tolist() == [True, True, True, False, False, True]


def test_augmentation_logistic_separates_a_learnable_pattern():
    rng = np.random.default_rng(0)
    member = rng.random(400) < 0.5
    # members stay correct on view 2, non-members do not; the other views are noise
    v = rng.integers(0, 2, (400, 5)).astype(float)
    v[:, 2] = member
    a = AugmentationAttack(combine="logistic")
    a.name = "label_aug"
    s = _sig(np.zeros((400, 2)), np.zeros(400, int), member, {a.key: v})
    a.fit([s])
    assert roc_auc_score(member, a.score(s)["label_aug"]) == 1.0
    assert (a.predict(s)["label_aug"] == member).all()


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"shift": -1}, "shift"),
        ({"noise_sigma": 0}, "noise_sigma"),
        ({"noise_samples": 0}, "noise_samples"),
        ({"combine": "nn"}, "combine"),
    ],
)
def test_bad_settings_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        AugmentationAttack(**kwargs)
    assert err.value.key == key


class _Linear(nn.Module):
    def forward(self, x):
        return x  # the input is its own logits


def test_label_correctness_reads_labels_after_a_label_keeping_postprocess():
    x = torch.tensor([[3.0, 0.0], [0.2, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 0])
    views = [lambda t: t, lambda t: t - torch.tensor([0.5, 0.0])]
    # a test-time change that rescales confidences but keeps the argmax (as MemGuard, HAMP)
    post = lambda z: torch.log_softmax(0.01 * z, 1)  # noqa: E731
    s = compute_signals(
        _Linear(),
        x,
        y,
        np.array([1, 1, 0], bool),
        preprocess=Preprocess("tabular"),
        device=torch.device("cpu"),
        postprocess=post,
        views={"k": views},
    )
    assert s.extra["k"].tolist() == [[1, 1], [1, 0], [0, 0]]


def test_label_only_attacks_run_against_memguard(cfg_factory, tmp_path):
    cfg = cfg_factory(
        [
            "attack=[label_gap,label_aug,loss]",
            "defense=memguard",
            "defense.steps=20",
            "defense.surrogate_epochs=5",
            "dataset.n_samples=800",
            "trainer.epochs=4",
            "attack.label_aug.noise_samples=4",
        ]
    )
    validate(cfg)
    res = pipeline.run(cfg, tmp_path / "run")
    for name in ("label_gap", "label_aug"):
        m = res["attacks"][name]
        assert m["auc"] is not None and 0.0 <= m["auc"] <= 1.0
    # MemGuard keeps every label, so the gap attack sees the undefended model's correctness
    gap = res["attacks"]["label_gap"]["acc"]
    t = res["target"]
    assert gap == pytest.approx(0.5 + (t["train_acc"] - t["test_acc"]) / 2, abs=1e-9)
