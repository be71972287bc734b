# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Helpers shared by the writers: per-sample RNG streams, progress bars."""
from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np


def sample_rng(seed: int, task: str, split: str,
               index: int) -> np.random.Generator:
    """RNG of one sample, so that sample i never depends on split sizes."""
    key = [
        int(seed),
        zlib.crc32(task.encode()),
        zlib.crc32(split.encode()),
        int(index)
    ]
    return np.random.default_rng(np.random.SeedSequence(key))


def progress(n: int, desc: str, enabled: bool) -> Iterable[int]:
    """``range(n)``, wrapped in a tqdm bar when enabled (lazy import)."""
    if not enabled:
        return range(n)
    from tqdm import tqdm
    return tqdm(range(n), desc=desc, unit='sample', leave=False)


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """COCO panoptic id map -> RGB uint8 (id = R + 256 G + 256^2 B)."""
    ids = ids.astype(np.int64)
    rgb = np.stack([ids % 256, (ids // 256) % 256, ids // 65536], axis=-1)
    return rgb.astype(np.uint8)
