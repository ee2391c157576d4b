"""The papers' tables and figures as lists of Hydra multiruns (`make table-*`, `figure-*`).

Each target is one or more sweeps; a sweep is the override list of one
`python -m mia_bench -m ...` call, to which `mia_bench.repro.reproduce` adds the seeds, the launcher
and, at smoke scale, the small-size overrides. Values separated by commas are swept (Hydra's
Cartesian product); a defense whose swept parameter differs from the others' gets a sweep of
its own. Every sweep value comes from the paper cited next to it.
"""

from __future__ import annotations

from mia_bench.repro.targets import ccl_embedded, crl, fashion_mnist, relaxloss
from mia_bench.repro.targets.spec import Sweep, Target

# In `make tables` order.
TARGETS: dict[str, Target] = {
    t.name: t
    for t in [*relaxloss.TARGETS, *crl.TARGETS, *ccl_embedded.TARGETS, *fashion_mnist.TARGETS]
}

__all__ = ["TARGETS", "Sweep", "Target"]
