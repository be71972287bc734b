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
from collections.abc import Sequence

import numpy as np

from ._utils import read_png

__all__ = [
    'VIPSEG_THING_IDS', 'VIPSEG_NUM_CLASSES', 'VIPSEG_NUM_STUFF',
    'read_step_png', 'read_cat_ins_pair', 'read_vipseg_gt', 'list_frames',
    'match_frames', 'find_sequence_dir'
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


def list_frames(folder: str) -> list[str]:
    """Sorted ``*.png`` file names of a folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'Folder not found: {folder}')
    return sorted(f for f in os.listdir(folder) if f.endswith('.png'))


def match_frames(gt_dir: str, gt_names: Sequence[str], pred_dir: str,
                 pred_names: Sequence[str], by_name: bool) -> list[str]:
    """Check that a prediction exists for every GT frame and vice versa.

    Args:
        by_name: Pair by identical file names (STEP); otherwise by sorted
            order with equal counts (cat/ins dumps named differently).

    Returns:
        The prediction names in GT frame order.
    """
    if by_name:
        missing = sorted(set(gt_names) - set(pred_names))
        extra = sorted(set(pred_names) - set(gt_names))
        if missing:
            raise FileNotFoundError(
                f'Missing prediction frame(s) for ground truth '
                f'{os.path.join(gt_dir, missing[0])}: expected '
                f'{os.path.join(pred_dir, missing[0])}'
                + (f' (and {len(missing) - 1} more)' if len(missing) > 1
                   else ''))
        if extra:
            raise ValueError(
                f'Prediction frame {os.path.join(pred_dir, extra[0])} has no '
                f'ground truth in {gt_dir}'
                + (f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''))
        return list(gt_names)
    if len(gt_names) != len(pred_names):
        n = min(len(gt_names), len(pred_names))
        if len(pred_names) < len(gt_names):
            raise FileNotFoundError(
                f'{pred_dir} has {len(pred_names)} prediction frames but '
                f'{gt_dir} has {len(gt_names)}; first unmatched ground truth:'
                f' {os.path.join(gt_dir, gt_names[n])}')
        raise ValueError(
            f'{pred_dir} has {len(pred_names)} prediction frames but {gt_dir} '
            f'has {len(gt_names)}; first extra prediction: '
            f'{os.path.join(pred_dir, pred_names[n])}')
    return list(pred_names)


def find_sequence_dir(pred_root: str, candidates: Sequence[str]) -> str:
    """First existing ``pred_root/<candidate>`` folder, else a clear error."""
    for name in candidates:
        path = os.path.join(pred_root, name)
        if os.path.isdir(path):
            return path
    tried = ', '.join(os.path.join(pred_root, c) for c in candidates)
    raise FileNotFoundError(f'No prediction folder for this sequence; tried '
                            f'{tried}')
