"""Per-sample gradient norms of the parameters of Linear, Conv2d and BatchNorm layers from
exact layer identities, given each layer's recorded input a and output gradient g (the Grad-w
closed forms listed in `mia_bench.signals.gradnorms`), and the row norms every path shares."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

# Upper bound on the elements of one chunk of materialised per-sample gradients (256 MiB fp32).
MAX_ELEMENTS = 1 << 26


def row_norm(t: Tensor, ord: int) -> Tensor:
    """Row-wise l1 or l2 norm of a (B, ...) tensor. Written as sums because torch's sum
    reduces in cascades, while `torch.linalg.vector_norm` loses accuracy on long fp32 rows on
    the CPU (relative error 4e-5 on 2.4M elements, the size of one ResNet-18 layer)."""
    t = t.reshape(len(t), -1)
    return t.abs().sum(1) if ord == 1 else t.square().sum(1).sqrt()


def closed_form_kind(m: nn.Module) -> str | None:
    """Which closed form applies to module m's own parameters, if any."""
    if type(m) is nn.Linear:
        return "linear"
    if type(m) is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str):
        return "conv2d"
    if isinstance(m, _BatchNorm):
        return "batchnorm"
    return None


class Recorder:
    """Forward hooks that keep each closed-form layer's input and output.

    The hook returns a clone of the output, so a later in-place op (ReLU(inplace=True)) changes
    the clone and the recorded tensor stays the one whose gradient we want.
    """

    def __init__(self, modules: list[nn.Module]) -> None:
        self.calls: dict[nn.Module, list[tuple[Tensor, Tensor]]] = {m: [] for m in modules}
        self.handles = [m.register_forward_hook(self._hook) for m in modules]

    def _hook(self, module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        self.calls[module].append((args[0].detach(), output))
        return output.clone()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def closed_form_norms(m: nn.Module, a: Tensor, g: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    """(l1, l2) per sample of each of m's parameters that requires grad."""
    kind = closed_form_kind(m)
    b = len(g)
    if kind == "linear":
        if a.dim() == 2:  # outer product: the norms factorise
            w = (row_norm(a, 1) * row_norm(g, 1), row_norm(a, 2) * row_norm(g, 2))
            gb = g
        else:  # (B, ..., in): sum of outer products over the extra positions
            a3, g3 = a.reshape(b, -1, a.shape[-1]), g.reshape(b, -1, g.shape[-1])
            w = chunked_norms(
                lambda s: torch.bmm(g3[s].transpose(1, 2), a3[s]), b, m.weight.numel()
            )
            gb = g3.sum(1)
    elif kind == "conv2d":
        w = conv2d_weight_norms(m, a, g)
        gb = g.flatten(2).sum(2)
    else:  # batchnorm, eval mode: normalisation by the running statistics
        shape = (1, -1) + (1,) * (a.dim() - 2)
        dims = tuple(range(2, a.dim()))
        centred = g * (a - m.running_mean.view(shape))
        # divide the (B, C) sums rather than the whole activation map by the running std
        gw = (centred.sum(dims) if dims else centred) / torch.sqrt(m.running_var + m.eps)
        gb = g.sum(dims) if dims else g
        w = (row_norm(gw, 1), row_norm(gw, 2))
    bias = (row_norm(gb, 1), row_norm(gb, 2))
    if m.weight is not None and m.weight.requires_grad:
        yield w
    if m.bias is not None and m.bias.requires_grad:
        yield bias


def conv2d_weight_norms(m: nn.Conv2d, a: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    """(l1, l2) per sample of a Conv2d weight gradient, formed in memory-bounded chunks.

    Two exact ways to form the per-sample gradients; which is faster depends on the shape
    (measured on a 2-core CPU, 64 samples, 3x3 kernels): a convolution whose groups are the
    samples wins when the output has many positions (16x16 or more: 2-8x faster), im2col plus
    a batched matmul wins on small maps (8x8 and below: ~2x) and on 3-channel inputs.
    """
    b, gr = len(g), m.groups
    if g.shape[2] * g.shape[3] >= 256 and m.in_channels // gr >= 8:
        shape = m.weight.shape
        # convolution_backward reads only the weight's shape when it computes the weight grad
        dummy = m.weight.new_zeros(1, 1, 1, 1)

        def per_sample(s: slice) -> Tensor:
            gs, as_ = g[s], a[s]
            n = len(gs)
            out = torch.ops.aten.convolution_backward(
                gs.reshape(1, n * shape[0], *gs.shape[2:]),
                as_.reshape(1, n * m.in_channels, *as_.shape[2:]),
                dummy.expand(n * shape[0], *shape[1:]),
                None,
                m.stride,
                m.padding,
                m.dilation,
                False,
                [0, 0],
                n * gr,
                [False, True, False],
            )[1]
            return out.reshape(n, -1)

        return chunked_norms(per_sample, b, m.weight.numel())
    # im2col: the gradient of sample i (group j) is g_ij (C_out/G, L) @ cols_ij^T (L, C_in/G k k)
    cols = F.unfold(a, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)
    cols = cols.reshape(b * gr, -1, cols.shape[-1])
    go = g.reshape(b * gr, -1, cols.shape[-1])
    n1, n2 = chunked_norms(
        lambda s: torch.bmm(go[s], cols[s].transpose(1, 2)), b * gr, m.weight.numel() // gr
    )
    # combine the groups of one sample: l1 adds up, l2 adds up in squares
    return n1.view(b, gr).sum(1), n2.view(b, gr).square().sum(1).sqrt()


def chunked_norms(per_sample_grad, b: int, numel: int) -> tuple[Tensor, Tensor]:
    """(l1, l2) of per-sample gradients formed a chunk of rows at a time (bounded memory)."""
    step = max(1, MAX_ELEMENTS // max(numel, 1))
    l1, l2 = [], []
    for i in range(0, b, step):
        gs = per_sample_grad(slice(i, i + step))
        l1.append(row_norm(gs, 1))
        l2.append(row_norm(gs, 2))
    return torch.cat(l1), torch.cat(l2)
