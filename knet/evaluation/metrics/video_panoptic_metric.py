# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""mmengine metrics for video panoptic segmentation: STQ and VPQ.

Both consume one entry per video frame and are dist-safe: ``process`` turns
each frame into small statistics right away and ``compute_metrics`` merges
them after mmengine has gathered the results of all ranks.

Expected per-frame fields (a dict, as mmengine's Evaluator passes, or a data
sample object; ``TrackDataSample``-style ``video_data_samples`` lists are
unrolled):

* ``pred_panoptic_seg.sem_seg``: (1, H, W) or (H, W) tensor / array in
  mmdet's encoding ``class + instance * label_divisor`` (``label_divisor``
  1000 like ``mmdet.evaluation.INSTANCE_OFFSET``); a class outside
  ``[0, num_classes)`` (mmdet uses ``num_classes``) is void;
* ``gt_panoptic_seg.sem_seg``: the ground truth in the same encoding, any
  class outside ``[0, num_classes)`` is void (instance 0 of a thing class is
  crowd for STQ);
* the sequence id under ``seq_key`` (default ``'video_id'``, falling back to
  ``'seq_id'``) and the frame index under ``frame_key`` (default
  ``'frame_id'``, falling back to ``'img_id'``).

In mmengine's test loop (``TrackImgSampler``: one frame per sample, whole
videos per rank) the Evaluator passes ``TrackDataSample.to_dict()``, i.e.
``{'video_data_samples': [DetDataSample, ...], ...}``; every frame of every
rank is gathered (mmengine's default ``evaluate`` would keep only
``len(dataset)`` = number-of-videos results).

Scores are fractions in [0, 1]. ``protocol`` is ``'official'`` (default:
the benchmarks' rules) or ``'videoknet'`` (Video K-Net's eval scripts), see
:mod:`knet.evaluation.video_protocol`; the protocol is logged with the
results. The VIP-Seg-only rule of the official STQ (a thing numbered 0 by
``eval_stq_vspw.py`` is crowd) needs the raw panomasks and is applied by
``tools/eval_dstq_vipseg.py`` only.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..stq import STQuality
from ..video_protocol import OFFICIAL, check_windows, get_protocol
from ..vpq import VideoPanopticQuality, vpq_frame_stats, window_pq_counts
from ._collect import as_int_map as _as_numpy
from ._collect import field as _field
from ._collect import evaluate_all_frames
from ._collect import unroll_frames as _frames

__all__ = ['STQMetric', 'VPQMetric']

_SHIFT = 16


class _VideoPanopticBase(BaseMetric):
    default_prefix = 'video'

    def __init__(self,
                 num_classes: int,
                 thing_ids: Sequence[int],
                 ignore_label: int = 255,
                 label_divisor: int = 1000,
                 seq_key: str = 'video_id',
                 frame_key: str = 'frame_id',
                 collect_device: str = 'cpu',
                 prefix: str | None = None,
                 protocol: str = OFFICIAL) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.protocol = get_protocol(protocol)
        self.num_classes = int(num_classes)
        self.thing_ids = [int(t) for t in thing_ids]
        self.ignore_label = int(ignore_label)
        self.label_divisor = int(label_divisor)
        self.seq_key = seq_key
        self.frame_key = frame_key

    def evaluate(self, size: int = 1) -> dict:
        """Metrics over every processed frame of every rank (``size``, the
        number of videos for mmdet's video datasets, is ignored)."""
        return evaluate_all_frames(self)

    def _meta(self, frame: Any) -> tuple[Any, Any]:
        seq = _field(frame, self.seq_key, _field(frame, 'seq_id'))
        idx = _field(frame, self.frame_key, _field(frame, 'img_id'))
        if seq is None or idx is None:
            raise KeyError(f'{type(self).__name__}: each frame needs '
                           f'"{self.seq_key}" (or "seq_id") and '
                           f'"{self.frame_key}" (or "img_id")')
        return seq, idx

    def _ids(self, frame: Any, key: str) -> np.ndarray:
        """Re-encode a panoptic map as (class << 16) + instance, void ->
        ignore_label."""
        seg = _field(frame, key)
        if seg is None:
            raise KeyError(f'{type(self).__name__}: frame has no "{key}"')
        pan = _as_numpy(_field(seg, 'sem_seg'))
        cls = pan % self.label_divisor
        ins = pan // self.label_divisor
        void = (cls < 0) | (cls >= self.num_classes)
        cls = np.where(void, self.ignore_label, cls)
        ins = np.where(void, 0, ins)
        if ins.size and ins.max() >= 1 << _SHIFT:
            raise ValueError(f'{type(self).__name__}: instance id >= 2**16')
        return (cls << _SHIFT) + ins


