# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Reading video panoptic ground truth and predictions from folders.

Formats:

* **STEP PNG** (KITTI-STEP GT and submissions, Video K-Net's ``final/``
  dump): 8-bit RGB, R = class id, G * 256 + B = instance id, in
  ``{seq:04d}/{frame:06d}.png``.
* **cat/ins PNG pairs** (Video K-Net's ``panoptic/{seq}/`` dump):
  ``*_cat.png`` (class id) and ``*_ins.png`` (track id), 8 or 16 bit.
* **VIP-Seg GT** (``panomasks/<video>/*.png``): 0 = void, stuff = class + 1,
  thing = (class + 1) * 100 + k, with 0-based VIP-Seg class ids; converted
  here to the "stuff first" evaluation space of Video K-Net's
  ``eval_*_vipseg.py`` (stuff -> 0..65, things -> 66..123, instance k + 1,
  void and the stray value 200 -> 255).

Every reader returns ``(cls, ins)`` int64 maps and names the file in its
errors.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from ._utils import read_png

__all__ = [
    'VIPSEG_THING_IDS', 'VIPSEG_NUM_CLASSES', 'VIPSEG_NUM_STUFF',
    'read_step_png', 'read_cat_ins_pair', 'read_vipseg_gt', 'list_frames',
    'match_frames', 'frame_number', 'find_sequence_dir'
]

# 0-based VIP-Seg class ids that are things (58 of 124)
VIPSEG_THING_IDS = (2, 4, 8, 10, 41, 43, 44, 46, 47, 48, 49, 50, 51, 52, 54,
                    55, 56, 60, 61, 62, 63, 64, 65, 72, 74, 76, 77, 78, 79,
                    82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 95, 96, 97,
                    99, 100, 101, 102, 106, 107, 108, 109, 114, 115, 116, 117,
                    118, 122, 123)
VIPSEG_NUM_CLASSES = 124
VIPSEG_NUM_STUFF = VIPSEG_NUM_CLASSES - len(VIPSEG_THING_IDS)  # 66
VIPSEG_VOID = 255


def _vipseg_lut() -> np.ndarray:
    """Raw VIP-Seg value -> ``cls * 1000 + ins`` (eval space), -1 invalid."""
    things = list(VIPSEG_THING_IDS)
    stuff = [c for c in range(VIPSEG_NUM_CLASSES) if c not in things]
    lut = np.full(VIPSEG_NUM_CLASSES * 100 + 100, -1, np.int64)
    lut[0] = VIPSEG_VOID * 1000
    lut[200] = VIPSEG_VOID * 1000  # mapped to void by the original code
    for new, c in enumerate(stuff):
        lut[c + 1] = new * 1000
    for new, c in enumerate(things):
        base = (c + 1) * 100
        lut[base:base + 100] = (VIPSEG_NUM_STUFF + new) * 1000 + np.arange(
            1, 101)
    return lut


_VIPSEG_LUT = _vipseg_lut()
_DIGITS = re.compile(r'\d+')


def read_step_png(path: str) -> tuple[np.ndarray, np.ndarray]:
    """STEP RGB PNG -> (class, instance) maps."""
    img = read_png(path)
    if img.ndim != 3 or img.shape[2] < 3 or img.dtype != np.uint8:
        raise ValueError(f'Expected an 8-bit RGB STEP panoptic PNG (R = '
                         f'class, G*256+B = instance), got dtype {img.dtype}'
                         f' shape {img.shape}: {path}')
    cls = img[..., 0].astype(np.int64)
    ins = img[..., 1].astype(np.int64) * 256 + img[..., 2]
    return cls, ins


def read_cat_ins_pair(cat_path: str,
                      ins_path: str) -> tuple[np.ndarray, np.ndarray]:
    """Video K-Net ``*_cat.png`` / ``*_ins.png`` -> (class, instance)."""
    cls = read_png(cat_path)
    ins = read_png(ins_path)
    for arr, p in ((cls, cat_path), (ins, ins_path)):
        if arr.ndim != 2:
            raise ValueError(f'Expected a single-channel PNG, got shape '
                             f'{arr.shape}: {p}')
    if cls.shape != ins.shape:
        raise ValueError(f'Size mismatch: {cat_path} is {cls.shape}, '
                         f'{ins_path} is {ins.shape}')
    return cls.astype(np.int64), ins.astype(np.int64)


def read_vipseg_gt(path: str) -> tuple[np.ndarray, np.ndarray]:
    """VIP-Seg ``panomasks`` PNG -> (class, instance) in the eval space."""
    raw = read_png(path)
    if raw.ndim != 2:
        raise ValueError(f'Expected a single-channel VIP-Seg panomask, got '
                         f'shape {raw.shape}: {path}')
    raw = raw.astype(np.int64)
    invalid = raw >= _VIPSEG_LUT.size
    pan = _VIPSEG_LUT[np.where(invalid, 0, raw)]
    invalid |= pan < 0
    if invalid.any():
        raise ValueError(f'Unknown VIP-Seg label value(s) '
                         f'{np.unique(raw[invalid])[:10].tolist()} in {path}')
    return pan // 1000, pan % 1000


def frame_number(name: str) -> int | None:
    """Frame number of a file name: its last run of digits, else None.

    ``000123.png``, ``123.png``, ``000002_000123_cat.png`` and
    ``000002_000123_panoptic.png`` are all frame 123.
    """
    digits = _DIGITS.findall(os.path.splitext(name)[0])
    return int(digits[-1]) if digits else None


def _numbers(folder: str, names: Sequence[str],
             shown: Sequence[str] | None = None) -> dict[int, str] | None:
    """``{frame number: name}``; None when some name has no number.

    Raises:
        ValueError: Two names carry the same frame number (``shown``: the
            file names to print for ``names``).
    """
    out: dict[int, str] = {}
    file_of = dict(zip(names, shown if shown is not None else names))
    for name in names:
        num = frame_number(name)
        if num is None:
            return None
        if num in out:
            raise ValueError(
                f'Ambiguous frame names: '
                f'{os.path.join(folder, file_of[out[num]])} and '
                f'{os.path.join(folder, file_of[name])} are both frame '
                f'{num}; keep one file per frame number')
        out[num] = name
    return out


def list_frames(folder: str, suffix: str = '.png') -> list[str]:
    """``*suffix`` file names of a folder in frame order.

    Frames are ordered by their number (:func:`frame_number`), so ``2.png``
    comes before ``10.png``; when some name has no number, by name.

    Raises:
        FileNotFoundError: The folder does not exist.
        ValueError: Two files carry the same frame number.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'Folder not found: {folder}')
    names = sorted(f for f in os.listdir(folder) if f.endswith(suffix))
    numbers = _numbers(folder, names)
    if numbers is None:
        return names
    return [numbers[k] for k in sorted(numbers)]


def match_frames(gt_dir: str, gt_names: Sequence[str], pred_dir: str,
                 pred_names: Sequence[str], by_name: bool = True,
                 pred_keys: Sequence[str] | None = None,
                 index_named: bool = False) -> list[str]:
    """Pair every GT frame with its prediction, by name or by frame number.

    Rules, in order: identical names (``pred_keys``, e.g. the stems of
    ``*_cat.png`` files, against the GT names without extension) pair by
    name; otherwise names pair by frame number (:func:`frame_number`),
    e.g. ``7.png`` with ``000007.png``; a Video K-Net ``panoptic/`` dump
    (``index_named``) whose numbers are exactly ``0 .. n-1`` for ``n`` GT
    frames is paired by position in GT frame order (its numbers are frame
    indices). Anything else is an error naming the unmatched files.

    Args:
        gt_names: GT file names in frame order (:func:`list_frames`).
        pred_names: Prediction file names.
        by_name: Unused; kept for compatibility (pairing is automatic).
        pred_keys: Names used for pairing (default ``pred_names``).
        index_named: The folder is a Video K-Net ``panoptic/`` dump.

    Returns:
        The prediction names in GT frame order.

    Raises:
        FileNotFoundError: A GT frame has no prediction.
        ValueError: A prediction has no GT frame, or names are ambiguous.
    """
    keys = list(pred_keys) if pred_keys is not None else list(pred_names)
    key_to_name = dict(zip(keys, pred_names))
    gt_stems = [os.path.splitext(n)[0] for n in gt_names]
    pred_stems = [os.path.splitext(k)[0] for k in keys]
    if sorted(gt_stems) == sorted(pred_stems):
        by_stem = dict(zip(pred_stems, pred_names))
        return [by_stem[s] for s in gt_stems]
    gt_num = _numbers(gt_dir, gt_names)
    pred_num = _numbers(pred_dir, keys, pred_names)
    if gt_num is None or pred_num is None:  # pair by name only
        missing = [n for n, s in zip(gt_names, gt_stems)
                   if s not in set(pred_stems)]
        extra = [key_to_name[k] for k, s in zip(keys, pred_stems)
                 if s not in set(gt_stems)]
        _raise_unmatched(gt_dir, missing, pred_dir, extra,
                         [os.path.join(pred_dir, key_to_name.get(m, m))
                          for m in missing])
    if set(gt_num) == set(pred_num):
        return [key_to_name[pred_num[frame_number(n)]] for n in gt_names]
    if index_named and sorted(pred_num) == list(range(len(gt_names))):
        return [key_to_name[pred_num[i]] for i in range(len(gt_names))]
    missing = [gt_num[k] for k in sorted(set(gt_num) - set(pred_num))]
    extra = [key_to_name[pred_num[k]]
             for k in sorted(set(pred_num) - set(gt_num))]
    _raise_unmatched(
        gt_dir, missing, pred_dir, extra,
        [f'{os.path.join(pred_dir, m)} (or another name numbered '
         f'{frame_number(m)})' for m in missing])
    raise AssertionError('unreachable')  # pragma: no cover


def _raise_unmatched(gt_dir: str, missing: Sequence[str], pred_dir: str,
                     extra: Sequence[str], expected: Sequence[str]) -> None:
    if missing:
        raise FileNotFoundError(
            f'Missing prediction frame(s) for ground truth '
            f'{os.path.join(gt_dir, missing[0])}: expected {expected[0]}'
            + (f' (and {len(missing) - 1} more: '
               f'{", ".join(missing[1:4])}{", ..." if len(missing) > 4 else ""})'
               if len(missing) > 1 else ''))
    if extra:
        raise ValueError(
            f'Prediction frame {os.path.join(pred_dir, extra[0])} has no '
            f'ground truth in {gt_dir}'
            + (f' (and {len(extra) - 1} more: {", ".join(extra[1:4])}'
               f'{", ..." if len(extra) > 4 else ""})'
               if len(extra) > 1 else '')
            + '; frames pair by identical names or by frame number')
    raise ValueError(f'Cannot pair the frames of {pred_dir} with {gt_dir}')


def find_sequence_dir(pred_root: str, candidates: Sequence[str]) -> str:
    """First existing ``pred_root/<candidate>`` folder, else a clear error."""
    for name in candidates:
        path = os.path.join(pred_root, name)
        if os.path.isdir(path):
            return path
    tried = ', '.join(os.path.join(pred_root, c) for c in candidates)
    raise FileNotFoundError(f'No prediction folder for this sequence; tried '
                            f'{tried}')
