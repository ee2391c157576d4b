"""Per-sample gradient norms of the cross-entropy loss, without a Python loop over samples.

The white-box attacks Grad-x and Grad-w (SPEC "Attacks"; Rezaei & Liu 2021, as used in CRL
Table 1) score a query by ||d CE(f(x), y) / d x|| or ||d CE(f(x), y) / d theta||, l1 and l2.

In eval mode the samples of a batch do not interact (BatchNorm uses its running statistics,
dropout is off), so d(sum_i CE_i)/d(activations of sample i) = d CE_i / d(activations of i).
One batched forward and one backward therefore give every per-sample quantity we need:

- Grad-x: the gradient of the summed loss w.r.t. the input batch, row by row.
- Grad-w: recorded per layer (input a, output gradient g), then per-sample parameter gradients
  from exact layer identities:
  - Linear on (B, in): grad_W = g a^T is an outer product, so ||grad_W||_2 = ||g|| ||a|| and
    ||grad_W||_1 = ||g||_1 ||a||_1; grad_b = g. With extra token dimensions the outer products
    are summed, so the per-sample gradient is formed explicitly (batched matmul).
  - Conv2d: per-sample grad_W formed in memory-bounded chunks, either as g unfold(a)^T
    (im2col) or as one convolution whose groups are the samples (whichever suits the shape);
    grad_b = g summed over positions.
  - BatchNorm in eval mode: y = x_hat * w + b with x_hat from the running statistics, so
    grad_w = sum over positions of g * x_hat and grad_b = sum of g.
  Every other parameter (other layer types, modules called twice, tied weights, bare
  parameters) is handled exactly by a generic fallback: `torch.func.vmap` of the per-sample
  gradient over chunks, or, where vmap cannot trace the model, a loop over samples.

"All parameters" means every parameter with `requires_grad`; the total l2 norm is the root of
the summed squares over parameters, the l1 norm the sum of absolute values.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

WRT = ("inputs", "params")
FALLBACKS = ("auto", "vmap", "loop")
# Upper bound on the elements of one chunk of materialised per-sample gradients (256 MiB fp32).
_MAX_ELEMENTS = 1 << 26


def default_chunk_size(inputs: Tensor) -> int:
    """Samples per forward/backward pass. On a CPU, chunks whose activations stay in cache
    are faster than one large batch: measured on a 2-core CPU, the small CNN on 32x32x3
    images is fastest at 32 per chunk (1.5x faster than 64, 2.5x than 512) and the Purchase
    MLP (600 inputs) at 128 to 256; about 2^17 input values per chunk fits both. GPUs: 1024."""
    if inputs.device.type != "cpu":
        return 1024
    per_sample = max(1, inputs[0].numel()) if len(inputs) else 1
    target = min(512, max(16, (1 << 17) // per_sample))
    return 1 << (target.bit_length() - 1)  # a power of two, rounded down


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, t in was.items():
            m.train(t)


def per_sample_grad_norms(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    wrt: str,
    *,
    chunk_size: int | None = None,
    fallback: str = "auto",
) -> dict[str, Tensor]:
    """{"l1": (B,), "l2": (B,)}: norms of d CE(model(x_i), y_i) / d wrt, one per sample.

    wrt="inputs": gradient w.r.t. the model input (after any normalisation the caller applied);
    wrt="params": w.r.t. every parameter with requires_grad. The model is evaluated in eval
    mode (its previous mode is restored). Samples are processed `chunk_size` at a time
    (default: `default_chunk_size`). `fallback` picks the exact generic
    method for layers without a closed form: "vmap", "loop", or "auto" (vmap, then the loop
    if vmap fails).
    """
    if wrt not in WRT:
        raise ValueError(f"wrt: choose one of {list(WRT)}, got {wrt!r}")
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback: choose one of {list(FALLBACKS)}, got {fallback!r}")
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
    for m in model.modules():
        if isinstance(m, _BatchNorm) and m.running_mean is None:
            # without running statistics BatchNorm normalises by the batch even in eval mode,
            # so a sample's gradient depends on the rest of the batch
            raise ValueError(f"{type(m).__name__} without running statistics couples the samples")
    if chunk_size is None:
        chunk_size = default_chunk_size(inputs)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if inputs.dim() == 4:
        # channels-last images: pooling and convolutions run several times faster on CPU
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    parts: list[dict[str, Tensor]] = []
    with _eval_mode(model), torch.enable_grad():
        for i in range(0, len(inputs), chunk_size):
            x, y = inputs[i : i + chunk_size], targets[i : i + chunk_size]
            if wrt == "inputs":
                parts.append(_input_grad_norms(model, x, y))
            else:
                parts.append(_param_grad_norms(model, x, y, fallback))
    if not parts:
        empty = torch.zeros(0, device=inputs.device)
        return {"l1": empty, "l2": empty.clone()}
    return {k: torch.cat([p[k] for p in parts]) for k in ("l1", "l2")}


def _input_grad_norms(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    g = g.flatten(1).float()
    return {"l1": _vnorm(g, 1), "l2": _vnorm(g, 2)}


def _vnorm(t: Tensor, ord: int) -> Tensor:
    """Row-wise l1 or l2 norm of a (B, ...) tensor. Written as sums because torch's sum
    reduces in cascades, while `torch.linalg.vector_norm` loses accuracy on long fp32 rows on
    the CPU (relative error 4e-5 on 2.4M elements, the size of one ResNet-18 layer)."""
    t = t.reshape(len(t), -1)
    return t.abs().sum(1) if ord == 1 else t.square().sum(1).sqrt()


# -- Grad-w -------------------------------------------------------------------------------------
def _kind(m: nn.Module) -> str | None:
    """Which closed form applies to module m's own parameters, if any."""
    if type(m) is nn.Linear:
        return "linear"
    if type(m) is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str):
        return "conv2d"
    if isinstance(m, _BatchNorm):
        return "batchnorm"
    return None


