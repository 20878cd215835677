"""Run folders and atomic file writes.

Every computing command writes one run folder::

    <run>/config.toml      the resolved settings (defaults + file + overrides)
    <run>/provenance.json  versions, seed, git revision, command line, start/end time
    <run>/metrics.json     the numbers the run computed
    <run>/samples.npz      arrays (or other .npz files named by the experiment)
    <run>/figures/*.png    figures, redrawable from the arrays alone

Every file is written atomically: to a temporary file in the same folder, flushed and fsynced, then
renamed over the target. A killed process leaves either the old file or the new one, never a partial
one; stray ``*.tmp-*`` files are ignored by readers.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from geomem.config import dump_toml, to_dict
from geomem.errors import ConfigError, DataFileError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it over ``target``.

    On an exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent, suffix=target.suffix)
    except OSError as exc:
        raise unwritable(target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file ordinary permissions
        try:
            os.replace(tmp_path, target)
        except OSError as exc:
            raise unwritable(target, exc) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def unwritable(path: Path, exc: OSError) -> DataFileError:
    """The error for an output that cannot be written (read-only place, a file where a folder must be, ...)."""
    return DataFileError(f"cannot write {path}: {exc.strerror or exc}; choose a writable output folder (--out)")


def check_plain_name(name: str, key: str = "name") -> str:
    """``name`` if it is a plain file name (no ``/`` or ``\\``, not ``.``/``..``, not empty, no NUL), else a
    :class:`ConfigError`: run names become folder names under a fixed root and must not escape it."""
    if (not isinstance(name, str) or not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0")
            or name != name.strip()):
        raise ConfigError(f"{key} must be a plain name (letters, digits, '-', '_', '.'; no '/', '..' or leading/"
                          f"trailing spaces), got {name!r}; use --out to choose another folder")
    return name


def write_text(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: str | Path, data: Any) -> Path:
    return write_text(target, json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")


def write_npz(target: str | Path, **arrays: Any) -> Path:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
    return Path(target)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)  # JSON has no inf/nan; keep them visible
    return obj


def git_revision() -> str | None:
    """The git revision of the geomem source tree, with ``-dirty`` if it has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(seed: int | None = None) -> dict[str, Any]:
    """Versions, machine, seed and git revision, recorded in every run folder."""
    import geomem

    versions = {"geomem": geomem.__version__, "python": platform.python_version(), "numpy": np.__version__}
    for name in ("torch", "devito", "diffusers", "dask", "scipy"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return {
        "versions": versions,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "seed": seed,
        "git_revision": git_revision(),
        "argv": sys.argv,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


class RunFolder:
    """A run's output folder. Creating one writes the resolved config and the provenance record."""

    def __init__(self, path: str | Path, config: Any = None, seed: int | None = None):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise DataFileError(f"output folder {self.path} is a file; choose a folder name (--out)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "figures").mkdir(exist_ok=True)
        except OSError as exc:
            raise unwritable(self.path, exc) from None
        if config is not None:
            write_text(self.path / "config.toml", dump_toml(to_dict(config)))
        write_json(self.path / "provenance.json", provenance(seed))

    def file(self, name: str) -> Path:
        return self.path / name

    def figure(self, name: str) -> Path:
        return self.path / "figures" / name

    def write_metrics(self, metrics: dict[str, Any], name: str = "metrics.json") -> Path:
        return write_json(self.path / name, metrics)

    def write_arrays(self, name: str = "samples.npz", **arrays: Any) -> Path:
        return write_npz(self.path / name, **arrays)
