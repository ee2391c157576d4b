"""Every YAML of every config group builds through the one instantiate helper (as timm builds
every registered model), and every bad setting, in whichever group, is a ConfigError naming
`<group>.<key>`: the typed checks of mia_bench.checks and the signature binding of
mia_bench.config_objects, before anything is trained."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONF, compose_cfg
from omegaconf import OmegaConf

from mia_bench.attacks import Attack, build_attacks
from mia_bench.audit.canaries import audit_settings
from mia_bench.config import validate
from mia_bench.config_objects import bind, instantiate, settings_of, target_of
from mia_bench.data import META_KEYS as DATASET_META
from mia_bench.data import load_dataset
from mia_bench.data.splits import Split, make_split
from mia_bench.defenses import Defense, build
from mia_bench.errors import ConfigError
from mia_bench.models import Classifier, build_model

ROOT = Path(CONF)
# The groups whose YAML names what builds it (`_target_`).
BUILT = ("attack", "dataset", "defense", "model", "split")
# Input shapes for the models (tabular MLPs: their dataset's width; image models: small images).
SHAPES = {"mlp": (40,), "mlp_purchase": (600,), "mlp_texas": (6169,)}
# Datasets generated in memory; the others need files (built from fake files in tests/data).
GENERATED = {"synthetic", "digits"}


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / group).glob("*.yaml"))


def _load(group: str, name: str):
    return OmegaConf.load(ROOT / group / f"{name}.yaml")


def _qualname(obj: object) -> str:
    cls = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


@pytest.mark.parametrize("group", BUILT)
def test_every_config_of_a_built_group_names_its_target(group):
    for name in _names(group):
        assert "_target_" in _load(group, name), f"conf/{group}/{name}.yaml"


CASES = [(group, name) for group in BUILT for name in _names(group)]


@pytest.mark.parametrize(("group", "name"), CASES, ids=[f"{g}/{n}" for g, n in CASES])
def test_every_config_builds_through_the_one_helper(group, name, tmp_path):
    cfg = _load(group, name)
    target = cfg._target_
    if group == "attack":
        root = OmegaConf.create({"attack": {name: cfg}})  # interpolations resolve from the root
        (attack,) = build_attacks(root.attack, seed=3)
        assert isinstance(attack, Attack) and attack.name == name and attack.result_names()
        assert _qualname(attack) == target
        if "seed" in inspect.signature(type(attack)).parameters:
            assert attack.seed == 3  # the run's seed reaches an attack that takes one
    elif group == "defense":
        defense = build(cfg, 10, 16)
        assert isinstance(defense, Defense) and _qualname(defense) == target
        assert (defense.num_classes, defense.feature_dim) == (10, 16)
    elif group == "model":
        # (a forward pass of every architecture: tests/models/test_models.py)
        model = build_model(cfg, SHAPES.get(name, (3, 16, 16)), 7)
        assert isinstance(model, Classifier) and _qualname(model) == target
        heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        assert heads[-1].out_features == 7
    elif group == "split":
        split = make_split(1000, "image", cfg, seed=0, shadow_count=2)
        assert isinstance(split, Split) and len(split.shadows) == 2
        every = np.concatenate([split.target_train, split.target_test, *split.shadows[0]])
        assert len(every) == len(np.unique(every))
    elif name in GENERATED:
        data = load_dataset(cfg, str(tmp_path))
        assert len(data) > 0 and data.num_classes >= 2
    else:
        # The file-backed loaders: the YAML's keys bind to the loader's signature (the step
        # before the call; reading fake files is tests/data's part).
        fn = target_of("dataset", cfg)
        kwargs = bind("dataset", fn, settings_of(cfg, DATASET_META), offered={"data_dir": "x"})
        assert kwargs["data_dir"] == "x"


@pytest.mark.parametrize("name", _names("trainer"))
def test_every_trainer_config_passes_the_checks(name):
    validate(compose_cfg([f"trainer={name}"]))


@pytest.mark.parametrize("name", _names("audit"))
def test_every_audit_config_passes_the_checks(name):
    cfg = compose_cfg([f"audit={name}"])
    validate(cfg)
    settings = audit_settings(cfg)
    assert (settings is None) == (name == "none")


@pytest.mark.parametrize("name", _names("defense_spec"))
def test_every_defense_spec_binds_to_its_defense(name):
    defense, rest = name.split("_", 1)
    dataset = next(d for d in _names("dataset") if rest.startswith(d + "_"))
    model = rest[len(dataset) + 1 :]
    cfg = compose_cfg([f"defense={defense}", f"dataset={dataset}", f"model={model}"])
    spec = _load("defense_spec", name)
    for key, value in spec.items():
        assert cfg.defense[key] == value  # the spec reached the composed defense
    assert isinstance(build(cfg.defense, 10, 16), Defense)


# (group config, overrides of its YAML, the setting the error must name)
BAD = [
    ("attack/nn", {"lr": -1.0}, "attack.nn.lr"),
    ("attack/nn", {"epochs": 0}, "attack.nn.epochs"),
    ("attack/nn", {"input": "raw"}, "attack.nn.input"),
    ("attack/nn", {"hidden": [0]}, "attack.nn.hidden"),
    ("attack/nn", {"dropout": 1.0}, "attack.nn.dropout"),
    ("attack/nn", {"lrr": 0.1}, "attack.nn.lrr"),  # unknown key
    ("attack/loss", {"thresholds": "each"}, "attack.loss.thresholds"),
    ("attack/loss", {"metric": None}, "attack.loss.metric"),
    ("attack/grad_x", {"signal": "grad_y"}, "attack.grad_x.signal"),
    ("attack/lira", {"num_models": 3}, "attack.lira.num_models"),
    ("attack/lira", {"ddof": 2}, "attack.lira.ddof"),
    ("attack/rmia", {"trim": 0.5}, "attack.rmia.trim"),
    ("attack/rmia", {"num_z": 0}, "attack.rmia.num_z"),
    ("attack/quantile", {"alpha": 1.0}, "attack.quantile.alpha"),
    ("attack/label_aug", {"flip": "yes"}, "attack.label_aug.flip"),
    ("defense/relaxloss", {"alpha": float("nan")}, "defense.alpha"),
    ("defense/relaxloss", {"alhpa": 1.0}, "defense.alhpa"),  # unknown key
    ("defense/relaxloss", {"num_classes": 3}, "defense.num_classes"),  # set by the run
    ("defense/dp_sgd", {"accountant": "moments"}, "defense.accountant"),
    ("model/resnet20", {"depthh": 20}, "model.depthh"),
    ("model/mlp", {"input_shape": [3]}, "model.input_shape"),
    ("dataset/synthetic", {"n_sample": 100}, "dataset.n_sample"),
    ("dataset/synthetic", {"n_classes": 0}, "dataset.n_classes"),
    ("split/relaxloss", {"shuffle": 1}, "split.shuffle"),
    ("split/crl", {"reference_fraction": 1.5}, "split.reference_fraction"),
    ("split/ccl", {"seed": 4}, "split.seed"),  # set by the run
]


def _build(group: str, cfg):
    if group == "attack":
        return build_attacks(cfg, seed=0)
    if group == "defense":
        return build(cfg, 10, 16)
    if group == "model":
        return build_model(cfg, (40,) if cfg.name == "mlp" else (3, 16, 16), 10)
    if group == "dataset":
        return load_dataset(cfg)
    return make_split(1000, "image", cfg, 0, 1)


@pytest.mark.parametrize(("rel", "over", "key"), BAD, ids=[k for _, _, k in BAD])
def test_a_bad_setting_names_its_key(rel, over, key):
    group, name = rel.split("/")
    cfg = OmegaConf.merge(_load(group, name), over)
    if group == "attack":
        cfg = OmegaConf.create({"attack": {name: cfg}}).attack
    with pytest.raises(ConfigError) as err:
        _build(group, cfg)
    assert err.value.key == key, err.value


def test_a_missing_required_setting_names_it():
    # ThresholdAttack's metric has no default: the YAML must give it.
    cfg = OmegaConf.create({"loss": {"_target_": "mia_bench.attacks.threshold.ThresholdAttack"}})
    with pytest.raises(ConfigError, match="is required") as err:
        build_attacks(cfg)
    assert err.value.key == "attack.loss.metric"


def test_a_config_without_a_target_lists_the_group_options():
    with pytest.raises(ConfigError, match="resnet20") as err:
        instantiate("model", {"name": "resnet20"})
    assert err.value.key == "model._target_"


def test_an_attack_config_may_set_its_own_seed():
    cfg = OmegaConf.create({"nn": {**_load("attack", "nn"), "seed": 11}})
    (attack,) = build_attacks(cfg, seed=3)
    assert attack.seed == 11
