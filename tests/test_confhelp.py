"""`python -m mia_bench --help` is made from conf/: every option of every group with the
comment that opens its file, and every key of the most used files with the comment above it.
A key added without a comment fails here, so the help cannot fall behind the configs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONF

from mia_bench import cli
from mia_bench.confhelp import KEY_FILES, SKIP_GROUPS, help_text

ROOT = Path(CONF)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _first_comment(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#") and "@package" not in line:
            return line.lstrip("#").strip()
    return ""


def test_every_option_is_listed_with_the_comment_that_opens_its_file():
    text = _flat(help_text(ROOT))
    for folder in (p for p in ROOT.iterdir() if p.is_dir() and p.name not in SKIP_GROUPS):
        for f in folder.glob("*.yaml"):
            words = " ".join(_first_comment(f).split()[:3])
            assert words, f"{f} opens without a comment"
            assert f"{f.stem} {words}" in text, f.relative_to(ROOT)


@pytest.mark.parametrize(("rel", "prefix"), KEY_FILES)
def test_every_key_of_the_most_used_files_has_its_meaning(rel, prefix):
    text = help_text(ROOT)
    loaded = yaml.safe_load((ROOT / rel).read_text())
    keys = []
    for k, v in loaded.items():
        if k in ("defaults", "hydra", "name"):
            continue
        keys += [f"{k}.{sub}" for sub in v] if isinstance(v, dict) else [k]
    for key in keys:
        line = next((ln for ln in text.splitlines() if ln.startswith(f"  {prefix}{key}=")), None)
        assert line is not None, f"{rel}: {key} has no comment above it, so no help line"
        doc = text.splitlines()[text.splitlines().index(line) + 1]
        assert doc.startswith("      ") and doc.strip(), key


def test_cli_help_is_ours_not_hydras(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["mia_bench", "--help"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("mia_bench: ")
    assert "powered by Hydra" not in out
    assert "trainer.lr=0.05" in out and "defense [none]" in out
    assert "$MIA_BENCH_CACHE" in out  # Hydra's template turned $$ back into $
