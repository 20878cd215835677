"""Content-addressed caching: a cached result is reused only when everything it was computed from is equal.

A stage's key is the SHA-256 of its settings *and* of the contents of every input it read (the model set's
models, a prior's weights, observed data), so replacing a file at the same path, retraining a prior or
changing a setting all recompute; nothing stale is ever read back. The key is stored inside the cached
``.npz`` (``__key__``) and checked on every read.

Forward data of training models, the most expensive shared input, go to a cache shared across run folders:
``$GEOMEM_CACHE`` (default ``~/.cache/geomem``) ``/forward/<key>.npz`` with the key of (model-set contents,
operator settings, number of models, geomem and Devito versions).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from geomem.runs import write_npz

_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def digest_bytes(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def digest_array(a: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(a)
    return digest_bytes(str(a.dtype).encode(), str(a.shape).encode(), a.tobytes())


def digest_path(path: str | Path) -> str:
    """SHA-256 of a file's contents, or of a folder's files (relative names and contents, sorted); memoized
    per (path, size, mtime) within the process."""
    path = Path(path)
    if path.is_dir():
        parts = [f"{p.relative_to(path)}:{digest_path(p)}".encode() for p in sorted(path.rglob("*"))
                 if p.is_file() and ".tmp-" not in p.name]
        return digest_bytes(*parts)
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _FILE_DIGESTS[memo] = h.hexdigest()
    return _FILE_DIGESTS[memo]


def stage_key(**parts: Any) -> str:
    """A short key from JSON-able parts (settings dicts, digests, versions)."""
    return digest_bytes(json.dumps(parts, sort_keys=True, default=str).encode())[:20]


def cached(path: Path, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays at ``path`` if they were stored under ``key``; else ``compute()``, stored atomically with the key.

    A file from other inputs or settings (another key) is recomputed and replaced, never returned.
    """
    path = Path(path)
    if path.is_file():
        with np.load(path) as f:
            if "__key__" in f.files and str(f["__key__"]) == key:
                return {k: f[k] for k in f.files if k != "__key__"}
    arrays = compute()
    write_npz(path, __key__=np.asarray(key), **arrays)
    return arrays


def cache_root() -> Path:
    """``$GEOMEM_CACHE`` or ``~/.cache/geomem``."""
    return Path(os.environ.get("GEOMEM_CACHE") or Path.home() / ".cache" / "geomem")


def versions() -> dict[str, str]:
    import devito

    import geomem

    return {"geomem": geomem.__version__, "devito": devito.__version__}
