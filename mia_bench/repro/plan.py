"""`python -m mia_bench.repro.plan TARGET...`: how much training a paper target asks for, before
running it: jobs, distinct models (the model cache trains each once), training samples x
epochs, and training FLOPs (3 x the forward FLOPs counted by torch.utils.flop_counter on one
sample, times samples x epochs).

Training dominates every target but the attacks' own cost is left out (per-sample gradient
norms, MemGuard's per-query search, DP-SGD's per-sample clipping). FLOPs are a volume, not a
time. `--rates FILE` turns the volume into hours at measured training rates instead: the
images/s of each speed setting (model x input shape x batch size), which
`python -m mia_bench.bench --parts e` measures on your GPU (`--write-settings` lists the
settings, so the benchmark need not compose every target again).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from functools import cache

from omegaconf import DictConfig, OmegaConf

# Pooled size, input shape and classes of each dataset (README "Datasets"; the loaders check
# the same numbers with dataset.verify=true).
DATASETS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "cifar10": (60000, (3, 32, 32), 10),
    "cifar100": (60000, (3, 32, 32), 100),
    "svhn": (99289, (3, 32, 32), 10),
    "chmnist": (5000, (1, 28, 28), 8),
    "purchase100": (197324, (600,), 100),
    "texas100": (67330, (6169,), 100),
    "digits": (1797, (1, 8, 8), 10),
    "fashion_mnist": (70000, (1, 28, 28), 10),
    "mnist": (70000, (1, 28, 28), 10),
}
# Defenses that train a plain-CE teacher of the same architecture per model role.
TEACHER = {"distillation", "dmp"}


@dataclass(frozen=True)
class SpeedSetting:
    """What sets the training speed of a model: architecture, input shape, classes, batch."""

    model_yaml: str  # the model config as sorted JSON
    shape: tuple[int, ...]
    classes: int
    batch_size: int

    @property
    def key(self) -> str:
        """How a measured rate is looked up (`python -m mia_bench.bench --parts e` writes these)."""
        name = json.loads(self.model_yaml).get("name", "?")
        return f"{name}|{'x'.join(map(str, self.shape))}|{self.classes}|b{self.batch_size}"


@dataclass
class Volume:
    jobs: int = 0
    models: dict[str, float] = field(default_factory=dict)  # cache identity -> training FLOPs
    sample_epochs: int = 0
    # training samples x epochs per speed setting (models of one setting train equally fast)
    by_setting: dict[SpeedSetting, int] = field(default_factory=dict)

    @property
    def flops(self) -> float:
        return sum(self.models.values())

    def hours(self, rates: dict[str, float]) -> float | None:
        """Training time at measured rates (images/s per `SpeedSetting.key`); None if one is missing."""
        if any(s.key not in rates for s in self.by_setting):
            return None
        return sum(n / rates[s.key] for s, n in self.by_setting.items()) / 3600


def dataset_shape(cfg: DictConfig) -> tuple[int, tuple[int, ...], int]:
    d = cfg.dataset
    if d.name == "synthetic":
        return int(d.n_samples), (int(d.n_features),), int(d.n_classes)
    if d.name == "chmnist":
        size = int(d.get("image_size", 28))
        return 5000, (1, size, size), 8
    return DATASETS[d.name]


@cache
def forward_flops(model_yaml: str, shape: tuple[int, ...], classes: int) -> float:
    """Forward FLOPs of one sample (multiply-add = 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mia_bench.models import build_model

    model = build_model(OmegaConf.create(json.loads(model_yaml)), shape, classes).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape))
    return float(counter.get_total_flops())


def _epochs(cfg: DictConfig, defense: DictConfig) -> int:
    epochs = int(cfg.trainer.epochs)
    if defense.name == "early_stopping":  # training stops at the last checkpoint
        epochs = min(epochs, max(int(e) for e in defense.epochs))
    return epochs


