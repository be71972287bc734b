# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video panoptic quality (VPQ) as used for KITTI-STEP and VIP-Seg.

For a window size ``k`` every run of ``k`` consecutive frames of a sequence
is scored as one image (the frames side by side, as Video K-Net's
``eval_dvpq_*`` scripts do), so a segment is a spatio-temporal tube and a
track that changes id inside the window cannot match as a whole:

* panoptic id = ``class * label_divisor + instance``; GT pixels of
  ``ignore_label`` (any instance) are void;
* a GT tube and a predicted tube of the same class match when
  ``IoU > 0.5``, the union leaving out the prediction's part on void;
* unmatched non-void GT tubes are false negatives; an unmatched predicted
  tube is a false positive unless more than half of it lies on void;
* no crowd handling: instance 0 of a thing class is an ordinary segment;
  predicted pixels of ``ignore_label`` are unlabelled (not a segment);
* TP / FP / FN / IoU sums accumulate over all windows of all sequences;
  classes with ``tp + fp + fn == 0`` are left out of the class means;
  ``PQ_th`` / ``PQ_st`` average over thing / stuff classes;
* VPQ is the mean of the window PQs over the window sizes (likewise
  ``VPQ_th`` and ``VPQ_st``). A sequence shorter than ``k`` contributes
  nothing at ``k`` (the official scripts: window starts
  ``0 .. len - k``); with ``protocol='videoknet'`` it is scored as one
  window of all its frames, as this port's Video K-Net tools did. A window
  size with no window in any sequence has PQ 0 (with a warning; the
  official VIP-Seg script would divide by zero there).

Windows are not built by concatenating images: a window's contingency table
is the sum of its frames' tables (bincount of pairs of ids per frame), which
is exactly what concatenation gives, and all windows of a sequence are
matched in one vectorised pass.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import warnings

import numpy as np

from ._utils import count_pairs
from .video_protocol import OFFICIAL, check_windows, get_protocol

__all__ = [
    'VPQFrameStats', 'vpq_frame_stats', 'window_pq_counts', 'pq_from_counts',
    'VideoPanopticQuality'
]


@dataclass
class VPQFrameStats:
    """Contingency table of one frame: distinct (GT id, pred id) and counts."""
    gt_ids: np.ndarray
    pred_ids: np.ndarray
    counts: np.ndarray


