"""A paper target: the Hydra multiruns it runs and how its comparison is presented."""

from __future__ import annotations

from dataclasses import dataclass, field

# RelaxLoss Table 5 / Fig. 4 attacks (no confidence attack there); grad_x and grad_w each give
# an l1 and an l2 result.
RELAXLOSS_ATTACKS = "attack=[loss,entropy,m_entropy,nn,grad_x,grad_w]"
# CRL Table 1: NN, Entropy, M-Entropy, Grad-x l2 (grad_x gives l1 too).
CRL_ATTACKS = "attack=[nn,entropy,m_entropy,grad_x]"
CCL_ATTACKS = "attack=[loss,confidence,entropy,m_entropy,nn]"
ALL_ATTACKS = "attack=[loss,confidence,entropy,m_entropy,nn,grad_x,grad_w,lira,rmia]"
# LiRA / RMIA reference models of the embedded table (shared by every defense: the attacker is
# non-adaptive); 8 keeps its CPU time to minutes.
EMBEDDED_LIRA = "attack.lira.num_models=8"

RELAXLOSS_TABLE_1 = ",".join(
    [
        "relaxloss_cifar10_resnet20",
        "relaxloss_cifar10_vgg11",
        "relaxloss_cifar100_resnet20",
        "relaxloss_cifar100_vgg11",
        "relaxloss_chmnist_resnet20",
        "relaxloss_texas100_mlp",
        "relaxloss_purchase100_mlp",
    ]
)
RESNET20_CIFAR = "+experiment=relaxloss_cifar10_resnet20,relaxloss_cifar100_resnet20"


@dataclass(frozen=True)
class Sweep:
    """One multirun: `overrides` as on the command line (commas sweep); `smoke` replaces or
        adds keys at smoke scale (e.g. checkpoint epochs that must fit in one epoch); `max_seeds`
    limits it to the first seeds of the target's list."""

    name: str
    overrides: tuple[str, ...]
    smoke: tuple[str, ...] = ()
    # Run only the first this many of the target's seeds (None: all), e.g. the extra points of
    # a curve next to a table whose rows get every seed.
    max_seeds: int | None = None


@dataclass(frozen=True)
class Target:
    """A table or figure: its sweeps and how `mia_bench.repro.compare` presents them.

    kind: "table" (paper numbers side by side with ours), "figure" (privacy-utility curves,
    compared in words and by the lowest AUC at no utility cost) or "layout" (our numbers in a
    paper table's layout, no paper numbers).
    paper: paper.csv path relative to the repository root (None: no numbers to compare).
    metrics: columns of the comparison, in paper.csv's names (train_acc, test_acc,
    acc_<attack>, auc_<attack>); paper cells without a value show "-".
    """

    name: str
    title: str
    kind: str
    sweeps: tuple[Sweep, ...]
    paper: str | None = None
    metrics: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    # Data the target reads from paths.data_dir (fake files at smoke scale); empty: embedded.
    needs_files: bool = True
    smoke: tuple[str, ...] = field(default=())


def attack_cols(prefix: str, attacks: list[str]) -> tuple[str, ...]:
    return tuple(f"{prefix}_{a}" for a in attacks)