@METRICS.register_module()
class STQMetric(_VideoPanopticBase):
    """Segmentation and Tracking Quality (deeplab2 ``STQuality`` numbers).

    Returns ``STQ``, ``AQ`` and ``SQ`` (prefixed ``video/``).

    Args:
        num_classes: Number of classes.
        thing_ids: Thing classes (AQ is computed on them).
        ignore_label: Void label (default 255).
        label_divisor: Instance multiplier of the panoptic encoding.
        seq_key, frame_key: Metainfo keys of the sequence / frame ids.
        protocol: ``'official'`` scores whole frames (deeplab2
            ``STQuality``); ``'videoknet'`` removes GT-void pixels first.
        drop_gt_void: Override the protocol's GT-void rule (None: keep it).
    """

    def __init__(self, *args, drop_gt_void: bool | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.drop_gt_void = (self.protocol.drop_gt_void
                             if drop_gt_void is None else bool(drop_gt_void))
        self._stq = STQuality(self.num_classes, self.thing_ids,
                              self.ignore_label, _SHIFT,
                              max(2**24, self.num_classes << _SHIFT))

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for frame in _frames(data_samples):
            seq, idx = self._meta(frame)
            gt = self._ids(frame, 'gt_panoptic_seg').reshape(-1)
            pred = self._ids(frame, 'pred_panoptic_seg').reshape(-1)
            if gt.shape != pred.shape:
                raise ValueError(f'STQMetric: GT and prediction sizes differ '
                                 f'(sequence {seq}, frame {idx})')
            if self.drop_gt_void:
                keep = (gt >> _SHIFT) != self.ignore_label
                gt, pred = gt[keep], pred[keep]
            self.results.append((seq, idx, self._stq.frame_stats(gt, pred)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        stq = STQuality(self.num_classes, self.thing_ids, self.ignore_label,
                        _SHIFT, max(2**24, self.num_classes << _SHIFT))
        for seq, _, stats in sorted(results, key=lambda r: (str(r[0]),
                                                            str(r[1]))):
            stq.add_frame_stats(stats, seq)
        res = stq.result()
        void = 'GT void removed' if self.drop_gt_void else 'whole frames'
        print_log(f'STQMetric: protocol {self.protocol.name} ({void})',
                  logger='current')
        return {'STQ': float(res['STQ']), 'AQ': float(res['AQ']),
                'SQ': float(res['IoU'])}


@METRICS.register_module()
class VPQMetric(_VideoPanopticBase):
    """Video Panoptic Quality over windows of ``k`` frames (mean over k).

    Returns ``VPQ``, ``VPQ_th``, ``VPQ_st`` and ``VPQ@k``, ``VPQ@k_th``,
    ``VPQ@k_st`` for every window size (prefixed ``video/``).

    Args:
        windows: Window sizes; None: the protocol's for ``benchmark``
            (KITTI-STEP 1-4; VIP-Seg official 1, 2, 4, 6, 8, Video K-Net's
            1, 2, 4, 6).
        benchmark: ``'kitti-step'`` or ``'vipseg'``: picks the default
            windows.
        protocol: ``'official'``: a video shorter than k adds nothing at k;
            ``'videoknet'``: it is scored as one shorter window.
        Other arguments as :class:`STQMetric`.
    """

    BENCHMARKS = ('kitti-step', 'vipseg')

    def __init__(self, *args, windows: Sequence[int] | None = None,
                 benchmark: str = 'kitti-step', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if benchmark not in self.BENCHMARKS:
            raise ValueError(f'VPQMetric: benchmark={benchmark!r}; expected '
                             f'one of {self.BENCHMARKS}')
        if windows is None:
            windows = (self.protocol.vipseg_windows if benchmark == 'vipseg'
                       else self.protocol.step_windows)
        self.windows = check_windows(windows)

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for frame in _frames(data_samples):
            seq, idx = self._meta(frame)
            stats = vpq_frame_stats(self._ids(frame, 'gt_panoptic_seg'),
                                    self._ids(frame, 'pred_panoptic_seg'))
            self.results.append((seq, idx, stats))

    def compute_metrics(self, results: list) -> dict[str, float]:
        per_seq: defaultdict[Any, dict] = defaultdict(dict)
        for seq, idx, stats in results:
            if idx in per_seq[seq]:
                raise ValueError(f'VPQMetric: frame {idx!r} of sequence '
                                 f'{seq!r} was processed twice')
            per_seq[seq][idx] = stats
        vpq = VideoPanopticQuality(self.num_classes, self.thing_ids,
                                   self.ignore_label, 1 << _SHIFT,
                                   self.windows, protocol=self.protocol.name)
        clip = self.protocol.clip_short_sequences
        for seq in sorted(per_seq, key=str):
            frames = [per_seq[seq][i] for i in sorted(per_seq[seq])]
            vpq.add_counts({
                k: window_pq_counts(frames, k, self.num_classes,
                                    self.ignore_label, 1 << _SHIFT,
                                    clip_short=clip)
                for k in self.windows
            })
        res = vpq.result()
        short = 'one shorter window' if clip else 'skipped'
        print_log(f'VPQMetric: protocol {self.protocol.name} (windows '
                  f'{self.windows}; videos shorter than k: {short})',
                  logger='current')
        out = {'VPQ': res['VPQ'], 'VPQ_th': res['VPQ_th'],
               'VPQ_st': res['VPQ_st']}
        for k, r in res['per_window'].items():
            out[f'VPQ@{k}'] = r['PQ']
            out[f'VPQ@{k}_th'] = r['PQ_th']
            out[f'VPQ@{k}_st'] = r['PQ_st']
        return out
