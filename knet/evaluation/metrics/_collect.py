# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Gather per-frame metric results of all ranks, none dropped.

mmengine's ``BaseMetric.evaluate(size)`` truncates the gathered results to
``size = len(dataset)``, which for mmdet's video datasets is the number of
*videos*, and zips the rank parts (dropping the tail of the longer ones).
Frame-level video metrics therefore gather their results here instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from mmengine.dist import (all_gather_object, broadcast_object_list,
                           get_world_size, is_main_process)
from mmengine.evaluator import BaseMetric

__all__ = ['gather_all', 'evaluate_all_frames', 'field', 'unroll_frames',
           'as_int_map']


def gather_all(results: list) -> list:
    """Concatenate the ``results`` lists of every rank (rank order)."""
    if get_world_size() == 1:
        return list(results)
    out: list = []
    for part in all_gather_object(list(results)):
        out.extend(part)
    return out


def evaluate_all_frames(metric: BaseMetric) -> dict[str, Any]:
    """``BaseMetric.evaluate`` without the truncation to the dataset size:
    gather every rank's results, compute on rank 0, broadcast the dict."""
    results = gather_all(metric.results)
    if is_main_process():
        values = metric.compute_metrics(results)
        if metric.prefix:
            values = {f'{metric.prefix}/{k}': v for k, v in values.items()}
        box = [values]
    else:
        box = [None]
    broadcast_object_list(box)
    metric.results.clear()
    return box[0]


def field(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` of a dict (what mmengine's Evaluator passes) or the
    attribute of a data sample."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def unroll_frames(data_samples: Sequence[Any]) -> list:
    """Per-frame samples: ``TrackDataSample``-style ``video_data_samples``
    lists are flattened, other samples kept."""
    out = []
    for sample in data_samples:
        video = field(sample, 'video_data_samples')
        out.extend(video if video is not None else [sample])
    return out


def as_int_map(x: Any) -> np.ndarray:
    """(H, W) int64 array of a (1, H, W) / (H, W) tensor or array."""
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    return x.astype(np.int64)
