# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Segmentation and Tracking Quality (STQ, Weber et al. 2021).

Numerically the same as deeplab2's numpy ``STQuality``
(``evaluation/numpy/segmentation_and_tracking_quality.py``), which Video
K-Net copies as ``tools/utils/STQ.py``; here the per-frame work is vectorised
and split into a picklable per-frame statistic (:func:`stq_frame_stats`) so
metrics can compute frames anywhere and merge later.

Definitions (panoptic id = ``(semantic << label_bit_shift) + instance``):

* SQ (key ``'IoU'``): mean IoU of a confusion matrix accumulated per
  sequence and summed over sequences. GT pixels of ``ignore_label`` are
  dropped (their row is zeroed). When ``ignore_label >= num_classes`` the
  matrix has one extra row/column for it, and, as in deeplab2, *predicted*
  ignore pixels stay in that column: they are false negatives of the GT
  class and give the extra column a non-zero union and IoU 0, which counts in
  the mean. Classes with zero union are left out of the mean.
* AQ: over GT pixels of ``things_list`` classes with instance id != 0
  (instance 0 of a thing class is crowd and is removed from GT and
  prediction alike) and predicted pixels of thing classes, per sequence
  ``sum_g 1/|g| sum_p TPA(p,g) * TPA / (TPA + FPA + FNA)``. The total AQ is
  the sum of these over sequences divided by the total number of GT tubes;
  the per-sequence AQ divides by that sequence's tube count.
* STQ = sqrt(AQ * SQ), also per sequence.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._utils import count_pairs, count_values

__all__ = ['STQFrameStats', 'stq_frame_stats', 'STQuality']

_EPSILON = 1e-15


@dataclass
class STQFrameStats:
    """Sufficient statistics of one frame for STQ (small, picklable)."""
    confusion: np.ndarray  # (M, M) int64, rows GT / columns prediction
    gt_ids: np.ndarray  # GT tube ids and pixel counts
    gt_counts: np.ndarray
    pred_ids: np.ndarray  # predicted tube ids and pixel counts
    pred_counts: np.ndarray
    inter_gt: np.ndarray  # (gt id, pred id) intersections
    inter_pred: np.ndarray
    inter_counts: np.ndarray


def stq_frame_stats(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                    things_list: Sequence[int], ignore_label: int,
                    label_bit_shift: int) -> STQFrameStats:
    """Confusion matrix and tube/intersection areas of one frame.

    Args:
        y_true, y_pred: Panoptic id maps (any shape, same shape),
            ``(semantic << label_bit_shift) + instance``.
        num_classes, things_list, ignore_label, label_bit_shift: As in
            :class:`STQuality`.

    Raises:
        ValueError: Shapes differ, ids are negative, or a semantic label is
            neither a class id nor ``ignore_label``.
    """
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64, copy=False)
    y_pred = np.asarray(y_pred).reshape(-1).astype(np.int64, copy=False)
    if y_true.shape != y_pred.shape:
        raise ValueError(f'STQ: ground truth has {y_true.size} pixels but the'
                         f' prediction has {y_pred.size}')
    size = num_classes + 1 if ignore_label >= num_classes else num_classes
    sem_true = y_true >> label_bit_shift
    sem_pred = y_pred >> label_bit_shift
    for name, sem, ids in (('ground truth', sem_true, y_true),
                           ('prediction', sem_pred, y_pred)):
        if ids.size and ids.min() < 0:
            raise ValueError(f'STQ: negative panoptic id in the {name}')
        _check_labels(sem, num_classes, ignore_label, name)
    if ignore_label > num_classes:
        sem_true = np.where(sem_true == ignore_label, num_classes, sem_true)
        sem_pred = np.where(sem_pred == ignore_label, num_classes, sem_pred)
    confusion = np.bincount(
        sem_true * size + sem_pred, minlength=size * size).reshape(size, size)

    is_thing = np.zeros(size, bool)  # things_list is within [0, num_classes)
    is_thing[list(things_list)] = True
    label_mask = is_thing[sem_true]
    pred_mask = is_thing[sem_pred]
    bit_mask = (1 << label_bit_shift) - 1
    is_crowd = label_mask & ((y_true & bit_mask) == 0)
    label_mask &= ~is_crowd
    pred_mask &= ~is_crowd

    gt_ids, gt_counts = count_values(y_true[label_mask])
    pred_ids, pred_counts = count_values(y_pred[pred_mask])
    both = label_mask & pred_mask
    inter_gt, inter_pred, inter_counts = count_pairs(y_true[both],
                                                     y_pred[both])
    return STQFrameStats(confusion.astype(np.int64), gt_ids, gt_counts,
                         pred_ids, pred_counts, inter_gt, inter_pred,
                         inter_counts)


