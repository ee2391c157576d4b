"""Benchmark: per-sample gradient norms (Grad-w) by a per-sample loop vs `per_sample_grad_norms`.

`python -m mia_bench.bench.gradnorms` (or `make bench`) times, side by side in one process,
1. a per-sample loop: one forward and one backward per sample w.r.t. all parameters, then the
   l1 / l2 norms of the gradient (what the definition says);
2. ours: `mia_bench.signals.compute.per_sample_grad_norms(model, x, y, "params")`;
3. for the CNN, `torch.func.vmap` over every parameter (the generic alternative for convolutions),
on the Purchase100 MLP (600-1024-512-256-128-100, tanh; 2,000 samples) and the small CNN
(default channels; 512 images 3x32x32). Each timing is the median of `--repeats` runs; the
methods are interleaved so that a busy machine slows them alike. Ratios are loop / ours.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mia_bench.models.cnn import SmallCNN
from mia_bench.models.mlp import MLP
from mia_bench.signals.gradnorms import per_sample_grad_norms, vmap_param_norms


def loop_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The baseline: a Python loop over samples, one backward each."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    l1, l2 = torch.zeros(len(x)), torch.zeros(len(x))
    for i in range(len(x)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params)
        flat = torch.cat([g.flatten() for g in grads])
        # sums, not Tensor.norm: torch's fp32 norm kernel loses ~1e-5 over a million entries
        l1[i], l2[i] = flat.abs().sum(), flat.square().sum().sqrt()
    return {"l1": l1, "l2": l2}


def vmap_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    l1, sq = vmap_param_norms(model, x, y, [p for p in model.parameters() if p.requires_grad])
    return {"l1": l1, "l2": sq.sqrt()}


def ours(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    return per_sample_grad_norms(model, x, y, "params")


def cases() -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor, bool]]:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    mlp = MLP((600,), 100, hidden=(1024, 512, 256, 128), activation="tanh")
    x_mlp = (torch.rand(2000, 600, generator=g) < 0.3).float()  # Purchase features are binary
    y_mlp = torch.randint(0, 100, (2000,), generator=g)
    cnn = SmallCNN((3, 32, 32), 10)
    x_cnn = torch.randn(512, 3, 32, 32, generator=g)
    y_cnn = torch.randint(0, 10, (512,), generator=g)
    return [
        ("Purchase MLP 600-1024-512-256-128-100, 2000 samples", mlp, x_mlp, y_mlp, False),
        ("SmallCNN (32, 64, 128), 512 images 3x32x32", cnn, x_cnn, y_cnn, True),
    ]


def _timed(
    fn: Callable[..., dict[str, torch.Tensor]], *args
) -> tuple[float, dict[str, torch.Tensor]]:
    t0 = time.perf_counter()
    with torch.enable_grad():
        out = fn(*args)
    return time.perf_counter() - t0, out


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per method (median reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"per-sample gradient norms w.r.t. all parameters | torch {torch.__version__} | "
        f"{cpu_name()} | {torch.get_num_threads()} threads | median of {args.repeats}"
    )
    print()
    print("| model | loop (s) | ours (s) | loop / ours | vmap (s) | max rel. diff |")
    print("|---|---|---|---|---|---|")
    for name, model, x, y, with_vmap in cases():
        times: dict[str, list[float]] = {"loop": [], "ours": [], "vmap": []}
        results = {}
        methods = {"loop": loop_norms, "ours": ours, **({"vmap": vmap_norms} if with_vmap else {})}
        for _ in range(args.repeats):
            for key, fn in methods.items():
                sec, results[key] = _timed(fn, model, x, y)
                times[key].append(sec)
        med = {k: statistics.median(v) for k, v in times.items() if v}
        diff = max(
            float(((results["ours"][k] - results["loop"][k]).abs() / results["loop"][k]).max())
            for k in ("l1", "l2")
        )
        vmap = f"{med['vmap']:.2f}" if "vmap" in med else "-"
        print(
            f"| {name} | {med['loop']:.2f} | {med['ours']:.3f} | {med['loop'] / med['ours']:.1f}x | "
            f"{vmap} | {diff:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
