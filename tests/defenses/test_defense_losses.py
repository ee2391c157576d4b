"""Each baseline's training objective against values worked out by hand.

Shared example: logits z = [2, 0, 0], label 0, C = 3.
  logsumexp(z) = ln(e^2 + 2) = ln(9.389056) = 2.239545
  log p = [-0.239545, -2.239545, -2.239545],  p = [0.786986, 0.106507, 0.106507]
  CE = 0.239545
"""

import math

import pytest
import torch
from torch import nn

from mia_bench.defenses.adv_reg import AdvReg, InferenceModel
from mia_bench.defenses.confidence_penalty import ConfidencePenalty
from mia_bench.defenses.distillation import SelfDistillation
from mia_bench.defenses.dmp import DMP, select_low_entropy, soft_label_loss
from mia_bench.defenses.dropout import HeadDropout
from mia_bench.defenses.early_stopping import EarlyStopping
from mia_bench.defenses.label_smoothing import LabelSmoothing
from mia_bench.errors import ConfigError
from mia_bench.models.mlp import MLP

Z = torch.tensor([[2.0, 0.0, 0.0]])
Y = torch.tensor([0])
CE = 0.239545


def test_label_smoothing_hand_value_and_relaxloss_eq14():
    # eps = 0.3: target t = 0.7 * [1,0,0] + 0.1 = [0.8, 0.1, 0.1]
    # loss = 0.8 * 0.239545 + 0.2 * 2.239545 = 0.191636 + 0.447909 = 0.639545
    d = LabelSmoothing(3, 8, epsilon=0.3)
    loss = d.loss(Z, Y, epoch=0)
    assert loss.item() == pytest.approx(0.639545, abs=1e-5)
    # RelaxLoss Eq. 14: 0.3 * KL(U || p) + 0.7 * CE, KL(U || p) = -ln 3 + mean(-log p)
    # = -1.098612 + (0.239545 + 2 * 2.239545) / 3 = 0.474266 -> 0.142280 + 0.167682 = 0.309961,
    # which is the smoothed-target loss minus the constant 0.3 * ln 3 = 0.329584.
    assert loss.item() - 0.3 * math.log(3) == pytest.approx(0.309961, abs=1e-5)
    assert LabelSmoothing(3, 8, epsilon=0.0).loss(Z, Y, epoch=0).item() == pytest.approx(
        CE, abs=1e-5
    )


def test_confidence_penalty_hand_value():
    # H(p) = 0.786986 * 0.239545 + 2 * 0.106507 * 2.239545 = 0.188519 + 0.477053 = 0.665573
    # a = 0.5: CE - 0.5 H = 0.239545 - 0.332786 = -0.093241
    loss = ConfidencePenalty(3, 8, a=0.5).loss(Z, Y, epoch=0)
    assert loss.item() == pytest.approx(-0.093241, abs=1e-5)


def test_distillation_hand_value_and_kl_direction():
    # Teacher logits [0, 0, 0] -> p_t = U; T = 1, alpha = 0.5.
    # KL(p_t || p_s) = sum 1/3 ln((1/3) / p_s) = 0.474266   (implemented: Hinton's direction)
    # KL(p_s || p_t) = ln 3 - H(p_s) = 1.098612 - 0.665573 = 0.433039   (the other one)
    # loss = 0.5 * 1 * 0.474266 + 0.5 * 0.239545 = 0.356906
    d = SelfDistillation(3, 8, temperature=1.0, alpha=0.5)
    loss = d.loss(Z, Y, epoch=0, teacher_logits=torch.zeros(1, 3))
    assert loss.item() == pytest.approx(0.356906, abs=1e-5)
    assert loss.item() != pytest.approx(0.5 * 0.433039 + 0.5 * CE, abs=1e-3)


def test_distillation_temperature_scaling():
    # T = 2, student [2, 0, 0] -> z/T = [1, 0, 0], p_s^T = [0.576117, 0.211942, 0.211942];
    # teacher [0, 2, 0] -> p_t^T = [0.211942, 0.576117, 0.211942]. Log-ratios are -1, +1, 0, so
    # KL(p_t || p_s) = -0.211942 + 0.576117 = 0.364175; alpha = 1: loss = T^2 * KL = 1.456700.
    d = SelfDistillation(3, 8, temperature=2.0, alpha=1.0)
    loss = d.loss(Z, Y, epoch=0, teacher_logits=torch.tensor([[0.0, 2.0, 0.0]]))
    assert loss.item() == pytest.approx(1.456700, abs=1e-5)


def test_distillation_runs_the_teacher_on_the_batch_inputs():
    teacher = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        teacher.weight.zero_()  # uniform teacher, as in the hand-worked case
    d = SelfDistillation(3, 8, temperature=1.0, alpha=0.5)
    d._teacher = [teacher]
    loss = d.loss(Z, Y, epoch=0, inputs=torch.randn(1, 3))
    assert loss.item() == pytest.approx(0.356906, abs=1e-5)


def test_dmp_soft_label_loss_hand_values():
    # soft = [0.5, 0.5, 0], student [0, 0, 0], T = 1: KL = 2 * 0.5 ln(0.5 * 3) = ln 1.5 = 0.405465
    soft = torch.tensor([[0.5, 0.5, 0.0]])
    assert soft_label_loss(torch.zeros(1, 3), soft, 1.0).item() == pytest.approx(0.405465, abs=1e-5)
    # T = 2, student [2, 0, 0]: p_s^T = [0.576117, 0.211942, 0.211942];
    # KL = 0.5 ln(0.5 / 0.576117) + 0.5 ln(0.5 / 0.211942) = -0.070851 + 0.429149 = 0.358298;
    # times T^2 = 1.433190
    assert soft_label_loss(Z, soft, 2.0).item() == pytest.approx(1.433190, abs=1e-5)


