"""The configs ship inside the built package: an installed mia_bench runs from any folder."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

from mia_bench import conf_dir


def test_source_checkout_reads_the_repository_conf():
    assert conf_dir() == ROOT / "conf"


def test_built_package_carries_conf_and_runs_from_another_folder(tmp_path):
    lib = tmp_path / "lib"
    r = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    packaged = lib / "mia_bench" / "conf"
    want = sorted(p.relative_to(ROOT / "conf") for p in (ROOT / "conf").rglob("*.yaml"))
    assert sorted(p.relative_to(packaged) for p in packaged.rglob("*.yaml")) == want
    # Run from a folder with no conf/ next to it, importing the built copy only.
    env = {**os.environ, "PYTHONPATH": str(lib)}
    r = subprocess.run(
        [sys.executable, "-m", "mia_bench", "--cfg", "job", "dataset=fashion_mnist"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "_target_: mia_bench.data.mnist.load_fashion_mnist" in r.stdout
    r = subprocess.run(
        [sys.executable, "-c", "import mia_bench; print(mia_bench.conf_dir())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.stdout.strip() == str(packaged)
