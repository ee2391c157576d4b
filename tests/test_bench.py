"""The benchmark runs end to end at a toy size and reports every figure."""

from __future__ import annotations

import re

import pytest

from mia_bench import bench


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