def vpq_frame_stats(gt: np.ndarray, pred: np.ndarray) -> VPQFrameStats:
    """Pair counts of one frame from its GT and predicted panoptic id maps.

    Raises:
        ValueError: The two maps differ in shape.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f'VPQ: ground-truth shape {gt.shape} != prediction '
                         f'shape {pred.shape}')
    return VPQFrameStats(*count_pairs(gt, pred))


def window_pq_counts(frames: Sequence[VPQFrameStats], window: int,
                     num_classes: int, ignore_label: int,
                     label_divisor: int,
                     clip_short: bool = False) -> np.ndarray:
    """TP / FP / FN / IoU-sum per class over all ``window``-frame windows.

    Args:
        frames: Per-frame statistics of one sequence, in frame order.
        window: Frames per window (an integer >= 1).
        num_classes: Classes are ``0 .. num_classes - 1``.
        ignore_label: The void class.
        label_divisor: ``id = class * label_divisor + instance``.
        clip_short: A sequence shorter than ``window`` is one window of all
            its frames (``videoknet`` protocol) instead of contributing
            nothing (official).

    Returns:
        (4, num_classes) float64 array: rows iou, tp, fp, fn.
    """
    window = check_windows([window])[0]
    out = np.zeros((4, num_classes), np.float64)
    num_frames = len(frames)
    if num_frames == 0 or (num_frames < window and not clip_short):
        return out
    k = min(window, num_frames)
    num_windows = num_frames - k + 1
    frame_idx = np.concatenate(
        [np.full(f.counts.size, i, np.int64) for i, f in enumerate(frames)])
    g_all = np.concatenate([f.gt_ids for f in frames])
    p_all = np.concatenate([f.pred_ids for f in frames])
    c_all = np.concatenate([f.counts for f in frames]).astype(np.float64)
    if c_all.size == 0:
        return out
    g_uniq, g_inv = np.unique(g_all, return_inverse=True)
    p_uniq, p_inv = np.unique(p_all, return_inverse=True)
    g_inv, p_inv = g_inv.reshape(-1), p_inv.reshape(-1)
    # frame f belongs to windows f-k+1 .. f (those that exist)
    win, gi, pi, cnt = [], [], [], []
    for j in range(k):
        w = frame_idx - j
        ok = (w >= 0) & (w < num_windows)
        win.append(w[ok])
        gi.append(g_inv[ok])
        pi.append(p_inv[ok])
        cnt.append(c_all[ok])
    win, gi = np.concatenate(win), np.concatenate(gi)
    pi, cnt = np.concatenate(pi), np.concatenate(cnt)
    n_g, n_p = g_uniq.size, p_uniq.size
    # one row per (window, gt id, pred id)
    key = (win * n_g + gi) * n_p + pi
    key, inv = np.unique(key, return_inverse=True)
    inter = np.bincount(inv.reshape(-1), weights=cnt, minlength=key.size)
    pi = key % n_p
    gkey = key // n_p  # window * n_g + gi
    pkey = (key // (n_p * n_g)) * n_p + pi  # window * n_p + pi
    g_cls = g_uniq[gkey % n_g] // label_divisor
    p_cls = p_uniq[pi] // label_divisor

    gseg, g_of_row = np.unique(gkey, return_inverse=True)
    pseg, p_of_row = np.unique(pkey, return_inverse=True)
    g_of_row, p_of_row = g_of_row.reshape(-1), p_of_row.reshape(-1)
    g_area = np.bincount(g_of_row, weights=inter, minlength=gseg.size)
    p_area = np.bincount(p_of_row, weights=inter, minlength=pseg.size)
    gt_void_row = g_cls == ignore_label
    void_area = np.bincount(p_of_row[gt_void_row],
                            weights=inter[gt_void_row], minlength=pseg.size)
    gseg_cls = g_uniq[gseg % n_g] // label_divisor
    pseg_cls = p_uniq[pseg % n_p] // label_divisor
    _check_classes(gseg_cls, num_classes, ignore_label, 'ground truth')
    _check_classes(pseg_cls, num_classes, ignore_label, 'prediction')

    cand = (g_cls == p_cls) & ~gt_void_row
    union = g_area[g_of_row] + p_area[p_of_row] - inter - void_area[p_of_row]
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = inter / union
    tp = cand & (iou > 0.5)
    g_matched = np.zeros(gseg.size, bool)
    g_matched[g_of_row[tp]] = True
    p_matched = np.zeros(pseg.size, bool)
    p_matched[p_of_row[tp]] = True

    out[0] = np.bincount(g_cls[tp], weights=iou[tp], minlength=num_classes)
    out[1] = np.bincount(g_cls[tp], minlength=num_classes)
    fp = ~p_matched & (pseg_cls != ignore_label) & ~(void_area / p_area > 0.5)
    out[2] = np.bincount(pseg_cls[fp], minlength=num_classes)
    fn = ~g_matched & (gseg_cls != ignore_label)
    out[3] = np.bincount(gseg_cls[fn], minlength=num_classes)
    return out


def _check_classes(cls: np.ndarray, num_classes: int, ignore_label: int,
                   name: str) -> None:
    bad = (cls < 0) | ((cls >= num_classes) & (cls != ignore_label))
    if bad.any():
        raise ValueError(f'VPQ: unknown class id(s) '
                         f'{np.unique(cls[bad])[:10].tolist()} in the {name} '
                         f'(num_classes={num_classes}, '
                         f'ignore_label={ignore_label})')


def pq_from_counts(counts: np.ndarray,
                   thing_ids: Sequence[int]) -> dict[str, Any]:
    """Class-averaged PQ / SQ / RQ (all, things, stuff) from (4, C) counts.

    Classes with ``tp + fp + fn == 0`` are left out; an empty subset gives 0
    with ``n == 0``.
    """
    iou, tp, fp, fn = counts
    num_classes = counts.shape[1]
    denom = tp + 0.5 * fp + 0.5 * fn
    valid = denom > 0
    with np.errstate(divide='ignore', invalid='ignore'):
        pq = np.where(valid, iou / denom, 0.0)
        sq = np.where(tp > 0, iou / tp, 0.0)
        rq = np.where(valid, tp / denom, 0.0)
    is_thing = np.zeros(num_classes, bool)
    is_thing[list(thing_ids)] = True
    out: dict[str, Any] = {}
    for suffix, sel in (('', valid), ('_th', valid & is_thing),
                        ('_st', valid & ~is_thing)):
        n = int(sel.sum())
        out['PQ' + suffix] = float(pq[sel].mean()) if n else 0.0
        out['SQ' + suffix] = float(sq[sel].mean()) if n else 0.0
        out['RQ' + suffix] = float(rq[sel].mean()) if n else 0.0
        out['n' + suffix] = n
    out['per_class'] = {
        int(c): {'PQ': float(pq[c]), 'SQ': float(sq[c]), 'RQ': float(rq[c]),
                 'tp': int(tp[c]), 'fp': int(fp[c]), 'fn': int(fn[c])}
        for c in np.flatnonzero(valid)
    }
    return out


class VideoPanopticQuality:
    """VPQ accumulator over sequences of frames.

    Example::

        vpq = VideoPanopticQuality(19, [11, 13], windows=(1, 2, 3, 4))
        for seq_id, frame_idx, gt, pred in frames:
            vpq.update(gt, pred, seq_id, frame_idx)
        res = vpq.result()  # 'VPQ', 'VPQ_th', 'VPQ_st', 'per_window'

    Args:
        num_classes: Classes ``0 .. num_classes - 1``.
        thing_ids: Thing classes (for ``*_th``; the rest are stuff).
        ignore_label: Void class (default 255).
        label_divisor: ``id = class * label_divisor + instance``
            (default 2**16, the STEP scripts' ``max_ins``).
        windows: Window sizes ``k`` (frames per window).
        protocol: ``'official'`` (a sequence shorter than ``k`` adds
            nothing at ``k``) or ``'videoknet'`` (it is one shorter window).
    """

    def __init__(self,
                 num_classes: int,
                 thing_ids: Sequence[int],
                 ignore_label: int = 255,
                 label_divisor: int = 2**16,
                 windows: Sequence[int] = (1, 2, 3, 4),
                 protocol: str = OFFICIAL) -> None:
        self.num_classes = int(num_classes)
        self.thing_ids = [int(t) for t in thing_ids]
        self.ignore_label = int(ignore_label)
        self.label_divisor = int(label_divisor)
        self.windows = check_windows(windows)
        self.protocol = get_protocol(protocol).name
        self._clip_short = get_protocol(protocol).clip_short_sequences
        if any(not 0 <= t < num_classes for t in self.thing_ids):
            raise ValueError(f'thing_ids {thing_ids} outside [0, '
                             f'{num_classes})')
        self.reset()

    def reset(self) -> None:
        """Forget all frames."""
        self._frames: defaultdict[Hashable, dict[Any, VPQFrameStats]] = \
            defaultdict(dict)
        self._counts: dict[int, np.ndarray] | None = None

    def add_frame_stats(self, stats: VPQFrameStats, sequence_id: Hashable,
                        frame_index: Any) -> None:
        """Add one frame's pair counts; frames are ordered by frame_index."""
        if frame_index in self._frames[sequence_id]:
            raise ValueError(f'VPQ: frame {frame_index!r} of sequence '
                             f'{sequence_id!r} was added twice')
        self._frames[sequence_id][frame_index] = stats

    def update(self, gt: np.ndarray, pred: np.ndarray,
               sequence_id: Hashable, frame_index: Any) -> None:
        """Add one frame from its GT / predicted panoptic id maps."""
        self.add_frame_stats(vpq_frame_stats(gt, pred), sequence_id,
                             frame_index)

    def sequence_counts(self, sequence_id: Hashable) -> dict[int, np.ndarray]:
        """(4, C) counts of every window size for one sequence."""
        frames = self._frames[sequence_id]
        ordered = [frames[k] for k in sorted(frames)]
        return {
            k: window_pq_counts(ordered, k, self.num_classes,
                                self.ignore_label, self.label_divisor,
                                clip_short=self._clip_short)
            for k in self.windows
        }

    def add_counts(self, counts: dict[int, np.ndarray]) -> None:
        """Add precomputed per-window counts (e.g. from a worker process)."""
        if self._counts is None:
            self._counts = {
                k: np.zeros((4, self.num_classes)) for k in self.windows
            }
        for k in self.windows:
            self._counts[k] += counts[k]

    def result(self) -> dict[str, Any]:
        """VPQ / VPQ_th / VPQ_st (fractions), each window's PQ values and
        the protocol name; warns when a window size has no window or no GT
        segment of a thing class exists."""
        total = {k: np.zeros((4, self.num_classes)) for k in self.windows}
        if self._counts is not None:
            for k in self.windows:
                total[k] += self._counts[k]
        for seq_id in self._frames:
            for k, c in self.sequence_counts(seq_id).items():
                total[k] += c
        per_window = {
            str(k): pq_from_counts(total[k], self.thing_ids)
            for k in self.windows
        }
        _warn_empty(total, self.thing_ids)
        return {
            'protocol': self.protocol,
            'VPQ': float(np.mean([v['PQ'] for v in per_window.values()])),
            'VPQ_th':
            float(np.mean([v['PQ_th'] for v in per_window.values()])),
            'VPQ_st':
            float(np.mean([v['PQ_st'] for v in per_window.values()])),
            'per_window': per_window,
        }


def _warn_empty(total: dict[int, np.ndarray],
                thing_ids: Sequence[int]) -> None:
    """Warn about window sizes without any window and about missing things
    (a wrong thing list silently scores things 0)."""
    empty = [k for k, c in total.items() if not c[1:].any()]
    if empty:
        warnings.warn(f'VPQ: no window of {min(empty)} or more frames was '
                      f'scored (no sequence is that long, or no frames), so '
                      f'window size(s) {empty} score 0 in the mean (the '
                      f'official protocol skips sequences shorter than the '
                      f'window); choose --windows that fit the sequences')
    gt_segments = sum(c[1] + c[3] for c in total.values())  # tp + fn
    if gt_segments.any() and not gt_segments[list(thing_ids)].any():
        warnings.warn(f'VPQ: no ground-truth segment of the thing classes '
                      f'{list(thing_ids)} exists, so VPQ_th is 0; check the '
                      f'thing ids (--thing-ids / thing_ids) for this data')
