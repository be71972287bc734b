# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Evaluation: image PQ, video STQ / VPQ, YouTube-VIS AP.

* :func:`pq_compute` - COCO panoptic quality with panopticapi's numbers,
  computed by hotcoco (PNG headers checked first, errors name the files);
  :func:`pq_image_stats` + :class:`PQStat` for in-memory use.
* :class:`STQuality` - STQ as deeplab2's numpy ``STQuality``.
* :class:`VideoPanopticQuality` - VPQ over windows of k frames.
* :func:`evaluate_stq` / :func:`evaluate_vpq` - folder-level evaluation used
  by ``tools/eval_d{stq,vpq}_{step,vipseg}.py``.
* mmengine metrics (registered in mmdet's ``METRICS``): ``STQMetric``,
  ``VPQMetric``, ``KNetYouTubeVISMetric``; ``VideoPanopticWriter`` writes
  the VPS result files (:mod:`.video_writers`).

All scores are fractions in [0, 1]; the command-line tools print percent.
The numpy modules do not need torch / mmengine; only ``metrics`` does (it is
skipped when OpenMMLab is not installed).
"""
from .panoptic_quality import (OFFSET, VOID, PQStat, PQStatCat, id2rgb,
                               pq_compute, pq_image_stats, pq_results, rgb2id)
from .stq import STQFrameStats, STQuality, stq_frame_stats
from .video_eval import (KITTI_STEP, VIPSEG, EvalSettings, SequenceFrames,
                         evaluate_stq, evaluate_vpq, step_sequences,
                         vipseg_sequences)
from .vpq import (VideoPanopticQuality, VPQFrameStats, pq_from_counts,
                  vpq_frame_stats, window_pq_counts)

__all__ = [
    'OFFSET', 'VOID', 'PQStat', 'PQStatCat', 'pq_compute', 'pq_image_stats',
    'pq_results', 'rgb2id', 'id2rgb', 'STQuality', 'STQFrameStats',
    'stq_frame_stats', 'VideoPanopticQuality', 'VPQFrameStats',
    'vpq_frame_stats', 'window_pq_counts', 'pq_from_counts', 'EvalSettings',
    'SequenceFrames', 'KITTI_STEP', 'VIPSEG', 'evaluate_stq', 'evaluate_vpq',
    'step_sequences', 'vipseg_sequences'
]

try:  # mmengine metrics, registered in mmdet's METRICS on import
    from .metrics import (KNetYouTubeVISMetric, KNetYTVISeval, STQMetric,
                          VPQMetric)
    from .video_writers import VideoPanopticWriter
except ModuleNotFoundError as err:  # numpy-only use without OpenMMLab
    if (err.name or '').split('.')[0] not in ('mmengine', 'mmdet', 'mmcv',
                                              'torch'):
        raise
else:
    __all__ += [
        'STQMetric', 'VPQMetric', 'KNetYouTubeVISMetric', 'KNetYTVISeval',
        'VideoPanopticWriter'
    ]
