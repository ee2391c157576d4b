"""Any `torch.nn.Module` that maps a batch of inputs to logits, as a `Classifier`.

The penultimate features are the input of the model's last `nn.Linear` (the last one called
in a forward pass, found once on a probe batch), captured by a forward pre-hook; the same hook
puts `head_dropout` in front of that layer, so the dropout defense works as on the built-in
architectures. A module without an `nn.Linear` has no such features (`feature_dim` is None):
a defense that reads them (CRL) is refused before training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mia_bench.models.base import Classifier


def last_linear(
    net: nn.Module, input_shape: Sequence[int]
) -> tuple[nn.Linear | None, tuple[int, ...]]:
    """(the `nn.Linear` that a forward pass of `net` on a probe batch of 2 calls last, the
    shape of that pass's output)."""
    order: list[nn.Linear] = []
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in net.modules()
        if isinstance(m, nn.Linear)
    ]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            out = net(torch.zeros(2, *input_shape))
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{type(net).__name__} returned {type(out).__name__}, not a logits tensor")
    return (order[-1] if order else None), tuple(out.shape)


class ModuleClassifier(Classifier):
    """Wraps `net`; logits are `net(x)`, features the input of its last `nn.Linear`."""

    def __init__(self, net: nn.Module, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.net = net
        head, out_shape = last_linear(net, input_shape)
        if out_shape != (2, num_classes):
            raise ValueError(
                f"{type(net).__name__} maps a batch of 2 inputs of shape {tuple(input_shape)} to "
                f"{out_shape}, expected logits of shape (2, {num_classes})"
            )
        self.feature_dim = head.in_features if head is not None else None  # type: ignore[assignment]
        self.head_dropout = nn.Dropout(0.0)
        self._captured: list[torch.Tensor] = []
        if head is not None:
            head.register_forward_pre_hook(self._before_head)

    def _before_head(self, _module: nn.Module, args: tuple) -> tuple:
        self._captured.append(args[0])
        return (self.head_dropout(args[0]), *args[1:])

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.feature_dim is None:
            raise ValueError(f"{type(self.net).__name__} has no nn.Linear, so no features")
        self._captured.clear()
        logits = self.net(x)
        feats = self._captured[-1].flatten(1)
        self._captured.clear()
        return logits, feats

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._captured.clear()
        out = self.net(x)
        self._captured.clear()
        return out
