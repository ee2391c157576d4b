"""k models of one architecture trained side by side in one process ("stacked").

A small model leaves a GPU mostly idle, and LiRA-style attacks want tens of shadow / reference
models. Stacking runs k models as one: their parameters and buffers are stacked along a new
leading dimension (`torch.func.stack_module_state`) and one `torch.func.vmap` of
`functional_call` computes all k forward passes (convolutions become one grouped convolution).

Each model keeps everything it would have alone: its own data, its own batch order (a CPU
generator seeded as `train_model` seeds it), its own augmentation generator, its own defense
instance, and the same SGD update (SGD is elementwise, so one optimiser over the stacked tensors
is k independent optimisers). The summed loss has, for each model's parameters, exactly that
model's gradient. BatchNorm: the running statistics are stacked buffers too, which vmap's batch
rule updates in place per model, so eval-mode models are correct afterwards.

Defenses: the loss of every model is computed by its own defense instance on its slice of the
stacked logits/features, so any loss of (logits, targets, epoch, features) works, including
data-dependent branches and defenses with their own parameters and optimisers (CRL's class
centers, stepped by `extra_optimizers`). A defense for which `trains_alone` gives a reason
(any other training hook, e.g. DP-SGD's `setup` with its privacy engine, which needs the real
model and optimiser; snapshots; batch inputs) is trained one model after another with
`train_model`, as are models whose training sets differ in size.
`trainer.compile` is ignored here. Dropout draws different masks than in sequential training.
"""

from __future__ import annotations

import copy
import logging
import time

import torch
from omegaconf import DictConfig
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mia_bench.data.transforms import Preprocess
from mia_bench.defenses.base import Defense
from mia_bench.train.core import (
    FastPath,
    TrainLog,
    end_epoch,
    epoch_bar,
    make_optimizer,
    make_scheduler,
    optimiser_step,
    seeded_generators,
)
from mia_bench.train.loop import train_model

log = logging.getLogger(__name__)

# Defense methods the stacked loop honours; overriding any other Defense method means the
# defense hooks into training in a way only `train_model` knows.
STACKABLE_HOOKS = frozenset(
    {"loss", "describe", "postprocess", "wrap_model", "extra_optimizers", "forward", "extra_repr"}
)


def trains_alone(defense: Defense) -> str | None:
    """Why models of this defense must be trained one by one by `train_model`, never stacked
    (None when they can be): its snapshots (early stopping), batch inputs (distillation) and
    every training hook but the loss (`setup`: teachers, Opacus; `after_training`: MemGuard)
    live only in that loop. The one test of it, used by the experiment before it groups
    models and by `train_stacked` itself."""
    if defense.snapshot_epochs:
        return f"defense {defense.name} keeps weight snapshots"
    if defense.needs_inputs:
        return f"defense {defense.name} reads the batch inputs"
    for name, attr in vars(Defense).items():
        if callable(attr) and not name.startswith("__") and name not in STACKABLE_HOOKS:
            if getattr(type(defense), name) is not attr:
                return f"defense {defense.name} overrides the training hook {name}"
    return None


def unstackable_reason(
    models: list[nn.Module],
    defenses: list[Defense],
    datasets: list[tuple[torch.Tensor, torch.Tensor]],
) -> str | None:
    """Why these models cannot be trained stacked, or None when they can."""
    if len(models) < 2:
        return "a single model"
    if len({len(y) for _, y in datasets}) > 1:
        return "training sets of different sizes"
    if (
        len({type(m) for m in models}) > 1
        or len({tuple((k, v.shape) for k, v in m.state_dict().items()) for m in models}) > 1
    ):
        return "different architectures"
    for d in defenses:
        reason = trains_alone(d)
        if reason is not None:
            return reason
    return None


class _Forward(nn.Module):
    """Calls the model's forward, or forward_with_features when the defense reads features."""

    def __init__(self, m: nn.Module, with_features: bool) -> None:
        super().__init__()
        self.m = m
        self.with_features = with_features

    def forward(self, x: torch.Tensor):
        return self.m.forward_with_features(x) if self.with_features else self.m(x)


def _input_in_fp32(module: nn.Module, args: tuple) -> tuple:
    return (args[0].float(), *args[1:])


