"""The benchmark runs end to end at a toy size and reports every figure."""

from __future__ import annotations

import re

import pytest

from mia_bench.bench import cli as bench


def test_bench_reports_every_part(tmp_path, capsys):
    argv = [
        "--device",
        "cpu",
        "--images",
        "64",
        "--k",
        "2",
        "--epochs-c",
        "1",
        # two cheap attacks: every attack of conf/attack would add LiRA's and RMIA's reference
        # models to part (c) (its timing, not what this test checks)
        "--attacks",
        "loss,nn",
        "--record",
        str(tmp_path),
    ]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    (report,) = tmp_path.glob("train-*-cpu-*.txt")
    text = report.read_text()
    assert text.strip() in printed
    assert "torch " in text and "device: cpu" in text
    # (a) and (b): two throughputs and their ratio each, and the ratio is their quotient
    rates = [float(v) for v in re.findall(r"(\d+) images/s", text)]
    ratios = [float(v) for v in re.findall(r"ratio:\s+([\d.]+) x", text)]
    assert len(rates) == 4 and len(ratios) == 2 and all(r > 0 for r in rates)
    assert abs(ratios[0] - rates[0] / rates[1]) <= 0.02 * ratios[0] + 0.05
    # (c): every pipeline stage timed
    for stage in ["train_target", "train_shadows", "signals", "attacks", "total"]:
        assert re.search(rf"{stage}:\s+[\d.]+ s", text), stage
    assert "attacks ['loss', 'nn']" in text


def test_bench_rates_part_writes_what_plan_reads(tmp_path, capsys):
    import json

    from mia_bench.repro import plan

    vol = plan.Volume()
    from conftest import CONF
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        plan.add_job(vol, compose("config", overrides=["trainer.batch_size=32"]))
    settings = tmp_path / "settings.json"
    plan.write_settings(str(settings), vol.by_setting)
    argv = ["--device", "cpu", "--parts", "e", "--settings", str(settings), "--steps", "3"]
    assert bench.main([*argv, "--record", str(tmp_path)]) == 0
    (rates,) = tmp_path.glob("rates-*-cpu-*-e.json")
    device, measured = plan.read_rates(str(rates))
    ((setting, n),) = vol.by_setting.items()
    rate = measured[setting.key]
    row = json.loads(rates.read_text())["rates"][0]
    # 3 batches of 32 samples in the timed epoch: the rate is their count over its seconds
    assert rate == pytest.approx(3 * 32 / row["seconds"])
    assert vol.hours(measured) == pytest.approx(n / rate / 3600)
    assert f"{setting.key}" in capsys.readouterr().out


def test_bench_compile_flag_reaches_the_trainer_and_bad_values_stop(capsys):
    from mia_bench.bench.common import speed_settings, trainer_cfg

    with pytest.raises(ValueError, match="trainer.compile"):
        bench.main(["--device", "cpu", "--parts", "", "--compile", "fastest"])
    assert bench.main(["--device", "cpu", "--parts", "", "--compile", "reduce-overhead"]) == 0
    # the settings main() passes to every part, and the trainer config they make
    speed = speed_settings("reduce-overhead", None)
    assert trainer_cfg(1, speed).compile == "reduce-overhead"
    assert "'compile': 'reduce-overhead'" in capsys.readouterr().out
    # nothing is left behind for a later run in the same process
    assert trainer_cfg(1).compile is False


@pytest.mark.slow
def test_bench_bf16_part_reports_accuracy_and_auc_per_amp(tmp_path, capsys):
    assert (
        bench.main(["--device", "cpu", "--parts", "d", "--epochs-c", "1", "--dataset", "digits"])
        == 0
    )
    text = capsys.readouterr().out
    rows = [
        line.split() for line in text.splitlines() if line.strip().startswith(("bf16 ", "none "))
    ]
    assert [r[0] for r in rows] == ["bf16", "none"]
    # on the CPU amp is ignored: the two runs are the same fp32 run, metric for metric
    assert rows[0][1] == rows[1][1] and rows[0][3:] == rows[1][3:]