def _check_labels(sem: np.ndarray, num_classes: int, ignore_label: int,
                  name: str) -> None:
    if sem.size == 0:
        return
    bad = (sem >= num_classes) & (sem != ignore_label)
    if bad.any():
        raise ValueError(f'STQ: unknown semantic label(s) '
                         f'{np.unique(sem[bad])[:10].tolist()} in the {name} '
                         f'(num_classes={num_classes}, '
                         f'ignore_label={ignore_label})')


@dataclass
class _SequenceState:
    confusion: np.ndarray
    length: int = 0
    parts: list = field(default_factory=list)  # list of STQFrameStats

    def compact(self) -> None:
        """Merge the per-frame id/count arrays of this sequence."""
        if len(self.parts) <= 1:
            return
        gt = _merge_counts([(p.gt_ids, p.gt_counts) for p in self.parts])
        pr = _merge_counts([(p.pred_ids, p.pred_counts) for p in self.parts])
        ig = np.concatenate([p.inter_gt for p in self.parts])
        ip = np.concatenate([p.inter_pred for p in self.parts])
        ic = np.concatenate([p.inter_counts for p in self.parts])
        if ig.size:
            key = np.stack([ig, ip], axis=1)
            key, inv = np.unique(key, axis=0, return_inverse=True)
            ic = np.bincount(inv.reshape(-1), weights=ic,
                             minlength=len(key)).astype(np.int64)
            ig, ip = key[:, 0], key[:, 1]
        empty = np.zeros((0, 0), np.int64)
        self.parts = [
            STQFrameStats(empty, gt[0], gt[1], pr[0], pr[1], ig, ip, ic)
        ]


def _merge_counts(parts: list) -> tuple[np.ndarray, np.ndarray]:
    ids = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    if ids.size == 0:
        return ids, counts
    uniq, inv = np.unique(ids, return_inverse=True)
    return uniq, np.bincount(inv.reshape(-1), weights=counts,
                             minlength=uniq.size).astype(np.int64)


