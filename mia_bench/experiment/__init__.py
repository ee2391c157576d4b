"""One experiment: the protocol top to bottom in `run.py`; the steps it calls read a `RunContext`
(context.py): setup.py (checks, data), models.py (build, train, cache key, teachers),
reference.py (LiRA / RMIA reference models), queries.py (signals), attacking.py (attacks and
their cache), snapshots.py (early-stopping points), results.py and summary.py (what is written)."""
