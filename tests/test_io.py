"""Atomic writes leave whole files with ordinary permissions."""

import os
import stat

from mia_bench.io import atomic_write_text


def test_atomic_write_uses_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_text(tmp_path / "a.txt", "yz")  # replacing keeps the same rules
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").read_text() == "yz"
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left
