"""The logits the attacker sees: batched like one pass, after the defense's test-time change."""

from __future__ import annotations

import torch

from mia_bench.data.transforms import Preprocess
from mia_bench.signals.logits import predict_logits

PRE = Preprocess("tabular", None, None)


def test_batches_and_postprocess_match_one_pass_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 3))
    model.train()  # eval mode is the function's job: dropout must be off
    x = torch.randn(11, 5)
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    got = predict_logits(model, x, preprocess=PRE, device=torch.device("cpu"), batch_size=4)
    torch.testing.assert_close(got, expected)
    assert not model.training

    def flip(z: torch.Tensor) -> torch.Tensor:  # a test-time defense: reversed class order
        return z.flip(1)

    changed = predict_logits(
        model, x, preprocess=PRE, device=torch.device("cpu"), postprocess=flip, batch_size=4
    )
    torch.testing.assert_close(changed, expected.flip(1))
    assert changed.dtype == torch.float32 and changed.device.type == "cpu"
    empty = predict_logits(model, x[:0], preprocess=PRE, device=torch.device("cpu"))
    assert empty.numel() == 0
