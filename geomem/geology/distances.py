"""Nearest-neighbour distances between models, used to keep accidental copies out of a model set.

The distance between models ``a`` and ``b`` (each ``(1, nz, nx)`` or ``(nz, nx)``, km/s) is the RMS
difference relative to a velocity scale (the set's ``vmax − vmin``):

    d(a, b) = ‖a − b‖₂ / (√P · scale),   P = nz·nx,

i.e. the RMS velocity difference as a fraction of the range (0.01 = 1 % of the range). Squared distances
come from one matrix product, ``‖a‖² − 2 a·b + ‖b‖²``, in float64, in chunks of the query set.

Screening: block averaging ``u_B = √s · mean_B(a)`` over blocks of ``s`` cells is an orthogonal
projection, so ``‖u_a − u_b‖ ≤ ‖a − b‖``: a pair whose pooled distance is at least the threshold is
certainly not closer than it, and only the remaining pairs are compared at full resolution.
"""

from __future__ import annotations

import numpy as np

from geomem.errors import ShapeError


def _flat(models: np.ndarray) -> np.ndarray:
    m = np.asarray(models)
    if m.ndim < 2:
        raise ShapeError(f"models must be (N, 1, nz, nx) or (N, nz, nx), got shape {m.shape}")
    return m.reshape(m.shape[0], -1).astype(np.float64, copy=False)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d2, 0.0)


def nearest_neighbour_distances(
    models: np.ndarray, reference: np.ndarray | None = None, scale: float = 1.0, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each model to its nearest neighbour in ``reference`` (or, if ``None``, to the other
    models of ``models``: leave-one-out), and that neighbour's index. Returns ``(d (N,), index (N,))``."""
    q = _flat(models)
    ref = q if reference is None else _flat(reference)
    if ref.shape[1] != q.shape[1]:
        raise ShapeError(f"models have {q.shape[1]} cells but reference models have {ref.shape[1]}")
    if reference is None and len(q) < 2:
        raise ShapeError("a leave-one-out nearest-neighbour distance needs at least 2 models")
    dist = np.empty(len(q))
    index = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), chunk):
        d2 = _sq_dists(q[start:start + chunk], ref)
        if reference is None:
            rows = np.arange(d2.shape[0])
            d2[rows, start + rows] = np.inf
        index[start:start + chunk] = d2.argmin(1)
        dist[start:start + chunk] = d2.min(1)
    return np.sqrt(dist / q.shape[1]) / scale, index


def pool(models: np.ndarray, target: int = 16) -> np.ndarray:
    """Block-average ``(N, …, nz, nx)`` to about ``target × target`` cells, scaled by ``√(block size)`` so
    that pooled distances are lower bounds of full distances. Returns ``(N, cells)`` float64."""
    m = np.asarray(models, dtype=np.float64)
    nz, nx = m.shape[-2:]
    bz, bx = max(1, nz // target), max(1, nx // target)
    cz, cx = (nz // bz) * bz, (nx // bx) * bx
    m = m.reshape(m.shape[0], nz, nx)[:, :cz, :cx]
    blocks = m.reshape(m.shape[0], cz // bz, bz, cx // bx, bx).mean(axis=(2, 4))
    return blocks.reshape(m.shape[0], -1) * np.sqrt(bz * bx)


def close_pairs(models: np.ndarray, threshold: float, scale: float = 1.0, chunk: int = 1024) -> np.ndarray:
    """All pairs ``(i, j)``, ``j < i``, with ``d(models[i], models[j]) < threshold``; ``(K, 2)`` int."""
    full = _flat(models)
    pooled = pool(models)
    limit2 = (threshold * scale) ** 2 * full.shape[1]
    found = []
    for start in range(0, len(full), chunk):
        stop = min(start + chunk, len(full))
        d2 = _sq_dists(pooled[start:stop], pooled[:stop])
        i, j = np.nonzero(d2 < limit2)
        keep = j < start + i
        i, j = i[keep] + start, j[keep]
        if len(i):
            exact = ((full[i] - full[j]) ** 2).sum(1)
            found.append(np.stack([i, j], axis=1)[exact < limit2])
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)


def is_close_to_any(candidate: np.ndarray, others: np.ndarray, threshold: float, scale: float = 1.0) -> bool:
    """Whether ``candidate`` is within ``threshold`` of any of ``others`` (exact distances)."""
    if len(others) == 0:
        return False
    c = _flat(candidate[None])
    d2 = ((_flat(others) - c) ** 2).sum(1)
    return bool((d2 < (threshold * scale) ** 2 * c.shape[1]).any())
