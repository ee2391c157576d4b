"""The papers' tables and figures as lists of Hydra multiruns (`make table-*`, `figure-*`).

Each target is one or more sweeps; a sweep is the override list of one
`python -m mia_bench -m ...` call, to which `mia_bench.reproduce` adds the seeds, the launcher
and, at smoke scale, the small-size overrides. Values separated by commas are swept (Hydra's
Cartesian product); a defense whose swept parameter differs from the others' gets a sweep of
its own. Every sweep value comes from the paper cited next to it.
"""

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
    adds keys at smoke scale (e.g. checkpoint epochs that must fit in one epoch)."""

    name: str
    overrides: tuple[str, ...]
    smoke: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """A table or figure: its sweeps and how `mia_bench.compare` presents them.

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


def _attack_cols(prefix: str, attacks: list[str]) -> tuple[str, ...]:
    return tuple(f"{prefix}_{a}" for a in attacks)


RL_RESULTS = [
    "entropy",
    "m_entropy",
    "loss",
    "nn",
    "grad_x_l1",
    "grad_x_l2",
    "grad_w_l1",
    "grad_w_l2",
]
RL_METRICS = (
    "train_acc",
    "test_acc",
    *_attack_cols("acc", RL_RESULTS),
    *_attack_cols("auc", RL_RESULTS),
)
CRL_METRICS = ("train_acc", "test_acc", "auc_nn", "auc_entropy", "auc_m_entropy", "auc_grad_x_l2")

RL_NOTES = (
    "Paper numbers: RelaxLoss (Chen et al., ICLR 2022) App. C.3 Table 4 (train / test "
    "accuracy, the alpha of each row) and Table 5 (attack accuracy, thresholds chosen on a "
    "shadow model trained without the defense); the loss-attack AUC of CIFAR-10 ResNet20 from "
    "Fig. 1. Fig. 4 prints the other AUCs as bars only, so those cells are ours alone.",
    "Attack accuracy is the balanced accuracy at the threshold chosen on the shadow model; the "
    "paper's metric attacks use per-class thresholds, as ours do.",
)


def _crl(dataset: str, models: list[str], table: str) -> Target:
    exps = ",".join(f"crl_{dataset}_{m}" for m in models)
    return Target(
        name=f"table-crl-{dataset}",
        # Smoke scale: two shadows exercise the k-shadow path at 40% of the cost of five.
        smoke=("shadow.count=2",),
        title=f"CRL (Fang & Kim, UAI 2024) Table 1{table}: {dataset}",
        kind="table",
        paper=f"experiments/table-crl-{dataset}/paper.csv",
        metrics=CRL_METRICS,
        sweeps=(
            Sweep("crl", (f"+experiment={exps}", "defense=none,relaxloss,crl", CRL_ATTACKS)),
            # Adv-Reg needs a reference set, which the CRL protocol has not: a fifth of the
            # shadow half (the target's sets are unchanged; the shadows draw from the rest).
            Sweep(
                "adv_reg",
                (
                    f"+experiment={exps}",
                    "defense=adv_reg",
                    "++split.reference_fraction=0.2",  # ++: the base config has split=relaxloss
                    CRL_ATTACKS,
                ),
            ),
        ),
        notes=(
            f"Paper numbers: CRL Table 1{table} (train / test accuracy and attack AUC, in %). "
            "Adaptive attacker: five shadow models trained like the target (Sec. 5.1).",
            "The paper gives no hyper-parameters for AdvReg, RelaxLoss or CRL in this table: "
            "the defaults of conf/defense/<name>.yaml are used (RelaxLoss alpha 1.0 in its "
            "paper form, Adv-Reg weight 1.0, CRL as chosen on the embedded data).",
            "The CRL protocol has no reference set, which Adv-Reg needs, and the paper does "
            "not say where its came from: the Adv-Reg rows set a fifth of the shadow half "
            "aside for it (split.reference_fraction=0.2), so their shadows train on 40% "
            "instead of 50% of that half.",
            "The paper reports no Grad-x AUC for DenseNet121 (too costly for its authors); ours "
            "is computed anyway.",
        ),
    )


TARGETS: dict[str, Target] = {}


def _add(t: Target) -> None:
    TARGETS[t.name] = t


