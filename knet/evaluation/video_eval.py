# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Folder-level STQ / VPQ evaluation shared by the ``tools/eval_d*`` scripts.

A dataset is described as a list of :class:`SequenceFrames` (picklable file
lists); sequences are evaluated independently, optionally in worker
processes, and merged in a fixed order so the numbers do not depend on
``nproc``. ``protocol`` (:mod:`.video_protocol`) selects the official
benchmark rules (default) or Video K-Net's (``'videoknet'``).
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
from .video_protocol import OFFICIAL, check_windows, get_protocol
from .vpq import VideoPanopticQuality, vpq_frame_stats, window_pq_counts

__all__ = [
    'SequenceFrames', 'EvalSettings', 'step_sequences', 'vipseg_sequences',
    'evaluate_stq', 'evaluate_vpq', 'default_windows', 'first_segment_id',
    'KITTI_STEP', 'VIPSEG'
]

BIT_SHIFT = 16  # panoptic id = (class << 16) + instance


@dataclass
class EvalSettings:
    """Label space of a dataset (``dataset`` picks protocol defaults)."""
    num_classes: int
    thing_ids: tuple[int, ...]
    ignore_label: int = 255
    dataset: str = ''  # 'kitti-step', 'vipseg' or '' (generic)


KITTI_STEP = EvalSettings(19, (11, 13), 255, 'kitti-step')
VIPSEG = EvalSettings(VIPSEG_NUM_CLASSES,
                      tuple(range(VIPSEG_NUM_STUFF, VIPSEG_NUM_CLASSES)), 255,
                      'vipseg')


def default_windows(settings: EvalSettings,
                    protocol: str = OFFICIAL) -> list[int]:
    """VPQ window sizes of a protocol for a dataset (VIP-Seg official:
    1, 2, 4, 6, 8; Video K-Net's VIP-Seg: 1, 2, 4, 6; else 1, 2, 3, 4)."""
    rules = get_protocol(protocol)
    if settings.dataset == 'vipseg':
        return list(rules.vipseg_windows)
    return list(rules.step_windows)


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


def first_segment_id(gt_cls: np.ndarray, gt_ins: np.ndarray,
                     ignore_label: int) -> int | None:
    """Smallest non-void panoptic id of a frame (None if all void).

    In the VIP-Seg evaluation space this is the segment with the smallest
    raw panomask value, i.e. the first of the frame's ``segments_info``.
    """
    valid = gt_cls != ignore_label
    if not valid.any():
        return None
    return int(((gt_cls[valid] << BIT_SHIFT) + gt_ins[valid]).min())


def _stq_sequence(args: tuple) -> STQuality:
    seq, settings, drop_gt_void, zero_numbered_crowd = args
    stq = STQuality(settings.num_classes, settings.thing_ids,
                    settings.ignore_label, BIT_SHIFT,
                    max(2**24, settings.num_classes << BIT_SHIFT))
    # eval_stq_vspw.py numbers a video's segments from 0 in order of first
    # appearance; a thing numbered 0 is crowd (instance 0) for STQuality
    pending = zero_numbered_crowd and bool(seq.gt) and seq.gt[0][0] == 'vipseg'
    crowd = None
    for i in range(len(seq.gt)):
        gt_cls, gt_ins, pr_cls, pr_ins = _load_pair(seq, i, settings)
        gt = (gt_cls << BIT_SHIFT) + gt_ins
        if pending:
            first = first_segment_id(gt_cls, gt_ins, settings.ignore_label)
            if first is not None:
                pending = False
                if (first >> BIT_SHIFT) in settings.thing_ids:
                    crowd = first
        if crowd is not None:
            gt = np.where(gt == crowd, (crowd >> BIT_SHIFT) << BIT_SHIFT, gt)
        pred = (pr_cls << BIT_SHIFT) + pr_ins
        if drop_gt_void:
            keep = gt_cls != settings.ignore_label
            gt, pred = gt[keep], pred[keep]
        stq.update_state(gt, pred, seq.seq_id)
    return stq


def _vpq_sequence(args: tuple) -> dict[int, np.ndarray]:
    seq, settings, windows, clip_short = args
    frames = []
    for i in range(len(seq.gt)):
        gt_cls, gt_ins, pr_cls, pr_ins = _load_pair(seq, i, settings)
        frames.append(
            vpq_frame_stats((gt_cls << BIT_SHIFT) + gt_ins,
                            (pr_cls << BIT_SHIFT) + pr_ins))
    return {
        k: window_pq_counts(frames, k, settings.num_classes,
                            settings.ignore_label, 1 << BIT_SHIFT,
                            clip_short=clip_short)
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
                 drop_gt_void: bool | None = None,
                 progress: bool = False,
                 protocol: str = OFFICIAL) -> dict[str, Any]:
    """STQ over sequences of frame files.

    Args:
        sequences: Frames per sequence (GT / prediction file entries).
        settings: Class count, thing classes, ignore label.
        nproc: Worker processes over sequences.
        drop_gt_void: Remove GT-void pixels before scoring, as Video K-Net's
            ``eval_dstq_*`` scripts do (predicted thing pixels there then do
            not count against AQ); False scores whole frames like the
            benchmarks (deeplab2 ``STQuality``). None: the protocol's rule.
        progress: Show a tqdm bar.
        protocol: ``'official'`` (whole frames; VIP-Seg GT segments
            numbered per video from 0 as ``eval_stq_vspw.py`` does, so a
            thing numbered 0 is crowd) or ``'videoknet'`` (GT void removed,
            instances numbered from 1).

    Returns:
        ``{'STQ', 'AQ', 'SQ', 'per_sequence': {seq: {'STQ', 'AQ', 'SQ',
        'num_frames'}}, 'protocol', 'drop_gt_void'}`` with fractions in
        [0, 1].
    """
    rules = get_protocol(protocol)
    if drop_gt_void is None:
        drop_gt_void = rules.drop_gt_void
    jobs = [(s, settings, bool(drop_gt_void), rules.zero_numbered_crowd)
            for s in sequences]
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
            'SQ': float(res['IoU']), 'per_sequence': per_seq,
            'protocol': rules.name, 'drop_gt_void': bool(drop_gt_void)}


