# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Deterministic, atomic file writing: PNG encoder, sorted JSON, COCO RLE.

The PNG encoder is a few lines of numpy + zlib, so the bytes depend only on
the pixels and the zlib build (not on OpenCV / Pillow versions or metadata).
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, tag, data, CRC of tag + data."""
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', crc)


def encode_png(array: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes (no metadata) of (H,W) uint8/uint16 or (H,W,3) uint8 RGB."""
    array = np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
        colour_type, depth = 2, 8
    elif array.ndim == 2 and array.dtype == np.uint8:
        colour_type, depth = 0, 8
    elif array.ndim == 2 and array.dtype == np.uint16:
        colour_type, depth = 0, 16
        array = array.astype('>u2')
    else:
        raise ValueError(f'unsupported array for PNG: shape {array.shape}, '
                         f'dtype {array.dtype}')
    height, width = array.shape[:2]
    rows = array.reshape(height, -1).view(np.uint8)
    # filter type 2 ("Up") on every row: byte minus the byte above (mod 256)
    up = np.empty_like(rows)
    up[0] = rows[0]
    up[1:] = rows[1:] - rows[:-1]
    filters = np.full((height, 1), 2, np.uint8)
    raw = np.concatenate([filters, up], axis=1).tobytes()
    header = struct.pack('>IIBBBBB', width, height, depth, colour_type, 0, 0,
                         0)
    return (_PNG_SIGNATURE + _chunk(b'IHDR', header) +
            _chunk(b'IDAT', zlib.compress(raw, compress_level)) +
            _chunk(b'IEND', b''))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file beside ``path``, then ``os.replace`` (no torn
    files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def dumps_json(obj: object) -> bytes:
    """Canonical JSON bytes (sorted keys, compact) for byte-identical files."""
    text = json.dumps(obj, sort_keys=True, separators=(',', ':'))
    return (text + '\n').encode('utf-8')


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically write an array as PNG."""
    atomic_write_bytes(path, encode_png(array))


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Atomically write canonical JSON."""
    atomic_write_bytes(path, dumps_json(obj))


def rle_uncompressed(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE of a bool mask (column-major, 0-run first)."""
    flat = np.asarray(mask, dtype=bool).ravel(order='F')
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    size = [int(mask.shape[0]), int(mask.shape[1])]
    return {'counts': [int(c) for c in counts], 'size': size}


def rle_compressed(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool mask, ``counts`` as str (json-ready)."""
    from pycocotools import mask as mask_utils
    binary = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    rle = mask_utils.encode(binary)
    return {
        'counts': rle['counts'].decode('ascii'),
        'size': [int(s) for s in rle['size']]
    }


def mask_bbox(mask: np.ndarray) -> list[int]:
    """COCO ``[x, y, w, h]`` of a non-empty mask (inclusive pixel extent)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return [
        int(cols[0]),
        int(rows[0]),
        int(cols[-1] - cols[0] + 1),
        int(rows[-1] - rows[0] + 1)
    ]
