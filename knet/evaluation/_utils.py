# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Small numpy / IO helpers shared by the PQ, VPQ and STQ code.

The video metrics count their (GT, prediction) pixel pairs here with plain
numpy and read their PNGs with OpenCV; image PQ is hotcoco's
(:mod:`.panoptic_quality`).

Everything here is numpy-only so that the metrics can be used (and
multiprocessed) without importing torch or mmengine.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

try:  # OpenCV decodes PNGs about 2x faster than Pillow.
    import cv2
except ImportError:  # pragma: no cover - opencv ships with mmcv
    cv2 = None

__all__ = [
    'count_values', 'count_pairs', 'read_png', 'dump_json_atomic',
    'to_builtin'
]


def count_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the sorted distinct values of ``values`` and their counts."""
    values = np.asarray(values).reshape(-1)
    if values.size == 0:
        return values.astype(np.int64), np.zeros(0, np.int64)
    uniq, counts = np.unique(values, return_counts=True)
    return uniq.astype(np.int64), counts.astype(np.int64)


def count_pairs(a: np.ndarray,
                b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count the distinct ``(a[i], b[i])`` pairs of two non-negative id maps.

    This is the contingency table of two segmentations, returned sparsely as
    ``(a_ids, b_ids, counts)`` sorted by ``(a, b)``. Panoptic maps are
    piecewise constant, so the table is built from the runs of equal pairs in
    raster order (a few thousand per image) instead of from every pixel; noisy
    maps with many runs fall back to one ``np.unique`` over combined keys.

    Args:
        a, b: Integer arrays of the same shape (values outside
            ``[0, 2**32)`` take a slower exact path).

    Returns:
        Three int64 arrays of equal length.
    """
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f'count_pairs: shapes differ {a.shape} vs {b.shape}')
    if a.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty.copy(), empty.copy()
    if not (_fits_u32(a) and _fits_u32(b)):
        pairs, counts = np.unique(
            np.stack([a.astype(np.int64), b.astype(np.int64)], axis=1),
            axis=0, return_counts=True)
        return pairs[:, 0], pairs[:, 1], counts.astype(np.int64)
    # run starts: positions where either map changes value
    change = a[1:] != a[:-1]
    change |= b[1:] != b[:-1]
    starts = np.flatnonzero(change)
    if starts.size * 4 > a.size:
        key = (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)
        uniq, counts = np.unique(key, return_counts=True)
    else:
        starts += 1
        starts = np.concatenate(([0], starts))
        lengths = np.diff(np.append(starts, a.size))
        key = a[starts].astype(np.uint64) << np.uint64(32)
        key |= b[starts].astype(np.uint64)
        uniq, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse.reshape(-1), weights=lengths,
                             minlength=uniq.size)
    a_ids = (uniq >> np.uint64(32)).astype(np.int64)
    b_ids = (uniq & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return a_ids, b_ids, np.rint(counts).astype(np.int64)


def _fits_u32(x: np.ndarray) -> bool:
    if x.dtype.kind == 'u' and x.dtype.itemsize <= 4:
        return True
    return bool(x.min() >= 0 and x.max() < 2**32)


def read_png(path: str) -> np.ndarray:
    """Read a PNG unchanged (8/16 bit, 1/3/4 channels; colour order RGB).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be decoded.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'File not found: {path}')
    if cv2 is not None:
        try:  # OpenCV raises (not returns None) above its pixel limit
            img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        except cv2.error as err:
            raise ValueError(f'Cannot decode image file {path}: '
                             f'{str(err).strip().splitlines()[-1]}') from None
        if img is None:
            raise ValueError(f'Cannot decode image file: {path}')
        if img.ndim == 3 and img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
        return img
    from PIL import Image  # pragma: no cover
    try:  # pragma: no cover
        with Image.open(path) as im:
            return np.array(im)
    except OSError as err:  # pragma: no cover
        raise ValueError(f'Cannot decode image file: {path}') from err


def to_builtin(obj: Any) -> Any:
    """Recursively convert numpy scalars / arrays to JSON-friendly types."""
    if isinstance(obj, dict):
        return {str(k): to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_builtin(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_builtin(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def dump_json_atomic(obj: Any, path: str, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file + os.replace).

    A reader never sees a half-written file, and an interrupted run leaves
    the previous file untouched.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(to_builtin(obj), f, indent=indent)
            f.write('\n')
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
