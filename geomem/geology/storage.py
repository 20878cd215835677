"""Model-set files: ``.npz`` (one file, for small sets) and ``.zarr`` (a chunked folder, for large ones).

Both hold the array ``models`` ``(N, 1, nz, nx)`` float32 (km/s) and a JSON header
``{"format": "geomem.modelset", "version": 1, "family", "seed", "spacing", "vmin", "vmax", "meta"}``
(in ``.npz`` as the 0-d string array ``header``; in ``.zarr`` as the group's attributes). Writes are
atomic: an ``.npz`` goes through :func:`geomem.runs.atomic_path`; a ``.zarr`` folder is written next to
its target under a temporary name and renamed into place, so a failed write leaves no partial set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from geomem.errors import DataFileError
from geomem.runs import atomic_path

FORMAT = "geomem.modelset"
VERSION = 1
SUFFIXES = (".npz", ".zarr")


def check_suffix(path: Path) -> str:
    if path.suffix not in SUFFIXES:
        raise DataFileError(f"model-set file {path} must end in .npz (small sets) or .zarr (large sets)")
    return path.suffix


def save(path: str | Path, models: np.ndarray, header: dict[str, Any], chunk: int = 256) -> Path:
    """Write ``models`` and ``header`` to ``path`` (format chosen by the suffix), atomically."""
    path = Path(path)
    header = {"format": FORMAT, "version": VERSION, **header}
    if check_suffix(path) == ".npz":
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, models=models, header=np.array(json.dumps(header)))
        return path
    import zarr

    with _atomic_dir(path) as tmp:
        group = zarr.open_group(store=str(tmp), mode="w")
        arr = group.create_array("models", shape=models.shape, dtype="float32",
                                 chunks=(min(chunk, max(1, len(models))),) + models.shape[1:])
        arr[:] = models
        group.attrs.update(header)
    return path


def load(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read ``(models, header)`` from an ``.npz`` or ``.zarr`` model set."""
    path = Path(path)
    check_suffix(path)
    if not path.exists():
        raise DataFileError(f"model-set file {path} does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                models, header = data["models"], json.loads(str(data["header"]))
        else:
            import zarr

            group = zarr.open_group(store=str(path), mode="r")
            models, header = np.asarray(group["models"][:]), dict(group.attrs)
    except Exception as exc:  # npz: OSError, BadZipFile, KeyError, JSON errors; zarr: its own error types
        raise DataFileError(f"{path} is not a readable geomem model set ({type(exc).__name__}: {exc})") from None
    if header.get("format") != FORMAT:
        raise DataFileError(f"{path} is not a geomem model set (no '{FORMAT}' header)")
    if header.get("version") != VERSION:
        raise DataFileError(f"{path} has model-set format version {header.get('version')}; this geomem reads {VERSION}")
    return models, header


@contextlib.contextmanager
def _atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target`` (an old one is removed
    only after the new one is complete); on failure the temporary folder is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