def add_job(vol: Volume, cfg: DictConfig) -> None:
    """The models one job trains, keyed like the model cache (what determines each model)."""
    from hydra.utils import get_class

    from mia_bench.data.splits import make_split
    from mia_bench.defenses import NO_DEFENSE
    from mia_bench.experiment.defense_context import training_config
    from mia_bench.train.loop import trainer_identity

    n, shape, classes = dataset_shape(cfg)
    kind = "image" if len(shape) == 3 else "tabular"
    split = make_split(n, kind, cfg.split, int(cfg.seed), int(cfg.shadow.count))
    model_yaml = json.dumps(OmegaConf.to_container(cfg.model, resolve=True), sort_keys=True)
    per_sample = 3 * forward_flops(model_yaml, shape, classes)
    trainer = trainer_identity(cfg.trainer)
    roles = [("target", cfg.defense, len(split.target_train))]
    shadow_defense = cfg.defense if cfg.shadow.defense == "same" else NO_DEFENSE
    roles += [(f"shadow{i}", shadow_defense, len(tr)) for i, (tr, _) in enumerate(split.shadows)]
    lira = cfg.attack.get("lira") or cfg.attack.get("rmia")
    if lira is not None:
        population = len(split.target_train) + len(split.target_test)
        population += sum(len(a) for a in split.shadows[0])
        roles += [
            (f"reference{i}", shadow_defense, population // 2) for i in range(lira.num_models)
        ]
    setting = SpeedSetting(model_yaml, tuple(shape), classes, int(cfg.trainer.batch_size))
    common = [cfg.dataset.name, model_yaml, json.dumps(trainer, sort_keys=True)]
    common += [json.dumps(OmegaConf.to_container(cfg.split, resolve=True), sort_keys=True)]
    common += [str(cfg.seed), str(cfg.shadow.count)]
    vol.jobs += 1
    for role, defense, size in roles:
        # as the model cache keys it: query-time parameters (MemGuard's budget) left out
        dcfg = training_config(get_class(defense._target_), defense)
        epochs = _epochs(cfg, defense)
        key = "|".join([*common, role, json.dumps(dcfg, sort_keys=True)])
        trained = [(key, epochs, size)]
        if defense.name in TEACHER:
            trained.append((key + "|teacher", int(cfg.trainer.epochs), size))
        if defense.name == "selena":  # k sub-models, each on the samples it is not left out of
            k_sub, l_out = int(defense.k), int(defense.l)
            sub = size * (k_sub - l_out) // k_sub
            trained += [(key + f"|selena{j}", int(cfg.trainer.epochs), sub) for j in range(k_sub)]
        for k, e, m in trained:
            if k not in vol.models:
                vol.models[k] = per_sample * m * e
                vol.sample_epochs += m * e
                vol.by_setting[setting] = vol.by_setting.get(setting, 0) + m * e


def volume(name: str, seeds: str = "0,1,2", extra: list[str] | None = None) -> Volume:
    """Every job of a target at full scale, composed as the multirun would compose it;
    `extra` overrides are added to every sweep (a key the target sets is replaced), as
    `mia_bench.repro.reproduce` adds them."""
    from hydra import compose, initialize_config_dir

    from mia_bench import conf_dir
    from mia_bench.overrides import expand, merge
    from mia_bench.repro.targets import TARGETS

    vol = Volume()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        for sweep in TARGETS[name].sweeps:
            own = ",".join(seeds.split(",")[: sweep.max_seeds]) if sweep.max_seeds else seeds
            overrides = merge(sweep.overrides, [f"seed={own}"], extra or [])
            for job in expand(overrides):
                add_job(vol, compose("config", overrides=job))
    return vol


def _num(x: float) -> str:
    """Readable at every scale: 1,842 / 29 / 7.1 / 0.43 / 0.0011."""
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.0f}"
    return f"{x:.2g}" if x < 1 else f"{x:.1f}"