_add(
    Target(
        name="table-relaxloss",
        title="RelaxLoss (Chen et al., ICLR 2022) Table 1 / Table 4 / Table 5 / Fig. 4",
        kind="table",
        paper="experiments/table-relaxloss/paper.csv",
        metrics=RL_METRICS,
        sweeps=(
            Sweep(
                "relaxloss",
                (
                    f"+experiment={RELAXLOSS_TABLE_1}",
                    "defense=none,relaxloss",
                    "shadow.defense=none",
                    RELAXLOSS_ATTACKS,
                ),
            ),
        ),
        notes=RL_NOTES,
    )
)
_add(
    Target(
        name="table-relaxloss-adaptive",
        title="RelaxLoss (Chen et al., ICLR 2022) Table 6: adaptive attacks",
        kind="table",
        paper="experiments/table-relaxloss-adaptive/paper.csv",
        metrics=RL_METRICS,
        sweeps=(
            Sweep(
                "relaxloss-adaptive",
                (
                    f"+experiment={RELAXLOSS_TABLE_1}",
                    "defense=relaxloss",
                    "shadow.defense=same",
                    RELAXLOSS_ATTACKS,
                ),
            ),
        ),
        notes=(
            "Paper numbers: RelaxLoss App. C.4 Table 6 (attack accuracy when the shadow model is "
            "trained with the defense and its alpha) and Table 4 (accuracies).",
            "The paper's adaptive NN attack reads the shadow's complete logits; ours reads them "
            "sorted (attack.nn.input=sorted_logits), as in the non-adaptive table.",
        ),
    )
)

# RelaxLoss Fig. 3 / App. B.5: each defense swept over its documented range.
_TRADEOFF = (
    Sweep("none", (RESNET20_CIFAR, "defense=none", RELAXLOSS_ATTACKS)),
    # alpha: the paper prints no range for Fig. 3; this one covers Table 4's 1.0 and 3.0.
    Sweep(
        "relaxloss",
        (RESNET20_CIFAR, "defense=relaxloss", "defense.alpha=0.5,1.0,1.5,2.0,3.0,4.0"),
    ),
    Sweep(
        "label_smoothing",
        (RESNET20_CIFAR, "defense=label_smoothing", "defense.epsilon=0.1,0.3,0.5,0.7,0.9"),
    ),
    Sweep(
        "confidence_penalty",
        (RESNET20_CIFAR, "defense=confidence_penalty", "defense.a=0.1,0.3,0.5,1.0,2.0,4.0,8.0"),
    ),
    Sweep("dropout", (RESNET20_CIFAR, "defense=dropout", "defense.rate=0.1,0.3,0.5,0.7,0.9")),
    Sweep(
        "early_stopping",
        (
            RESNET20_CIFAR,
            "defense=early_stopping",
            "defense.epochs=[25,50,75,100,125,150,175,200,225,250,275]",
        ),
        smoke=("defense.epochs=[1]",),
    ),
    Sweep(
        "distillation",
        (RESNET20_CIFAR, "defense=distillation", "defense.temperature=1,2,5,10,20,50,100"),
    ),
    # Clipping bound C and noise range per dataset as in App. C.9 (Fig. 9: C 0.5, noise
    # 0.01-0.45 on CIFAR-10; Fig. 10: C 1.0, noise 0.01-0.3 on CIFAR-100).
    Sweep(
        "dp_sgd_cifar10",
        (
            "+experiment=relaxloss_cifar10_resnet20",
            "defense=dp_sgd",
            "defense.max_grad_norm=0.5",
            "defense.noise_multiplier=0.01,0.05,0.1,0.2,0.3,0.45",
        ),
    ),
    Sweep(
        "dp_sgd_cifar100",
        (
            "+experiment=relaxloss_cifar100_resnet20",
            "defense=dp_sgd",
            "defense.max_grad_norm=1.0",
            "defense.noise_multiplier=0.01,0.05,0.1,0.2,0.3",
        ),
    ),
    Sweep("adv_reg", (RESNET20_CIFAR, "defense=adv_reg", "defense.lam=0.8,1.0,1.2,1.4,1.6,1.8")),
    # From no noise until the NN attack is at chance (App. B.5); the L1 distance between
    # probability vectors is at most 2.
    Sweep(
        "memguard",
        (RESNET20_CIFAR, "defense=memguard", "defense.budget=0,0.1,0.2,0.3,0.5,0.7,1.0,2.0"),
    ),
)
_add(
    Target(
        name="figure-relaxloss-tradeoff",
        title="RelaxLoss (Chen et al., ICLR 2022) Fig. 3: privacy-utility of every defense, "
        "CIFAR-10/100 ResNet20",
        kind="figure",
        paper="experiments/table-relaxloss/paper.csv",
        metrics=("train_acc", "test_acc"),
        sweeps=tuple(
            Sweep(s.name, (*s.overrides, "shadow.defense=none", RELAXLOSS_ATTACKS), s.smoke)
            for s in _TRADEOFF
        ),
        notes=(
            "Fig. 3 draws curves without printing numbers: the comparison is with its stated "
            "findings (App. C.9), and with Table 4's accuracies for the undefended and the "
            "Table-4-alpha RelaxLoss models.",
            "Sweep ranges: App. B.5 (label smoothing, confidence penalty, dropout, early "
            "stopping checkpoints, distillation temperature, Adv-Reg weight, MemGuard until the "
            "NN attack is at chance) and App. C.9 (DP-SGD clipping bound and noise).",
        ),
        claims=(
            "RelaxLoss improves the privacy-utility trade-off over every baseline for almost all "
            "attacks (Sec. 6.2).",
            "MemGuard and Adv-Reg are effective against the NN attack but hardly against the "
            "others (Sec. 6.2 (i)).",
            "Among regularisers, early stopping is the most effective; RelaxLoss reaches the same "
            "AUC at a better accuracy, and chance-level AUC that early stopping cannot (App. C.9).",
            "DP-SGD is the strongest baseline; RelaxLoss keeps more test accuracy at every "
            "privacy level (Sec. 6.2 (iii)).",
        ),
    )
)
for _ds, _models, _table in (
    ("cifar10", ["vgg11", "resnet18", "densenet121"], "a"),
    ("cifar100", ["googlenet", "resnet18", "densenet121"], "b"),
    ("svhn", ["vgg11", "resnet18"], "c"),
):
    _add(_crl(_ds, _models, _table))