def evaluate_vpq(sequences: Sequence[SequenceFrames],
                 settings: EvalSettings,
                 windows: Sequence[int] | None = None,
                 nproc: int = 1,
                 progress: bool = False,
                 protocol: str = OFFICIAL) -> dict[str, Any]:
    """VPQ over sequences of frame files (see :mod:`knet.evaluation.vpq`).

    Args:
        windows: Window sizes; None: the protocol's for ``settings.dataset``
            (:func:`default_windows`).
        protocol: ``'official'`` (a sequence shorter than k contributes
            nothing at k) or ``'videoknet'`` (it is one shorter window).

    Returns:
        ``{'VPQ', 'VPQ_th', 'VPQ_st', 'per_window': {'k': {'PQ', 'PQ_th',
        'PQ_st', ...}}, 'protocol', 'windows'}`` with fractions in [0, 1].
    """
    rules = get_protocol(protocol)
    windows = check_windows(default_windows(settings, rules.name)
                            if windows is None else windows)
    jobs = [(s, settings, windows, rules.clip_short_sequences)
            for s in sequences]
    parts = _run(_vpq_sequence, jobs, sequences, nproc, progress)
    vpq = VideoPanopticQuality(settings.num_classes, settings.thing_ids,
                               settings.ignore_label, 1 << BIT_SHIFT, windows,
                               protocol=rules.name)
    for part in parts:
        vpq.add_counts(part)
    res = vpq.result()
    res['windows'] = windows
    return res


def _gt_frames(gt_dir: str) -> list[str]:
    names = list_frames(gt_dir)
    if not names:
        raise FileNotFoundError(f'No ground-truth PNG frames in {gt_dir}')
    return names


def _pred_entries(pred_dir: str, gt_dir: str, gt_names: Sequence[str],
                  index_named: bool = False) -> list[tuple[str, tuple]]:
    """Prediction entries of one sequence folder, STEP or cat/ins format,
    in GT frame order (paired by name or frame number, see
    :func:`~knet.evaluation.video_io.match_frames`)."""
    if not os.path.isdir(pred_dir):
        raise FileNotFoundError(f'Folder not found: {pred_dir}')
    names = sorted(f for f in os.listdir(pred_dir) if f.endswith('.png'))
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
                               pred_keys=[s + '.png' for s in cat_stems],
                               index_named=index_named)
        return [('catins', (os.path.join(pred_dir, c),
                            os.path.join(pred_dir, c[:-8] + '_ins.png')))
                for c in ordered]
    ordered = match_frames(gt_dir, gt_names, pred_dir, names,
                           index_named=index_named)
    return [('step', (os.path.join(pred_dir, n), )) for n in ordered]


def _is_dump(pred_root: str, pred_dir: str) -> bool:
    """Whether ``pred_dir`` is a Video K-Net ``panoptic/<i>`` dump (frames
    named by index in the sequence)."""
    rel = os.path.relpath(pred_dir, pred_root)
    return rel.split(os.sep)[0] == 'panoptic'


def step_sequences(pred_root: str, gt_root: str) -> list[SequenceFrames]:
    """KITTI-STEP style folders: ``{seq}/{frame}.png`` in both roots.

    Every GT sequence folder needs a prediction folder with one PNG per GT
    frame (same file names): ``pred_root/{seq}``, or for a Video K-Net output
    root ``pred_root/final/{seq:04d}`` (STEP PNGs) or
    ``pred_root/panoptic/{int(seq)}`` (``*_cat.png`` / ``*_ins.png``, paired
    by frame number). Frames pair by identical names or by frame number
    (``7.png`` with ``000007.png``), never by text order; GT frames are
    ordered by number. Prediction sequences without GT are skipped with a
    warning.
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
                           _pred_entries(pred_dir, gt_dir, gt_names,
                                         _is_dump(pred_root, pred_dir))))
    return out


def vipseg_sequences(pred_root: str, gt_root: str,
                     split: str = 'val') -> list[SequenceFrames]:
    """VIP-Seg: GT ``gt_root/panomasks/<video>/*.png`` for the videos listed
    in ``gt_root/{split}.txt``; predictions in ``pred_root/panoptic/<i>/``
    (Video K-Net dump, ``i`` = index in the split file), ``pred_root/<i>/``,
    ``pred_root/{i:04d}/`` or ``pred_root/<video>/`` as cat/ins pairs or
    STEP RGB PNGs, paired with the GT frames by name or frame number; a
    ``panoptic/<i>`` dump named by frame index ``0 .. n-1`` is paired by
    position in GT frame order (Video K-Net numbers VIP-Seg frames so).
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
        preds = _pred_entries(pred_dir, gt_dir, gt_names,
                              _is_dump(pred_root, pred_dir))
        out.append(
            SequenceFrames(video, [('vipseg', (os.path.join(gt_dir, n), ))
                                   for n in gt_names], preds))
    return out