class _Recorder:
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


def _param_grad_norms(model: nn.Module, x: Tensor, y: Tensor, fallback: str) -> dict[str, Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    owners: dict[int, list[nn.Module]] = {}
    for m in model.modules():
        for p in m.parameters(recurse=False):
            owners.setdefault(id(p), []).append(m)
    closed = [
        m
        for m in model.modules()
        if _kind(m) is not None
        and any(p.requires_grad for p in m.parameters(recurse=False))
        # a parameter tied to another module gets the sum of both uses: fallback
        and all(len(owners[id(p)]) == 1 for p in m.parameters(recurse=False))
    ]
    rec = _Recorder(closed)
    try:
        loss = F.cross_entropy(model(x), y, reduction="sum")
    finally:
        rec.remove()
    # a module called more than once accumulates several outer products: fallback
    used = [m for m in closed if len(rec.calls[m]) == 1]
    outputs = [rec.calls[m][0][1] for m in used]
    grads = torch.autograd.grad(loss, outputs, allow_unused=True) if outputs else ()
    l1 = torch.zeros(len(x), device=x.device, dtype=torch.float32)
    sq = torch.zeros_like(l1)
    done: set[int] = set()
    for m, g in zip(used, grads):
        a = rec.calls[m][0][0]
        g = torch.zeros_like(rec.calls[m][0][1]) if g is None else g.detach()
        for n1, n2 in _closed_form(m, a, g):
            l1 += n1.float()
            sq += n2.float().square()
        done.update(id(p) for p in m.parameters(recurse=False))
    rest = [p for p in params if id(p) not in done]
    if rest:
        n1, n2sq = _fallback_norms(model, x, y, rest, fallback)
        l1 += n1
        sq += n2sq
    return {"l1": l1.detach(), "l2": sq.sqrt().detach()}


def _closed_form(m: nn.Module, a: Tensor, g: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    """(l1, l2) per sample of each of m's parameters that requires grad."""
    kind = _kind(m)
    b = len(g)
    if kind == "linear":
        if a.dim() == 2:  # outer product: the norms factorise
            w = (_vnorm(a, 1) * _vnorm(g, 1), _vnorm(a, 2) * _vnorm(g, 2))
            gb = g
        else:  # (B, ..., in): sum of outer products over the extra positions
            a3, g3 = a.reshape(b, -1, a.shape[-1]), g.reshape(b, -1, g.shape[-1])
            w = _chunked_norms(
                lambda s: torch.bmm(g3[s].transpose(1, 2), a3[s]), b, m.weight.numel()
            )
            gb = g3.sum(1)
    elif kind == "conv2d":
        w = _conv2d_weight_norms(m, a, g)
        gb = g.flatten(2).sum(2)
    else:  # batchnorm, eval mode: normalisation by the running statistics
        shape = (1, -1) + (1,) * (a.dim() - 2)
        dims = tuple(range(2, a.dim()))
        centred = g * (a - m.running_mean.view(shape))
        # divide the (B, C) sums rather than the whole activation map by the running std
        gw = (centred.sum(dims) if dims else centred) / torch.sqrt(m.running_var + m.eps)
        gb = g.sum(dims) if dims else g
        w = (_vnorm(gw, 1), _vnorm(gw, 2))
    bias = (_vnorm(gb, 1), _vnorm(gb, 2))
    if m.weight is not None and m.weight.requires_grad:
        yield w
    if m.bias is not None and m.bias.requires_grad:
        yield bias


def _conv2d_weight_norms(m: nn.Conv2d, a: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
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

        return _chunked_norms(per_sample, b, m.weight.numel())
    # im2col: the gradient of sample i (group j) is g_ij (C_out/G, L) @ cols_ij^T (L, C_in/G k k)
    cols = F.unfold(a, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)
    cols = cols.reshape(b * gr, -1, cols.shape[-1])
    go = g.reshape(b * gr, -1, cols.shape[-1])
    n1, n2 = _chunked_norms(
        lambda s: torch.bmm(go[s], cols[s].transpose(1, 2)), b * gr, m.weight.numel() // gr
    )
    # combine the groups of one sample: l1 adds up, l2 adds up in squares
    return n1.view(b, gr).sum(1), n2.view(b, gr).square().sum(1).sqrt()


def _chunked_norms(per_sample_grad, b: int, numel: int) -> tuple[Tensor, Tensor]:
    """(l1, l2) of per-sample gradients formed a chunk of rows at a time (bounded memory)."""
    step = max(1, _MAX_ELEMENTS // max(numel, 1))
    l1, l2 = [], []
    for i in range(0, b, step):
        gs = per_sample_grad(slice(i, i + step))
        l1.append(_vnorm(gs, 1))
        l2.append(_vnorm(gs, 2))
    return torch.cat(l1), torch.cat(l2)


# -- generic exact fallback ---------------------------------------------------------------------
def _fallback_norms(
    model: nn.Module, x: Tensor, y: Tensor, params: list[Tensor], how: str
) -> tuple[Tensor, Tensor]:
    if how in ("auto", "vmap"):
        try:
            return _vmap_norms(model, x, y, params)
        except (RuntimeError, NotImplementedError) as err:
            if how == "vmap":
                raise
            warnings.warn(
                f"vmap of per-sample gradients failed ({err}); using a loop", stacklevel=3
            )
    return _loop_norms(model, x, y, params)


def _vmap_norms(
    model: nn.Module, x: Tensor, y: Tensor, params: list[Tensor]
) -> tuple[Tensor, Tensor]:
    from torch.func import functional_call, grad, vmap

    wanted = {id(p) for p in params}
    # one name per parameter: functional_call ties the other names of a shared parameter to it
    named = dict(model.named_parameters())
    free = {n: p.detach() for n, p in named.items() if id(p) in wanted}
    fixed = {n: p.detach() for n, p in named.items() if id(p) not in wanted}
    fixed.update(dict(model.named_buffers()))

    def loss_one(free_params: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        out = functional_call(model, {**fixed, **free_params}, (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    numel = sum(p.numel() for p in params)
    chunk = max(1, min(len(x), _MAX_ELEMENTS // max(numel, 1)))
    gs = vmap(grad(loss_one), in_dims=(None, 0, 0), chunk_size=chunk)(free, x, y)
    l1 = torch.zeros(len(x), device=x.device)
    sq = torch.zeros_like(l1)
    for g in gs.values():
        l1 += _vnorm(g.float(), 1)
        sq += _vnorm(g.float(), 2).square()
    return l1, sq


def _loop_norms(
    model: nn.Module, x: Tensor, y: Tensor, params: list[Tensor]
) -> tuple[Tensor, Tensor]:
    l1 = torch.zeros(len(x), device=x.device)
    sq = torch.zeros_like(l1)
    for i in range(len(x)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        for g in gs:
            if g is not None:
                l1[i] += g.abs().sum().float()
                sq[i] += g.float().square().sum()
    return l1, sq
