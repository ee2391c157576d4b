"""The real-data record: RelaxLoss Table 1's layout and the three papers' privacy-utility
sweeps on Fashion-MNIST (Xiao et al. 2017) with the small CNN, sized for a CPU."""

from __future__ import annotations

from mia_bench.repro.targets.spec import ALL_ATTACKS, Sweep, Target

# Every defense at its default (conf/defense/<name>.yaml); CCL and early stopping have their
# own sweeps (two variants; checkpoint epochs that fit the short schedule).
DEFENSES = (
    "none,relaxloss,crl,label_smoothing,confidence_penalty,dropout,"
    "distillation,dp_sgd,adv_reg,memguard,dmp"
)
# The CPU size: 1,200 images per fold (6,000 of the 70,000 in RelaxLoss's five folds), the small
# CNN at half width, 12 epochs of batch 32; LiRA / RMIA with 16 reference models (each on a
# random half, 2,400 images, of the target's queries and the shadow pool).
# The non-adaptive attacker of RelaxLoss Tables 1 and 5: shadow and reference models without
# the defense, so all defenses of one seed share them.
COMMON = (
    "dataset=fashion_mnist",
    "model=small_cnn",
    "model.channels=[16,32,64]",
    "split.max_samples=6000",
    "trainer.epochs=12",
    "trainer.batch_size=32",
    "shadow.defense=none",
    ALL_ATTACKS,
    "attack.lira.num_models=16",
)

TARGETS = [
    Target(
        name="table-fashion-mnist",
        title="Fashion-MNIST, small CNN: every defense and attack in RelaxLoss Table 1's layout, "
        "and the RelaxLoss / CCL / CRL privacy-utility sweeps",
        kind="layout",
        metrics=("train_acc", "test_acc"),
        sweeps=(
            Sweep("defaults", (*COMMON, f"defense={DEFENSES}")),
            Sweep(
                "early_stopping",
                (*COMMON, "defense=early_stopping", "defense.epochs=[3,6,9]"),
                smoke=("defense.epochs=[1]",),
            ),
            Sweep("ccl", (*COMMON, "defense=ccl", "defense.variant=ccel,ccql")),
            # The short sweeps of the curves run on the first seed only.
            Sweep(
                "relaxloss_alpha",
                (*COMMON, "defense=relaxloss", "defense.alpha=0.5,2.0"),
                max_seeds=1,
            ),
            Sweep("ccl_alpha", (*COMMON, "defense=ccl", "defense.alpha=0.2,0.8"), max_seeds=1),
            Sweep("crl_lam", (*COMMON, "defense=crl", "defense.lam=0.3,3.0"), max_seeds=1),
        ),
        notes=(
            "Fashion-MNIST from the original idx files; 6,000 of the 70,000 pooled images cut "
            "into RelaxLoss's five folds of 1,200 (target train / test, shadow train / test, "
            "reference); small CNN with 16/32/64 channels, 12 epochs of the default trainer "
            "at batch 32.",
            "Non-adaptive attacker (shadow and reference models trained without the defense).",
        ),
        claims=(
            "RelaxLoss keeps (or improves) test accuracy while lowering every attack's AUC "
            "(RelaxLoss Table 1, Fig. 4).",
            "CCL achieves a better privacy-utility balance than RelaxLoss and CE (CCL abstract).",
            "CRL lowers attack accuracy at no or little test-accuracy cost (CRL Table 1).",
        ),
    )
]