def train_stacked(
    models: list[nn.Module],
    defenses: list[Defense],
    datasets: list[tuple[torch.Tensor, torch.Tensor]],
    cfg: DictConfig,
    *,
    seeds: list[int],
    preprocess: Preprocess,
    device: torch.device,
    desc: str = "stack",
    progress: bool = True,
) -> list[TrainLog]:
    """Train `models[i]` with `defenses[i]` on `datasets[i]` and seed `seeds[i]`, in place.

    The result equals `train_model` called once per model with the same arguments (up to
    float rounding of grouped vs single kernels); models that cannot be stacked
    (`unstackable_reason`) are trained exactly that way. Returns one TrainLog per model; the
    models (and defenses) hold the trained state, as after `train_model`.
    """
    if not (len(models) == len(defenses) == len(datasets) == len(seeds)):
        raise ValueError("train_stacked: one defense, dataset and seed per model")
    reason = unstackable_reason(models, defenses, datasets)
    if reason is not None:
        if len(models) > 1:
            log.info("%s: training %d models one by one (%s)", desc, len(models), reason)
        return [
            train_model(
                m,
                d,
                x,
                y,
                cfg,
                preprocess=preprocess,
                seed=s,
                device=device,
                desc=f"{desc}[{i}]",
                progress=progress,
            )
            for i, (m, d, (x, y), s) in enumerate(zip(models, defenses, datasets, seeds))
        ]

    t0 = time.perf_counter()
    k = len(models)
    fast = FastPath.from_cfg(cfg, device)
    for m, d in zip(models, defenses):
        m.to(device).train()
        d.to(device).train()
    with_features = defenses[0].needs_features
    if any(d.needs_features != with_features for d in defenses):
        with_features = True
    params, buffers = stack_module_state(models)
    params = {f"m.{n}": p for n, p in params.items()}
    buffers = {f"m.{n}": b for n, b in buffers.items()}
    # The skeleton only lends its structure to functional_call; 'meta' holds no storage.
    skeleton = _Forward(copy.deepcopy(models[0]).to("meta"), with_features)
    if fast.amp_dtype is not None:
        # vmap's BatchNorm rule needs input and running statistics of one dtype in the
        # backward; autocast leaves BatchNorm inputs in bf16, so normalise in fp32 (the next
        # convolution casts back to bf16).
        for mod in skeleton.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.register_forward_pre_hook(_input_in_fp32)

    def one_model(p, b, xb):
        return functional_call(skeleton, (p, b), (xb,))

    forward = vmap(one_model, randomness="different")
    opt = make_optimizer(list(params.values()), cfg, device)
    sched = make_scheduler(opt, cfg)
    optimizers = [opt, *(o for d in defenses for o in d.extra_optimizers())]
    gens, aug_gens = zip(*(seeded_generators(s, device) for s in seeds))
    xs = [x.to(device) for x, _ in datasets]
    ys = [y.to(device) for _, y in datasets]
    n, bs = len(ys[0]), int(cfg.batch_size)
    logs = [TrainLog() for _ in models]
    names = [f"{desc}[{j}]" for j in range(k)]
    bar = epoch_bar(range(cfg.epochs), f"{desc} x{k}", progress)
    for epoch in bar:
        perms = [torch.randperm(n, generator=g).to(device) for g in gens]
        total = torch.zeros(k, device=device)
        for start in range(0, n, bs):
            idx = [p[start : start + bs] for p in perms]
            xb = torch.stack(
                [preprocess(x[i], train=True, generator=g) for x, i, g in zip(xs, idx, aug_gens)]
            )
            yb = [y[i] for y, i in zip(ys, idx)]
            with fast.autocast(device):
                out = forward(params, buffers, xb)
                logits, feats = out if with_features else (out, None)
                losses = torch.stack(
                    [
                        d.loss(
                            logits[j],
                            yb[j],
                            epoch=epoch,
                            features=None if feats is None else feats[j],
                        )
                        for j, d in enumerate(defenses)
                    ]
                )
            optimiser_step(losses.sum(), optimizers)
            total += losses.detach().float() * len(yb[0])
        means = (total / n).tolist()  # one host sync per epoch
        end_epoch(sched, epoch, means, names, defenses, logs, bar)
    bar.close()
    _unstack(models, params, buffers)
    seconds = time.perf_counter() - t0
    for m, d, lg in zip(models, defenses, logs):
        m.eval()
        d.eval()
        lg.seconds = seconds
    return logs


@torch.no_grad()
def _unstack(models: list[nn.Module], params: dict, buffers: dict) -> None:
    """Copy slice j of every stacked tensor back into models[j]."""
    for j, m in enumerate(models):
        for name, t in [*m.named_parameters(), *m.named_buffers()]:
            src = params.get(f"m.{name}", buffers.get(f"m.{name}"))
            t.copy_(src[j])