def settings(targets: list[str], seeds: str = "0,1,2") -> dict[SpeedSetting, int]:
    """Every speed setting the targets train, with its training samples x epochs."""
    out: dict[SpeedSetting, int] = {}
    for name in targets:
        for s, n in volume(name, seeds).by_setting.items():
            out[s] = out.get(s, 0) + n
    return out


def write_settings(path: str, found: dict[SpeedSetting, int]) -> None:
    """The settings as JSON, the input of `python -m mia_bench.bench --parts e --settings`."""
    from mia_bench.io import atomic_write_text

    rows = [
        {
            "key": s.key,
            "model": json.loads(s.model_yaml),
            "shape": list(s.shape),
            "classes": s.classes,
            "batch_size": s.batch_size,
            "sample_epochs": n,
        }
        for s, n in sorted(found.items(), key=lambda item: item[0].key)
    ]
    atomic_write_text(path, json.dumps(rows, indent=1) + "\n")


def read_rates(path: str) -> tuple[str, dict[str, float]]:
    """(label, images/s per setting key) from a `bench --parts e` JSON report; the label names
    the device and the trainer's speed settings."""
    with open(path) as f:
        report = json.load(f)
    speed = report.get("speed", {})
    label = report["device"]
    if speed:
        label += f", amp {speed.get('amp')}, compile {speed.get('compile') or 'off'}"
    return label, {r["key"]: float(r["images_per_s"]) for r in report["rates"]}


def main(argv: list[str] | None = None) -> int:
    from mia_bench.repro.targets import TARGETS

    p = argparse.ArgumentParser(prog="python -m mia_bench.repro.plan", description=__doc__)
    p.add_argument(
        "targets",
        nargs="*",
        default=list(TARGETS),
        metavar="TARGET",
        help="targets; KEY=VALUE arguments are added to every sweep, e.g. a larger size",
    )
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument(
        "--tflops",
        default="3,50",
        help="sustained training rates (TFLOP/s, comma-separated) to turn volume into hours; "
        "an assumption, not a measurement (default 3,50)",
    )
    p.add_argument(
        "--rates",
        metavar="JSON",
        action="append",
        default=[],
        help="measured training rates (`python -m mia_bench.bench --parts e` writes them): adds "
        "a column of the hours of training at those rates; may be given several times",
    )
    p.add_argument(
        "--write-settings",
        metavar="JSON",
        help="write the targets' distinct training settings (model, input shape, batch) and "
        "their volumes, for `python -m mia_bench.bench --parts e --settings JSON`",
    )
    args = p.parse_args(argv)
    extra = [t for t in args.targets if "=" in t]
    args.targets = [t for t in args.targets if "=" not in t] or list(TARGETS)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        p.error(f"unknown target(s) {unknown}; choose from {sorted(TARGETS)}")
    if args.write_settings:
        write_settings(args.write_settings, settings(args.targets, args.seeds))
        print(f"written to {args.write_settings}")
        return 0
    rates = [float(r) for r in args.tflops.split(",")]
    measured = [read_rates(path) for path in args.rates]
    head = ["target", "jobs", "models trained", "training samples x epochs", "training PFLOP"]
    head += [f"hours at {r:g} TFLOP/s" for r in rates]
    head += [f"hours at the rates measured on {label}" for label, _ in measured]
    if len(measured) > 1:  # each setting at the fastest of its measured rates
        best: dict[str, float] = {}
        for _, rate in measured:
            for key, r in rate.items():
                best[key] = max(r, best.get(key, 0.0))
        measured.append(("best", best))
        head.append("hours at the fastest measured rate of each setting")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in args.targets:
        v = volume(name, args.seeds, extra)
        cells = [name, str(v.jobs), str(len(v.models)), f"{v.sample_epochs / 1e6:.1f} M"]
        cells += [_num(v.flops / 1e15), *[_num(v.flops / (r * 1e12) / 3600) for r in rates]]
        for _, rate in measured:
            h = v.hours(rate)
            cells.append("n/a (a setting was not measured)" if h is None else _num(h))
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
