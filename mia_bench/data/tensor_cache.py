"""Decode a dataset's files once; later runs load one `.pt` of tensors in about a second.

The cache file is keyed by the decoder's version, the dataset's decoding parameters, whether
checksums were verified, and the size and modification time of every source file, so that
replacing a file (or switching `dataset.verify`) decodes again. Written atomically, read with
`torch.load(weights_only=True)` (tensors and plain values only).

Each entry also stores `digest`, the SHA-256 of the decoded tensors, computed once when the
files are decoded: the model cache keys trained models by it (the content, not the folder).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mia_bench.io import atomic_write_bytes

log = logging.getLogger(__name__)
# Bump when a decoder changes what it produces.
DECODER_VERSION = 2
CACHE_FOLDER = "tensors"


def tensor_digest(tensors: dict[str, Any]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of the tensors in `tensors`."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def source_fingerprint(files: Sequence[Path]) -> list[tuple[str, int, int]]:
    return [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def cache_path(root: Path, name: str, files: Sequence[Path], params: dict[str, Any]) -> Path:
    blob = json.dumps(
        {"v": DECODER_VERSION, "name": name, "params": params, "files": source_fingerprint(files)},
        sort_keys=True,
        default=str,
    )
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return root / CACHE_FOLDER / f"{name}-{key}.pt"


def cached(
    root: Path,
    name: str,
    files: Sequence[Path],
    params: dict[str, Any],
    decode: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`decode()` once per (files, params); its dict of tensors and plain values is stored,
    with the tensors' digest under `digest`."""
    path = cache_path(root, name, files, params)
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a damaged cache file is rebuilt
            log.warning("tensor cache %s is unreadable (%s); decoding again", path, err)
    out = decode()
    out["digest"] = tensor_digest(out)
    buf = io.BytesIO()
    torch.save(out, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as err:  # a read-only data folder still works, just without the cache
        log.warning("could not write tensor cache %s (%s)", path, err)
    return out
