"""Content-addressed store of trained models (and of anything else keyed by what made it, such
as attack outputs: mia_bench.experiment.attacking), shared by every run, sweep and launcher
worker.

A model is keyed by the SHA-256 of everything that determines it (dataset and its parameters,
the exact training indices, model, trainer recipe, defense, seed, role; not the device or the
trainer's speed-only settings, `mia_bench.train.loop.SPEED_ONLY_KEYS`). An entry is two files:
`<key>.pt` (state dicts, loaded with `weights_only=True`) and `<key>.json` (the spec it was
made from, the checksum of the .pt, the training log). Both are written atomically, the .json
last, so an entry without a valid .json is incomplete. A lock per key makes concurrent jobs
train a model once: the second waits, then loads; the lock file is removed on release.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mia_bench.io import atomic_write_bytes, atomic_write_json, locked

log = logging.getLogger(__name__)
# Bump when training code changes in a way that changes results, to invalidate old entries.
CACHE_VERSION = 1


def indices_digest(idx: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(idx, dtype=np.int64).tobytes()).hexdigest()


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the arrays (order-free by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def spec_key(spec: dict[str, Any]) -> str:
    blob = json.dumps({"v": CACHE_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ModelCache:
    """Entries live under `<root>/<kind>/`: "models" for trained models, "attacks" for the
    outputs of an attack fitted on given shadow signals."""

    def __init__(self, root: str | Path | None, enabled: bool = True, kind: str = "models") -> None:
        self.enabled = enabled and root is not None
        self.root = Path(root).expanduser() / kind if root is not None else None

    def _paths(self, key: str) -> tuple[Path, Path, Path]:
        d = self.root / key[:2]
        return d / f"{key}.pt", d / f"{key}.json", d / f"{key}.lock"

    def checkpoint_path(self, spec: dict[str, Any]) -> Path | None:
        """Where a half-trained model of `spec` keeps its per-epoch checkpoint (None without
        a cache: nothing would find it again)."""
        if not self.enabled:
            return None
        pt, _, _ = self._paths(spec_key(spec))
        return pt.with_suffix(".ckpt")

    def load(self, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(state, meta) of a complete, intact entry; None if absent. A corrupt entry is
        reported and removed so that it is rebuilt."""
        pt, meta_path, _ = self._paths(key)
        if not meta_path.exists() or not pt.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            blob = pt.read_bytes()
            if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
                raise ValueError("checksum mismatch")
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any damage means: rebuild
            log.warning("model cache entry %s is damaged (%s); rebuilding it", key[:12], err)
            meta_path.unlink(missing_ok=True)
            pt.unlink(missing_ok=True)
            return None
        return state, meta

    def store(self, key: str, state: dict[str, Any], meta: dict[str, Any]) -> None:
        pt, meta_path, _ = self._paths(key)
        buf = io.BytesIO()
        torch.save(state, buf)
        blob = buf.getvalue()
        atomic_write_bytes(pt, blob)
        atomic_write_json(meta_path, {**meta, "sha256": hashlib.sha256(blob).hexdigest()})

    def get_or_make(
        self,
        spec: dict[str, Any],
        make: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
    ) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """(state, meta, cache_hit). `make` trains and returns (state, meta)."""
        if not self.enabled:
            state, meta = make()
            return state, meta, False
        key = spec_key(spec)
        pt, _, lock = self._paths(key)
        pt.parent.mkdir(parents=True, exist_ok=True)
        with locked(lock):
            hit = self.load(key)
            if hit is not None:
                return hit[0], hit[1], True
            state, meta = make()
            self.store(key, state, {**meta, "spec": spec, "key": key})
        return state, meta, False

    def get_or_make_many(
        self,
        specs: list[dict[str, Any]],
        make_many: Callable[[list[int]], list[tuple[dict[str, Any], dict[str, Any]]]],
    ) -> list[tuple[dict[str, Any], dict[str, Any], bool]]:
        """`get_or_make` for several models trained together: entries present are loaded; the
        missing ones (their positions in `specs`) are made by one call of `make_many` and stored
        each under its own key, as if made alone. The locks of all keys are held meanwhile,
        taken in sorted order so that two jobs asking for overlapping groups cannot deadlock."""
        if not self.enabled:
            return [(state, meta, False) for state, meta in make_many(list(range(len(specs))))]
        keys = [spec_key(s) for s in specs]
        with ExitStack() as locks:
            for key in sorted(set(keys)):
                pt, _, lock = self._paths(key)
                pt.parent.mkdir(parents=True, exist_ok=True)
                locks.enter_context(locked(lock))
            found = [self.load(k) for k in keys]
            missing = [i for i, hit in enumerate(found) if hit is None]
            made = dict(zip(missing, make_many(missing))) if missing else {}
            out = []
            for i, (key, spec) in enumerate(zip(keys, specs)):
                if i in made:
                    state, meta = made[i]
                    self.store(key, state, {**meta, "spec": spec, "key": key})
                    out.append((state, meta, False))
                else:
                    out.append((found[i][0], found[i][1], True))
        return out
