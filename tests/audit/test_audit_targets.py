"""`make table-audit` and `make table-audit-fashion-mnist` audit every defense of conf/defense."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import CONF, ROOT

DEFENSES = {p.stem for p in (Path(CONF) / "defense").glob("*.yaml")}


def _make_list(name: str) -> set[str]:
    (line,) = re.findall(rf"^{name} \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    return set(line.split(","))


def test_the_embedded_audit_covers_every_defense():
    # early stopping and DP-SGD run as sweeps of their own in the same target
    listed = _make_list("AUDIT_DEFENSES")
    assert listed <= DEFENSES
    assert listed | {"early_stopping", "dp_sgd"} == DEFENSES


def test_the_fashion_mnist_audit_covers_every_defense_but_early_stopping():
    # none and MemGuard share the undefended models, DP-SGD has its own sweep; early stopping's
    # audited (final) model is the undefended one
    listed = _make_list("AUDIT_FMNIST_DEFENSES")
    assert listed <= DEFENSES
    assert listed | {"none", "memguard", "dp_sgd", "early_stopping"} == DEFENSES