class STQuality:
    """STQ accumulator with deeplab2's ``STQuality`` interface and numbers.

    Example::

        stq = STQuality(19, [11, 13], 255, 16, 2 ** 24)
        for seq_id, gt, pred in frames:
            stq.update_state(gt, pred, seq_id)
        res = stq.result()  # 'STQ', 'AQ', 'IoU', '*_per_seq', ...

    Args:
        num_classes: Number of semantic classes.
        things_list: Class ids that have instances.
        ignore_label: GT label ignored in evaluation.
        label_bit_shift: Bits of the instance id in the panoptic id.
        offset: Kept for API compatibility; must be at least
            ``num_classes << label_bit_shift`` as in deeplab2.
    """

    def __init__(self,
                 num_classes: int,
                 things_list: Sequence[int],
                 ignore_label: int,
                 label_bit_shift: int = 16,
                 offset: int = 2**24) -> None:
        self._num_classes = int(num_classes)
        self._things_list = [int(t) for t in things_list]
        self._ignore_label = int(ignore_label)
        self._label_bit_shift = int(label_bit_shift)
        self._offset = int(offset)
        lower_bound = num_classes << label_bit_shift
        if offset < lower_bound:
            raise ValueError(
                f'The provided offset {offset} is too small: it must be at '
                f'least num_classes << label_bit_shift = {lower_bound}')
        bad = [t for t in self._things_list if not 0 <= t < num_classes]
        if bad:
            raise ValueError(f'things_list entries {bad} are not class ids '
                             f'in [0, {num_classes})')
        if ignore_label >= num_classes:
            self._size = num_classes + 1
            self._include = np.arange(num_classes)
        else:
            self._size = num_classes
            self._include = np.array(
                [i for i in range(num_classes) if i != ignore_label])
        self.reset_states()

    def reset_states(self) -> None:
        """Forget all accumulated sequences."""
        self._sequences: OrderedDict[Hashable, _SequenceState] = OrderedDict()

    def frame_stats(self, y_true: np.ndarray,
                    y_pred: np.ndarray) -> STQFrameStats:
        """Per-frame statistics with this metric's settings."""
        return stq_frame_stats(y_true, y_pred, self._num_classes,
                               self._things_list, self._ignore_label,
                               self._label_bit_shift)

    def add_frame_stats(self, stats: STQFrameStats,
                        sequence_id: Hashable = 0) -> None:
        """Add one frame's statistics to sequence ``sequence_id``."""
        state = self._sequences.get(sequence_id)
        if state is None:
            state = _SequenceState(np.zeros((self._size, self._size),
                                            np.int64))
            self._sequences[sequence_id] = state
        if stats.confusion.shape != state.confusion.shape:
            raise ValueError('STQ: frame statistics were computed with '
                             'another num_classes / ignore_label')
        state.confusion += stats.confusion
        state.length += 1
        state.parts.append(stats)
        if len(state.parts) >= 64:
            state.compact()

    def update_state(self,
                     y_true: np.ndarray,
                     y_pred: np.ndarray,
                     sequence_id: Hashable = 0) -> None:
        """Accumulate one frame (panoptic id maps) of ``sequence_id``."""
        self.add_frame_stats(self.frame_stats(y_true, y_pred), sequence_id)

    def merge_state(self, other: 'STQuality') -> None:
        """Add another accumulator's sequences (same sequence ids merge)."""
        for seq_id, state in other._sequences.items():
            mine = self._sequences.get(seq_id)
            if mine is None:
                mine = _SequenceState(np.zeros_like(state.confusion))
                self._sequences[seq_id] = mine
            mine.confusion += state.confusion
            mine.length += state.length
            mine.parts.extend(state.parts)
            mine.compact()

    def _aq_sequence(self, state: _SequenceState) -> tuple[float, int]:
        state.compact()
        if not state.parts:
            return 0.0, 0
        part = state.parts[0]
        num_tubes = part.gt_ids.size
        if part.inter_gt.size == 0:
            return 0.0, num_tubes
        gt_size = part.gt_counts[np.searchsorted(part.gt_ids, part.inter_gt)]
        pr_size = part.pred_counts[np.searchsorted(part.pred_ids,
                                                   part.inter_pred)]
        tpa = part.inter_counts.astype(np.float64)
        union = gt_size + pr_size - tpa  # TPA + FPA + FNA
        return float(np.sum(tpa * (tpa / union) / gt_size)), num_tubes

    def _mean_iou(self, confusion: np.ndarray) -> float:
        removal = np.zeros_like(confusion)
        removal[self._include, :] = 1
        confusion = confusion * removal
        inter = np.diagonal(confusion)
        union = confusion.sum(0) + confusion.sum(1) - inter
        num = np.count_nonzero(union)
        if num == 0:
            return 0.0
        iou = inter.astype(np.float64) / np.maximum(union, _EPSILON)
        return float(np.sum(iou) / num)

    def result(self) -> dict[str, Any]:
        """STQ, AQ and SQ ('IoU'), in total and per sequence.

        Returns:
            ``{'STQ', 'AQ', 'IoU', 'STQ_per_seq', 'AQ_per_seq',
            'IoU_per_seq', 'ID_per_seq', 'Length_per_seq'}`` like deeplab2
            (fractions; per-sequence values in insertion order). A sequence
            without GT tubes has AQ 0, and without any labelled pixel IoU 0.
            Warns when no GT pixel of a thing class exists at all.
        """
        aq_sums, tubes, ious, ids, lengths = [], [], [], [], []
        total = np.zeros((self._size, self._size), np.int64)
        for seq_id, state in self._sequences.items():
            aq_sum, num_tubes = self._aq_sequence(state)
            aq_sums.append(aq_sum)
            tubes.append(num_tubes)
            ious.append(self._mean_iou(state.confusion))
            total += state.confusion
            ids.append(seq_id)
            lengths.append(state.length)
        aq_sums_arr = np.asarray(aq_sums, np.float64)
        tubes_arr = np.asarray(tubes, np.float64)
        aq = float(aq_sums_arr.sum() / max(tubes_arr.sum(), _EPSILON))
        aq_per_seq = aq_sums_arr / np.maximum(tubes_arr, _EPSILON)
        iou = self._mean_iou(total)
        iou_per_seq = np.asarray(ious, np.float64)
        if total.any() and not total[self._things_list].any():
            warnings.warn(
                f'STQ: no ground-truth pixel of the thing classes '
                f'{self._things_list} exists, so AQ (and STQ) is 0; check '
                f'the thing ids (--thing-ids / things_list) for this data')
        return {
            'STQ': float(np.sqrt(aq * iou)),
            'AQ': aq,
            'IoU': iou,
            'STQ_per_seq': np.sqrt(aq_per_seq * iou_per_seq),
            'AQ_per_seq': aq_per_seq,
            'IoU_per_seq': iou_per_seq,
            'ID_per_seq': ids,
            'Length_per_seq': lengths,
        }