_CCL = "+experiment=ccl_cifar10_resnet18"
_add(
    Target(
        name="figure-ccl",
        title="CCL (Liu et al., ICML 2024): CE vs CCEL vs CCQL vs RelaxLoss on CIFAR-10",
        kind="figure",
        metrics=("train_acc", "test_acc"),
        sweeps=(
            Sweep("none", (_CCL, "defense=none", CCL_ATTACKS)),
            # alpha in (0, 1] weighs cross-entropy; beta 0.05 as in the reference run.
            Sweep(
                "ccl",
                (
                    _CCL,
                    "defense=ccl",
                    "defense.variant=ccel,ccql",
                    "defense.alpha=0.1,0.3,0.5,0.7,0.9",
                    CCL_ATTACKS,
                ),
            ),
            Sweep(
                "relaxloss",
                (
                    _CCL,
                    "defense=relaxloss",
                    "defense.form=image",
                    "defense.alpha=0.5,1.0,1.5,2.0,3.0",
                    CCL_ATTACKS,
                ),
            ),
        ),
        notes=(
            "No numeric table of the CCL paper is available here (abstract and slides only), so "
            "this comparison is qualitative: its claims against our curves.",
            "The slides' CIFAR-10 figure uses ResNet-34; this benchmark has ResNet-18 of the "
            "same family. Shadow models are trained with the target's loss (adaptive attacker).",
        ),
        claims=(
            "CCL (CCEL, CCQL) achieves a better privacy-utility balance than RelaxLoss and CE "
            "(abstract; slides, Fig. 3 CIFAR-10 ResNet-34).",
            "CCL raises the variance of the training-loss distribution compared with CE, which "
            "lowers the attack advantage (abstract; slides 12-13).",
        ),
    )
)

# Every defense of the three papers, each at its default setting: RelaxLoss Table 1's layout.
EMBEDDED_DEFENSES = (
    "none,relaxloss,crl,label_smoothing,confidence_penalty,dropout,"
    "distillation,dp_sgd,adv_reg,memguard,dmp"
)
_EMBEDDED_DATA = (("synthetic", "mlp"), ("digits", "small_cnn"))
_add(
    Target(
        name="table-embedded",
        title="RelaxLoss Table 1 layout on the embedded data: every defense x MLP / small CNN",
        kind="layout",
        needs_files=False,
        metrics=("train_acc", "test_acc"),
        sweeps=tuple(
            s
            for ds, model in _EMBEDDED_DATA
            for s in (
                Sweep(
                    f"{ds}",
                    (
                        f"dataset={ds}",
                        f"model={model}",
                        f"defense={EMBEDDED_DEFENSES}",
                        "shadow.defense=none",
                        ALL_ATTACKS,
                        EMBEDDED_LIRA,
                    ),
                ),
                # Its own sweep: at smoke scale its checkpoint list must fit in one epoch.
                Sweep(
                    f"{ds}_early_stopping",
                    (
                        f"dataset={ds}",
                        f"model={model}",
                        "defense=early_stopping",
                        "shadow.defense=none",
                        ALL_ATTACKS,
                        EMBEDDED_LIRA,
                    ),
                    smoke=("defense.epochs=[1]",),
                ),
                # beta 1: the reference run's 0.05 underfits with the embedded trainer
                # (conf/defense/ccl.yaml, experiments/paper-claims-embedded/).
                Sweep(
                    f"{ds}_ccl",
                    (
                        f"dataset={ds}",
                        f"model={model}",
                        "defense=ccl",
                        "defense.variant=ccel,ccql",
                        "defense.beta=1.0",
                        "shadow.defense=none",
                        ALL_ATTACKS,
                        EMBEDDED_LIRA,
                    ),
                ),
            )
        ),
        notes=(
            "Synthetic data (make_classification, 10,000 samples) with the default MLP; "
            "scikit-learn's digits (1,797 8x8 images) with the small CNN. Default trainer "
            "(60 epochs); every defense at the default of conf/defense/<name>.yaml.",
            "Non-adaptive attacker (shadow and reference models trained without the defense), as "
            "in RelaxLoss Table 1 and Table 5.",
        ),
        claims=(
            "RelaxLoss keeps (or improves) test accuracy while lowering every attack's AUC "
            "(RelaxLoss Table 1, Fig. 4).",
        ),
    )
)