def test_dmp_selects_lowest_entropy_rows():
    logits = torch.tensor([[5.0, 0, 0], [0, 0, 0], [2.0, 0, 0], [5.0, 0, 0]])
    # entropies: rows 0 and 3 lowest (equal), then row 2, row 1 is uniform (ln 3)
    assert select_low_entropy(logits, 0.5).tolist() == [0, 3]
    assert select_low_entropy(logits, 0.75).tolist() == [0, 2, 3]
    assert select_low_entropy(logits, 0.01).tolist() == [0]
    with pytest.raises(ConfigError, match="defense.select_fraction"):
        DMP(3, 8, select_fraction=0.0)


def test_adv_reg_inference_input_and_model_terms():
    # logits [0, ln 3, 0] -> p = [0.2, 0.6, 0.2]; sorted [0.6, 0.2, 0.2]; label 0 -> [1, 0, 0]
    probs, onehot = InferenceModel.features(
        torch.tensor([[0.0, math.log(3), 0.0]]), torch.tensor([0])
    )
    assert probs[0].tolist() == pytest.approx([0.6, 0.2, 0.2], abs=1e-6)
    assert onehot.tolist() == [[1.0, 0.0, 0.0]]

    class Fixed(nn.Module):  # h = sigmoid([0, ln 3]) = [0.5, 0.75]
        def forward(self, logits, targets):
            return torch.tensor([0.0, math.log(3)])

    logits, y = torch.zeros(2, 3), torch.tensor([0, 1])  # CE = ln 3 = 1.098612 each
    d = AdvReg(3, 8, lam=2.0, model_term="log")
    d.inference = Fixed()
    # paper: CE + lam * mean log h = 1.098612 + 2 * (ln 0.5 + ln 0.75) / 2 = 1.098612 - 0.980829
    assert d.loss(logits, y, epoch=0).item() == pytest.approx(0.117783, abs=1e-5)
    d.model_term = "mean"
    # public code: CE + lam * (mean h - 0.5) = 1.098612 + 2 * 0.125 = 1.348612
    assert d.loss(logits, y, epoch=0).item() == pytest.approx(1.348612, abs=1e-5)
    d.warmup_epochs = 1
    assert d.loss(logits, y, epoch=0).item() == pytest.approx(1.098612, abs=1e-5)


def test_adv_reg_penalty_reaches_the_model_outputs():
    d = AdvReg(3, 8, lam=1.0)
    logits = torch.randn(4, 3, requires_grad=True)
    d.model_penalty(logits, torch.tensor([0, 1, 2, 0])).backward()
    assert logits.grad.abs().sum() > 0


def test_adv_reg_attack_steps_learn_membership():
    """Members get confident outputs, reference samples flat ones: after some steps the inference
    model tells them apart (the steps ascend the gain G)."""
    torch.manual_seed(0)
    x_mem, x_ref = torch.ones(64, 1), -torch.ones(64, 1)
    y = torch.zeros(64, dtype=torch.long)

    class Model(nn.Module):
        def forward(self, x):  # x = +1 -> logits [6, 0, 0]; x = -1 -> [0, 0, 0]
            return torch.cat([3 * (x + 1), torch.zeros(len(x), 2)], dim=1)

    d = AdvReg(3, 8, lam=1.0, k=50, attack_lr=1e-2, hidden=[32, 16])
    d._model, d._train, d._ref = [Model()], (x_mem, y), (x_ref, y)
    d._preprocess = lambda x, **kw: x
    d._gen = torch.Generator().manual_seed(0)
    d._opt = torch.optim.Adam(d.inference.parameters(), lr=1e-2)
    first = d.inference(Model()(torch.cat([x_mem[:1], x_ref[:1]])), y[:2]).detach()
    d.attack_steps(32)
    last = d.inference(Model()(torch.cat([x_mem[:1], x_ref[:1]])), y[:2]).detach()
    assert (last[0] - last[1]) > (first[0] - first[1]) + 1.0


def test_dropout_sets_the_head_rate():
    model = MLP((4,), 3, hidden=(8,))
    d = HeadDropout(3, 8, rate=0.7)
    model = d.wrap_model(model)
    assert model.head_dropout.p == 0.7
    x = torch.randn(2000, 4)
    model.train()
    feats = model.head_dropout(model.features(x))
    assert (feats == 0).float().mean().item() == pytest.approx(0.7, abs=0.03)
    model.eval()
    assert torch.equal(model(x), model(x))
    assert d.loss(Z, Y, epoch=0).item() == pytest.approx(CE, abs=1e-5)


@pytest.mark.parametrize(
    "cls,kwargs,key",
    [
        (LabelSmoothing, {"epsilon": 1.0}, "defense.epsilon"),
        (ConfidencePenalty, {"a": -1}, "defense.a"),
        (HeadDropout, {"rate": 1.0}, "defense.rate"),
        (EarlyStopping, {"epochs": [0, 5]}, "defense.epochs"),
        (EarlyStopping, {"epochs": []}, "defense.epochs"),
        (SelfDistillation, {"temperature": 0}, "defense.temperature"),
        (AdvReg, {"model_term": "sq"}, "defense.model_term"),
        (AdvReg, {"k": 0}, "defense.k"),
    ],
)
def test_bad_parameters_name_the_key(cls, kwargs, key):
    with pytest.raises(ConfigError) as err:
        cls(3, 8, **kwargs)
    assert err.value.key == key
