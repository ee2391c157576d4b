"""MemGuard: labels never change, the surrogate's scores move to 0.5, the budget holds."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import DefenseContext
from mia_bench.defenses.memguard import MemGuard, phase_two, row_uniforms

pytestmark = pytest.mark.usefixtures("one_thread")


class Lookup(nn.Module):
    """A 'model' whose input is its logits: members are made confident, reference samples not."""

    def forward(self, x):
        return x


def _fitted(budget, steps=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (300,), generator=gen)
    members = torch.randn(300, 5, generator=gen) + 6 * F.one_hot(labels, 5)
    reference = torch.randn(300, 5, generator=gen) + 2 * F.one_hot(labels, 5)
    ctx = DefenseContext.from_tensors(
        role="target",
        seed=seed,
        device=torch.device("cpu"),
        preprocess=Preprocess("tabular"),
        train=(members, labels),
        reference=(reference, labels),
        teacher=lambda cfg: None,
    )
    d = MemGuard(5, 5, budget=budget, steps=steps, surrogate_epochs=30)
    d.after_training(Lookup(), ctx)
    queries = torch.cat([members[:100], reference[:100]])
    return d, queries


def test_labels_never_change_and_scores_move_to_half():
    d, z = _fitted(budget=2.0)
    out = d.postprocess(z)
    assert torch.equal(out.argmax(1), z.argmax(1))
    assert torch.allclose(out.exp().sum(1), torch.ones(len(z)), atol=1e-5)  # probability vectors
    g = d.surrogate
    with torch.no_grad():
        before, after = (torch.sigmoid(g(z)) - 0.5).abs(), (torch.sigmoid(g(out)) - 0.5).abs()
    # the surrogate separates members before (else the test would prove nothing)
    assert before.mean() > 0.2
    assert (after <= before + 1e-6).all()
    assert after.mean() < 0.25 * before.mean()


def test_budget_zero_changes_nothing_but_normalisation():
    d, z = _fitted(budget=0.0)
    assert torch.allclose(d.postprocess(z), F.log_softmax(z, dim=1))


def test_answers_are_repeatable_per_query():
    d, z = _fitted(budget=0.3)
    whole = d.postprocess(z)
    part = d.postprocess(z[50:120])
    assert torch.allclose(whole[50:120], part, atol=1e-5)


def test_phase_two_keeps_expected_distortion_within_budget():
    # three rows, protected vectors at L1 distortion 0.2, 0.8, 0: with budget 0.4 row 0 is always
    # protected (p = 1), row 1 with p = 0.5, row 2 is unchanged either way.
    z0 = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.7, 0.3]]))
    prot = torch.log(torch.tensor([[0.6, 0.4], [0.5, 0.5], [0.7, 0.3]]))
    out = phase_two(z0, prot, 0.4, torch.tensor([0.99, 0.49, 0.3]))
    assert torch.allclose(out, prot)
    out = phase_two(z0, prot, 0.4, torch.tensor([0.99, 0.51, 0.3]))
    assert torch.allclose(out[1], z0[1]) and torch.allclose(out[0], prot[0])
    # over many rows, the mean distortion stays at the budget: E = p * d = min(d, budget)
    n = 4000
    z0 = torch.log(torch.tensor([[0.9, 0.1]])).repeat(n, 1)
    prot = torch.log(torch.tensor([[0.5, 0.5]])).repeat(n, 1)  # d = 0.8
    out = phase_two(z0, prot, 0.2, row_uniforms(torch.randn(n, 2), seed=0))
    mean_d = (out.exp() - z0.exp()).abs().sum(1).mean().item()
    assert mean_d == pytest.approx(0.2, abs=0.03)
