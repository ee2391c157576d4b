"""DP-SGD (Abadi et al. 2016) through Opacus, the RelaxLoss baseline (App. B.5): each step clips
every per-sample gradient to L2 norm <= `max_grad_norm` (C), sums them, adds Gaussian noise of
standard deviation `noise_multiplier` * C and divides by the expected batch size; the trainer's
SGD (momentum, weight decay, learning-rate schedule) then steps with that gradient.

- Architecture: BatchNorm mixes samples, so per-sample gradients do not exist with it; Opacus's
  `ModuleValidator.fix` replaces each BatchNorm by GroupNorm (recorded in `describe()` and so in
  results.json under `defense.replaced_modules`).
- Sampling: `poisson_sampling: true` draws each batch by including every sample independently
  with probability q = 1 / ceil(n / batch_size) (what Opacus's accountant assumes);
  `false` keeps the trainer's shuffled batches (common practice, but then the reported epsilon
  is the Poisson analysis applied to shuffling, an approximation).
- Privacy: epsilon at `delta` from Opacus's accountant (`rdp` by default) for the steps taken,
  recorded in results.json (`defense.epsilon`); the step count and q are buffers of the
  defense, so a model loaded from the cache reports the same epsilon.
- Determinism: the noise comes from a generator seeded with the model's seed, and Poisson
  batches from the trainer's seeded generator, so a CPU run repeats exactly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from mia_bench import checks
from mia_bench.defenses.base import TrainingParts
from mia_bench.defenses.none import NoDefense
from mia_bench.errors import ConfigError


def poisson_batches(sample_rate: float, steps: int):
    """Sampler for the trainer: `steps` batches per epoch, each sample in each batch
    independently with probability `sample_rate`. An empty batch is skipped (its step would be
    pure noise); that happens with probability (1 - q)^n, e.g. e^-64 at 64 samples a batch."""

    def sample(n: int, gen: torch.Generator) -> Iterable[torch.Tensor]:
        out = []
        for _ in range(steps):
            idx = (torch.rand(n, generator=gen) < sample_rate).nonzero().squeeze(1)
            if len(idx):
                out.append(idx)
        return out

    return sample


def make_private_compatible(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """(model Opacus can compute per-sample gradients of, what was replaced)."""
    from opacus.validators import ModuleValidator

    # Opacus's backward hooks hand each layer's output to the next as a view; an in-place
    # activation on it (every paper image model's ReLU(inplace=True)) is refused by autograd.
    for m in model.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    if not ModuleValidator.validate(model, strict=False):
        return model, []
    before = {name: type(m).__name__ for name, m in model.named_modules()}
    fixed = ModuleValidator.fix(model)
    replaced = [
        f"{name}: {before[name]} -> {m}"
        for name, m in fixed.named_modules()
        if name in before and before[name] != type(m).__name__
    ]
    left = ModuleValidator.validate(fixed, strict=False)
    if left:
        raise ConfigError("model", f"DP-SGD cannot train this model: {left[0]}")
    return fixed, replaced


class DPSGD(NoDefense):
    resumable = False  # the privacy accountant and Opacus optimiser state are not in state_dict()
    name = "dp_sgd"

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        noise_multiplier: float = 1.0,
        max_grad_norm: float = 1.0,
        delta: float = 1e-5,
        poisson_sampling: bool = True,
        accountant: str = "rdp",
    ) -> None:
        super().__init__(num_classes, feature_dim)
        self.noise_multiplier = checks.number("defense.noise_multiplier", noise_multiplier, lo=0.0)
        self.max_grad_norm = checks.number(
            "defense.max_grad_norm", max_grad_norm, lo=0.0, lo_open=True
        )
        self.delta = checks.number(
            "defense.delta", delta, lo=0.0, hi=1.0, lo_open=True, hi_open=True
        )
        self.poisson_sampling = checks.flag("defense.poisson_sampling", poisson_sampling)
        self.accountant = checks.choice("defense.accountant", accountant, ("rdp", "prv", "gdp"))
        self.replaced_modules: list[str] = []
        # Saved with the model, so a cached model reports its epsilon.
        self.register_buffer("steps", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sample_rate", torch.zeros((), dtype=torch.float64))
        # Opacus's wrapper while training; in a list so that it is not a registered submodule
        # (the model is saved on its own).
        self._gsm: list[nn.Module] = []

    def wrap_model(self, model: nn.Module) -> nn.Module:
        model, self.replaced_modules = make_private_compatible(model)
        return model

    def setup(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, train_data
    ) -> TrainingParts:
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        # Opacus's per-sample hooks make torch warn on every backward that the input needs no
        # gradient; that is expected here (inputs are data).
        warnings.filterwarnings(
            "ignore", message="Full backward hook is firing", category=UserWarning
        )
        ctx = self.attached_context("its batch size and seed")
        n = len(train_data[1])
        steps_per_epoch = math.ceil(n / ctx.batch_size)
        q = 1.0 / steps_per_epoch  # Opacus's DPDataLoader convention
        self.sample_rate.fill_(q)
        self.steps.zero_()
        gsm = GradSampleModule(model, loss_reduction="mean")
        self._gsm = [gsm]
        device = next(model.parameters()).device
        noise_gen = torch.Generator(device=device).manual_seed(ctx.seed)
        dp_opt = DPOptimizer(
            optimizer,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            expected_batch_size=max(1, int(n * q)),
            loss_reduction="mean",
            generator=noise_gen,
        )
        dp_opt.attach_step_hook(lambda _opt: self.steps.add_(1))
        batches = poisson_batches(q, steps_per_epoch) if self.poisson_sampling else None
        return TrainingParts(model=gsm, optimizer=dp_opt, batches=batches)

    def end_training(self) -> None:
        for gsm in self._gsm:
            gsm._close()  # removes Opacus's hooks and per-sample attributes
        self._gsm = []

    def epsilon(self, delta: float | None = None) -> float | None:
        """Epsilon at `delta` (the defense's own by default) for the steps taken; None without
        noise (no finite guarantee)."""
        from opacus.accountants import create_accountant

        steps = int(self.steps.item())
        if steps == 0:
            return 0.0
        if self.noise_multiplier == 0:
            return None
        acc = create_accountant(self.accountant)
        acc.history = [(self.noise_multiplier, float(self.sample_rate.item()), steps)]
        return float(acc.get_epsilon(delta=self.delta if delta is None else delta))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.max_grad_norm,
            "delta": self.delta,
            "epsilon": self.epsilon(),
            "accountant": self.accountant,
            "steps": int(self.steps.item()),
            "sample_rate": float(self.sample_rate.item()),
            "poisson_sampling": self.poisson_sampling,
            "replaced_modules": self.replaced_modules,
        }
