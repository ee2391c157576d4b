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

from mia_bench.signals.layer_grads import (
    MAX_ELEMENTS,
    Recorder,
    closed_form_kind,
    closed_form_norms,
    row_norm,
)

WRT = ("inputs", "params")
FALLBACKS = ("auto", "vmap", "loop")


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
    return {"l1": row_norm(g, 1), "l2": row_norm(g, 2)}


# -- Grad-w -------------------------------------------------------------------------------------
def _param_grad_norms(model: nn.Module, x: Tensor, y: Tensor, fallback: str) -> dict[str, Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    owners: dict[int, list[nn.Module]] = {}
    for m in model.modules():
        for p in m.parameters(recurse=False):
            owners.setdefault(id(p), []).append(m)
    closed = [
        m
        for m in model.modules()
        if closed_form_kind(m) is not None
        and any(p.requires_grad for p in m.parameters(recurse=False))
        # a parameter tied to another module gets the sum of both uses: fallback
        and all(len(owners[id(p)]) == 1 for p in m.parameters(recurse=False))
    ]
    rec = Recorder(closed)
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
        for n1, n2 in closed_form_norms(m, a, g):
            l1 += n1.float()
            sq += n2.float().square()
        done.update(id(p) for p in m.parameters(recurse=False))
    rest = [p for p in params if id(p) not in done]
    if rest:
        n1, n2sq = fallback_norms(model, x, y, rest, fallback)
        l1 += n1
        sq += n2sq
    return {"l1": l1.detach(), "l2": sq.sqrt().detach()}


# -- generic exact fallback ---------------------------------------------------------------------
def fallback_norms(
    model: nn.Module, x: Tensor, y: Tensor, params: list[Tensor], how: str
) -> tuple[Tensor, Tensor]:
    if how in ("auto", "vmap"):
        try:
            return vmap_param_norms(model, x, y, params)
        except (RuntimeError, NotImplementedError) as err:
            if how == "vmap":
                raise
            warnings.warn(
                f"vmap of per-sample gradients failed ({err}); using a loop", stacklevel=3
            )
    return loop_param_norms(model, x, y, params)


def vmap_param_norms(
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
    chunk = max(1, min(len(x), MAX_ELEMENTS // max(numel, 1)))
    gs = vmap(grad(loss_one), in_dims=(None, 0, 0), chunk_size=chunk)(free, x, y)
    l1 = torch.zeros(len(x), device=x.device)
    sq = torch.zeros_like(l1)
    for g in gs.values():
        l1 += row_norm(g.float(), 1)
        sq += row_norm(g.float(), 2).square()
    return l1, sq


def loop_param_norms(
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
