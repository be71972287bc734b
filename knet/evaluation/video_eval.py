# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Folder-level STQ / VPQ evaluation shared by the ``tools/eval_d*`` scripts.

A dataset is described as a list of :class:`SequenceFrames` (picklable file
lists); sequences are evaluated independently, optionally in worker
processes, and merged in a fixed order so the numbers do not depend on
``nproc``.
"""
from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .stq import STQuality
from .video_io import (VIPSEG_NUM_CLASSES, VIPSEG_NUM_STUFF,
                       find_sequence_dir, list_frames, match_frames,
                       read_cat_ins_pair, read_step_png, read_vipseg_gt)
from .vpq import VideoPanopticQuality, vpq_frame_stats, window_pq_counts

__all__ = [
    'SequenceFrames', 'EvalSettings', 'step_sequences', 'vipseg_sequences',
    'evaluate_stq', 'evaluate_vpq', 'KITTI_STEP', 'VIPSEG'
]

BIT_SHIFT = 16  # panoptic id = (class << 16) + instance


@dataclass
class EvalSettings:
    """Label space of a dataset."""
    num_classes: int
    thing_ids: tuple[int, ...]
    ignore_label: int = 255


KITTI_STEP = EvalSettings(19, (11, 13), 255)
VIPSEG = EvalSettings(VIPSEG_NUM_CLASSES,
                      tuple(range(VIPSEG_NUM_STUFF, VIPSEG_NUM_CLASSES)), 255)


@dataclass
class SequenceFrames:
    """The frames of one sequence: ``(kind, paths)`` for GT and prediction.

    ``kind`` is ``'step'`` (one RGB PNG), ``'catins'`` (cat + ins PNGs) or
    ``'vipseg'`` (one VIP-Seg panomask).
    """
    seq_id: str
    gt: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    pred: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


_READERS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    'step': read_step_png,
    'catins': read_cat_ins_pair,
    'vipseg': read_vipseg_gt,
}


def _load(entry: tuple[str, tuple[str, ...]]) -> tuple[np.ndarray,
                                                       np.ndarray]:
    kind, paths = entry
    return _READERS[kind](*paths)


def _check(cls: np.ndarray, ins: np.ndarray, settings: EvalSettings,
           paths: Sequence[str]) -> None:
    bad = (cls >= settings.num_classes) & (cls != settings.ignore_label)
    if bad.any():
        raise ValueError(
            f'Unknown class id(s) {np.unique(cls[bad])[:10].tolist()} in '
            f'{", ".join(paths)} (num_classes={settings.num_classes}, '
            f'ignore_label={settings.ignore_label})')
    if ins.size and ins.max() >= 1 << BIT_SHIFT:
        raise ValueError(f'Instance id >= 2**{BIT_SHIFT} in '
                         f'{", ".join(paths)}')


def _load_pair(seq: SequenceFrames, i: int, settings: EvalSettings
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    gt_cls, gt_ins = _load(seq.gt[i])
    pr_cls, pr_ins = _load(seq.pred[i])
    if gt_cls.shape != pr_cls.shape:
        raise ValueError(
            f'Size mismatch: prediction {", ".join(seq.pred[i][1])} is '
            f'{pr_cls.shape[::-1]} (W, H) but ground truth '
            f'{", ".join(seq.gt[i][1])} is {gt_cls.shape[::-1]}')
    _check(gt_cls, gt_ins, settings, seq.gt[i][1])
    _check(pr_cls, pr_ins, settings, seq.pred[i][1])
    return gt_cls, gt_ins, pr_cls, pr_ins


def _stq_sequence(args: tuple) -> STQuality:
    seq, settings, drop_gt_void = args
    stq = STQuality(settings.num_classes, settings.thing_ids,
                    settings.ignore_label, BIT_SHIFT,
                    max(2**24, settings.num_classes << BIT_SHIFT))
    for i in range(len(seq.gt)):
        gt_cls, gt_ins, pr_cls, pr_ins = _load_pair(seq, i, settings)
        gt = (gt_cls << BIT_SHIFT) + gt_ins
        pred = (pr_cls << BIT_SHIFT) + pr_ins
        if drop_gt_void:
            keep = gt_cls != settings.ignore_label
            gt, pred = gt[keep], pred[keep]
        stq.update_state(gt, pred, seq.seq_id)
    return stq


def _vpq_sequence(args: tuple) -> dict[int, np.ndarray]:
    seq, settings, windows = args
    frames = []
    for i in range(len(seq.gt)):
        gt_cls, gt_ins, pr_cls, pr_ins = _load_pair(seq, i, settings)
        frames.append(
            vpq_frame_stats((gt_cls << BIT_SHIFT) + gt_ins,
                            (pr_cls << BIT_SHIFT) + pr_ins))
    return {
        k: window_pq_counts(frames, k, settings.num_classes,
                            settings.ignore_label, 1 << BIT_SHIFT)
        for k in windows
    }


def _run(worker: Callable, jobs: list, sequences: Sequence[SequenceFrames],
         nproc: int, progress: bool) -> list:
    """Map ``worker`` over jobs (in order), with a per-frame progress bar."""
    total = sum(len(s.gt) for s in sequences)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit='frame', dynamic_ncols=True)
    results = []
    try:
        if nproc > 1 and len(jobs) > 1:
            with multiprocessing.Pool(min(nproc, len(jobs))) as pool:
                for seq, res in zip(sequences, pool.imap(worker, jobs)):
                    results.append(res)
                    if bar is not None:
                        bar.update(len(seq.gt))
        else:
            for seq, job in zip(sequences, jobs):
                results.append(worker(job))
                if bar is not None:
                    bar.update(len(seq.gt))
    finally:
        if bar is not None:
            bar.close()
    return results


def evaluate_stq(sequences: Sequence[SequenceFrames],
                 settings: EvalSettings,
                 nproc: int = 1,
                 drop_gt_void: bool = True,
                 progress: bool = False) -> dict[str, Any]:
    """STQ over sequences of frame files.

    Args:
        sequences: Frames per sequence (GT / prediction file entries).
        settings: Class count, thing classes, ignore label.
        nproc: Worker processes over sequences.
        drop_gt_void: Remove GT-void pixels before scoring, as Video K-Net's
            ``eval_dstq_*`` scripts do (predicted thing pixels there then do
            not count against AQ). False scores whole frames like deeplab2's
            class used directly.
        progress: Show a tqdm bar.

    Returns:
        ``{'STQ', 'AQ', 'SQ', 'per_sequence': {seq: {'STQ', 'AQ', 'SQ',
        'num_frames'}}}`` with fractions in [0, 1].
    """
    jobs = [(s, settings, drop_gt_void) for s in sequences]
    parts = _run(_stq_sequence, jobs, sequences, nproc, progress)
    total = STQuality(settings.num_classes, settings.thing_ids,
                      settings.ignore_label, BIT_SHIFT,
                      max(2**24, settings.num_classes << BIT_SHIFT))
    for part in parts:
        total.merge_state(part)
    res = total.result()
    per_seq = {
        str(sid): {'STQ': float(s), 'AQ': float(a), 'SQ': float(q),
                   'num_frames': int(n)}
        for sid, s, a, q, n in zip(res['ID_per_seq'], res['STQ_per_seq'],
                                   res['AQ_per_seq'], res['IoU_per_seq'],
                                   res['Length_per_seq'])
    }
    return {'STQ': float(res['STQ']), 'AQ': float(res['AQ']),
            'SQ': float(res['IoU']), 'per_sequence': per_seq}


def evaluate_vpq(sequences: Sequence[SequenceFrames],
                 settings: EvalSettings,
                 windows: Sequence[int] = (1, 2, 3, 4),
                 nproc: int = 1,
                 progress: bool = False) -> dict[str, Any]:
    """VPQ over sequences of frame files (see :mod:`knet.evaluation.vpq`).

    Returns:
        ``{'VPQ', 'VPQ_th', 'VPQ_st', 'per_window': {'k': {'PQ', 'PQ_th',
        'PQ_st', ...}}}`` with fractions in [0, 1].
    """
    windows = [int(k) for k in windows]
    jobs = [(s, settings, windows) for s in sequences]
    parts = _run(_vpq_sequence, jobs, sequences, nproc, progress)
    vpq = VideoPanopticQuality(settings.num_classes, settings.thing_ids,
                               settings.ignore_label, 1 << BIT_SHIFT, windows)
    for part in parts:
        vpq.add_counts(part)
    return vpq.result()


def _gt_frames(gt_dir: str) -> list[str]:
    names = list_frames(gt_dir)
    if not names:
        raise FileNotFoundError(f'No ground-truth PNG frames in {gt_dir}')
    return names


def _pred_entries(pred_dir: str, gt_dir: str,
                  gt_names: Sequence[str]) -> list[tuple[str, tuple]]:
    """Prediction entries of one sequence folder, STEP or cat/ins format."""
    names = list_frames(pred_dir)
    cats = [n for n in names if n.endswith('_cat.png')]
    if cats:
        inss = [n for n in names if n.endswith('_ins.png')]
        cat_stems = [n[:-len('_cat.png')] for n in cats]
        ins_stems = {n[:-len('_ins.png')] for n in inss}
        lonely = [s for s in cat_stems if s not in ins_stems]
        if lonely:
            raise FileNotFoundError(
                f'Missing instance map '
                f'{os.path.join(pred_dir, lonely[0] + "_ins.png")}')
        ordered = match_frames(gt_dir, gt_names, pred_dir, cats,
                               by_name=False)
        return [('catins', (os.path.join(pred_dir, c),
                            os.path.join(pred_dir, c[:-8] + '_ins.png')))
                for c in ordered]
    by_name = bool(set(names) & set(gt_names)) or not names
    ordered = match_frames(gt_dir, gt_names, pred_dir, names, by_name)
    return [('step', (os.path.join(pred_dir, n), )) for n in ordered]


def step_sequences(pred_root: str, gt_root: str) -> list[SequenceFrames]:
    """KITTI-STEP style folders: ``{seq}/{frame}.png`` in both roots.

    Every GT sequence folder needs a prediction folder with one PNG per GT
    frame (same file names): ``pred_root/{seq}``, or for a Video K-Net output
    root ``pred_root/final/{seq:04d}`` (STEP PNGs) or
    ``pred_root/panoptic/{int(seq)}`` (``*_cat.png`` / ``*_ins.png``, paired
    by order). Prediction sequences without GT are skipped with a warning.
    """
    if not os.path.isdir(gt_root):
        raise FileNotFoundError(f'Ground-truth folder not found: {gt_root}')
    if not os.path.isdir(pred_root):
        raise FileNotFoundError(f'Prediction folder not found: {pred_root}')
    seqs = sorted(d for d in os.listdir(gt_root)
                  if os.path.isdir(os.path.join(gt_root, d)))
    if not seqs:
        raise FileNotFoundError(f'No sequence folders in {gt_root}')
    extra = sorted(
        set(d for d in os.listdir(pred_root)
            if d.isdigit() and os.path.isdir(os.path.join(pred_root, d))) -
        set(seqs))
    if extra:
        warnings.warn(f'Prediction sequence folder(s) '
                      f'{[os.path.join(pred_root, e) for e in extra]} have no '
                      f'ground truth in {gt_root}; they are not evaluated')
    out = []
    for seq in seqs:
        gt_dir = os.path.join(gt_root, seq)
        gt_names = _gt_frames(gt_dir)
        candidates = [seq]
        if seq.isdigit():  # Video K-Net dumps: final/{seq:04d}, panoptic/{i}
            candidates += [os.path.join('final', f'{int(seq):04d}'),
                           os.path.join('panoptic', str(int(seq)))]
        pred_dir = find_sequence_dir(pred_root, candidates)
        out.append(
            SequenceFrames(seq, [('step', (os.path.join(gt_dir, n), ))
                                 for n in gt_names],
                           _pred_entries(pred_dir, gt_dir, gt_names)))
    return out


def vipseg_sequences(pred_root: str, gt_root: str,
                     split: str = 'val') -> list[SequenceFrames]:
    """VIP-Seg: GT ``gt_root/panomasks/<video>/*.png`` for the videos listed
    in ``gt_root/{split}.txt``; predictions in ``pred_root/panoptic/<i>/``
    (Video K-Net dump, ``i`` = index in the split file), ``pred_root/<i>/``,
    ``pred_root/{i:04d}/`` or ``pred_root/<video>/`` as cat/ins pairs or
    STEP RGB PNGs, paired with the GT frames in sorted order.
    """
    split_file = os.path.join(gt_root, f'{split}.txt')
    if not os.path.isfile(split_file):
        raise FileNotFoundError(f'Split file not found: {split_file}')
    with open(split_file) as f:
        videos = [line.strip() for line in f if line.strip()]
    out = []
    for idx, video in enumerate(videos):
        gt_dir = os.path.join(gt_root, 'panomasks', video)
        gt_names = _gt_frames(gt_dir)
        pred_dir = find_sequence_dir(pred_root, [
            os.path.join('panoptic', str(idx)), str(idx), f'{idx:04d}', video
        ])
        preds = _pred_entries(pred_dir, gt_dir, gt_names)
        out.append(
            SequenceFrames(video, [('vipseg', (os.path.join(gt_dir, n), ))
                                   for n in gt_names], preds))
    return out
