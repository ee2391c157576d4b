"""The defenses from the command line: end-to-end runs, bad values refused before training, and
the per-dataset/model specialisation configs (RelaxLoss Table 4)."""

import json
import shutil

import pytest
from conftest import CONF, FAST, run_cli
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mia_bench.errors import ConfigError
from mia_bench.experiment import run as pipeline


@pytest.mark.parametrize(
    "args, described",
    [
        (["defense=relaxloss", "defense.alpha=0.5"], {"name": "relaxloss", "alpha": 0.5}),
        (["defense=ccl", "defense.alpha=0.5"], {"name": "ccl", "alpha": 0.5}),
        (["defense=crl"], {"name": "crl"}),
    ],
)
def test_defense_runs_end_to_end(tmp_path, args, described):
    # FAST, shorter still: this checks the wiring; the formulas have their own tests
    small = ["trainer.epochs=3", "trainer.milestones=[2]", "attack=[loss,nn]", "attack.nn.epochs=3"]
    r = run_cli([*args, *FAST, *small, "hydra.run.dir=run"], tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert described.items() <= res["defense"].items()
    assert 0.0 <= res["target"]["test_acc"] <= 1.0 and "loss" in res["attacks"]


def test_bad_value_stops_the_run_before_training(tmp_path):
    r = run_cli(["defense=ccl", "defense.alpha=1.5", "hydra.run.dir=run"], tmp_path)
    assert r.returncode != 0
    assert "defense.alpha" in r.stderr
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["defense=relaxloss", "defense.alpha=0"], "defense.alpha"),
        (["defense=relaxloss", "defense.form=audio"], "defense.form"),
        (["defense=ccl", "defense.variant=cxql"], "defense.variant"),
        (["defense=crl", "defense.lam=-1"], "defense.lam"),
        (["defense=crl", "defense.tau_rcl=-0.5"], "defense.tau_rcl"),
        (["defense=crl", "defense.nosuchkey=1"], "defense.nosuchkey"),
    ],
)
def test_prepare_refuses_bad_values(cfg_factory, tmp_path, monkeypatch, overrides, key):
    cfg = cfg_factory([o if "nosuchkey" not in o else "+" + o for o in overrides])
    exp = pipeline.Experiment(cfg, tmp_path / "run")
    trained = []
    monkeypatch.setattr(
        "mia_bench.experiment.models.train_model", lambda *a, **k: trained.append(1)
    )
    with pytest.raises(ConfigError) as err:
        exp.prepare()
    assert err.value.key == key and not trained


# RelaxLoss App. C.3 Table 4 (alpha) and App. B.3 (form; upper for the tabular sets)
TABLE4 = {
    ("cifar10", "resnet20"): (1.0, 1.0, "image"),
    ("cifar10", "vgg11_bn"): (0.4, 1.0, "image"),
    ("cifar100", "resnet20"): (3.0, 1.0, "image"),
    ("cifar100", "vgg11_bn"): (0.5, 1.0, "image"),
    ("chmnist", "resnet20"): (0.2, 1.0, "paper"),
    ("texas100", "mlp_texas"): (2.5, 0.1, "tabular"),
    ("purchase100", "mlp_purchase"): (0.8, 0.3, "tabular"),
}


@pytest.fixture(scope="module")
def conf_with_stubs(tmp_path_factory):
    """A copy of conf/ with a stub for every dataset / model of Table 4 not yet present, so the
    specialisation mechanism is tested whatever datasets this checkout has."""
    conf = tmp_path_factory.mktemp("conf") / "conf"
    shutil.copytree(CONF, conf)
    for dataset, model in TABLE4:
        for group, name in (("dataset", dataset), ("model", model)):
            f = conf / group / f"{name}.yaml"
            if not f.exists():
                f.write_text(f"name: {name}\n")
    return str(conf)


def _defense(conf: str, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        return dict(compose("config", overrides=overrides).defense)


@pytest.mark.parametrize("dataset, model", list(TABLE4))
def test_relaxloss_takes_the_paper_values_per_dataset_and_model(conf_with_stubs, dataset, model):
    alpha, upper, form = TABLE4[dataset, model]
    d = _defense(conf_with_stubs, ["defense=relaxloss", f"dataset={dataset}", f"model={model}"])
    assert (d["alpha"], d["upper"], d["form"]) == (alpha, upper, form)


def test_command_line_beats_the_specialisation(conf_with_stubs):
    for order in (0, 1):
        ov = ["defense=relaxloss", "dataset=texas100", "model=mlp_texas"]
        ov.insert(order * 3, "defense.alpha=0.7")  # before or after the group choices
        d = _defense(conf_with_stubs, ov)
        assert (d["alpha"], d["upper"], d["form"]) == (0.7, 0.1, "tabular")


def test_no_specialisation_elsewhere(conf_with_stubs):
    d = _defense(conf_with_stubs, ["defense=ccl", "dataset=cifar10", "model=resnet20"])
    assert d["alpha"] == 0.5 and "form" not in d
    d = _defense(conf_with_stubs, ["defense=relaxloss"])  # the embedded default: the base file
    assert d == OmegaConf.to_container(OmegaConf.load(f"{CONF}/defense/relaxloss.yaml"))
