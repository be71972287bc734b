# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Synthetic panoptic data for tests and benchmarks (no real dataset needed).

The generators draw random rectangles / ellipses as segments and derive the
prediction from the ground truth by shifting, relabelling, dropping,
splitting and adding segments, so every PQ rule (void, crowd, IoU near 0.5,
wrong class, false positives on void) is exercised.
"""
from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from .panoptic_quality import id2rgb

__all__ = ['make_coco_panoptic', 'make_step_video', 'write_step_png']


def _draw_shape(canvas: np.ndarray, value: int, rng: np.random.Generator,
                min_size: int, max_size: int) -> None:
    h, w = canvas.shape
    sh = int(rng.integers(min_size, max_size + 1))
    sw = int(rng.integers(min_size, max_size + 1))
    y0 = int(rng.integers(-sh // 2, h - sh // 2))
    x0 = int(rng.integers(-sw // 2, w - sw // 2))
    ys, xs = np.ogrid[max(y0, 0):min(y0 + sh, h), max(x0, 0):min(x0 + sw, w)]
    if rng.random() < 0.5:
        canvas[ys, xs] = value
    else:  # ellipse
        cy, cx = y0 + sh / 2, x0 + sw / 2
        inside = ((ys - cy) / (sh / 2))**2 + ((xs - cx) / (sw / 2))**2 <= 1
        region = canvas[ys, xs]
        region[inside] = value
        canvas[ys, xs] = region


def _random_layout(h: int, w: int, num_segments: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Index map: 0 = void, 1..K = segments (later drawn on top)."""
    canvas = np.zeros((h, w), np.int64)
    n_stuff = max(2, num_segments // 4)
    for k in range(1, num_segments + 1):
        big = k <= n_stuff
        _draw_shape(canvas, k, rng, max(2, min(h, w) // (3 if big else 10)),
                    max(3, min(h, w) // (1 if big else 3)))
    return canvas


def _perturb(gt_index: np.ndarray, num_segments: int,
             rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Prediction index map derived from the GT index map."""
    h, w = gt_index.shape
    dy, dx = rng.integers(-2, 3, size=2)
    pred = np.roll(gt_index, (int(dy), int(dx)), axis=(0, 1))
    # drop some segments (-> unlabelled) and merge some into others
    for k in range(1, num_segments + 1):
        r = rng.random()
        if r < 0.08:
            pred[pred == k] = 0
        elif r < 0.14:
            pred[pred == k] = int(rng.integers(1, num_segments + 1))
    # fill part of the void with a guess sometimes (FPs on void)
    if rng.random() < 0.5:
        y0 = int(rng.integers(0, h))
        x0 = int(rng.integers(0, w))
        block = pred[y0:y0 + h // 2, x0:x0 + w // 2]
        block[block == 0] = num_segments + 1
    # extra random segments and a few splits
    extra = num_segments + 2
    for _ in range(int(rng.integers(1, 5))):
        _draw_shape(pred, extra, rng, 3, max(4, min(h, w) // 3))
        extra += 1
    return pred, extra


def make_coco_panoptic(root: str,
                       num_images: int = 6,
                       height: int = 60,
                       width: int = 80,
                       num_segments: int = 20,
                       seed: int = 0) -> dict[str, str]:
    """Write a random COCO-panoptic GT / prediction pair under ``root``.

    Categories: things 1..6, stuff 7..10 (ids shuffled into the list order),
    one category (id 11) that never occurs. About one GT thing in eight is a
    crowd segment and GT has VOID regions.

    Returns:
        Paths ``gt_json``, ``pred_json``, ``gt_folder``, ``pred_folder``.
    """
    rng = np.random.default_rng(seed)
    categories = [{'id': i, 'name': f'thing{i}', 'isthing': 1}
                  for i in range(1, 7)]
    categories += [{'id': i, 'name': f'stuff{i}', 'isthing': 0}
                   for i in range(7, 11)]
    categories.append({'id': 11, 'name': 'never', 'isthing': 1})
    thing_ids = [c['id'] for c in categories if c['isthing'] and c['id'] < 11]
    stuff_ids = [c['id'] for c in categories if not c['isthing']]
    paths = {
        'gt_json': os.path.join(root, 'gt.json'),
        'pred_json': os.path.join(root, 'pred.json'),
        'gt_folder': os.path.join(root, 'gt'),
        'pred_folder': os.path.join(root, 'pred'),
    }
    os.makedirs(paths['gt_folder'], exist_ok=True)
    os.makedirs(paths['pred_folder'], exist_ok=True)
    gt_anns, pred_anns, images = [], [], []
    for img_idx in range(num_images):
        image_id = 1000 + img_idx
        file_name = f'{image_id:012d}.png'
        images.append({'id': image_id, 'file_name': file_name.replace(
            '.png', '.jpg'), 'height': height, 'width': width})
        gt_index = _random_layout(height, width, num_segments, rng)
        n_stuff = max(2, num_segments // 4)
        seg_cat = np.zeros(num_segments + 1, np.int64)
        seg_cat[1:n_stuff + 1] = rng.choice(stuff_ids, n_stuff)
        seg_cat[n_stuff + 1:] = rng.choice(thing_ids,
                                           num_segments - n_stuff)
        # merge same-class stuff so each stuff class is one segment
        for k in range(1, n_stuff + 1):
            first = int(np.flatnonzero(seg_cat[1:n_stuff + 1] ==
                                       seg_cat[k])[0]) + 1
            gt_index[gt_index == k] = first
        crowd = np.zeros(num_segments + 1, bool)
        crowd[n_stuff + 1:] = rng.random(num_segments - n_stuff) < 0.125
        # random 24-bit ids, 0 reserved for VOID
        gt_ids = np.concatenate(
            ([0], rng.choice(np.arange(1, 1 << 24), num_segments,
                             replace=False)))
        gt_pan = gt_ids[gt_index]
        present, areas = np.unique(gt_index, return_counts=True)
        segs = []
        for k, area in zip(present.tolist(), areas.tolist()):
            if k == 0:
                continue
            segs.append({'id': int(gt_ids[k]), 'category_id': int(seg_cat[k]),
                         'iscrowd': int(crowd[k]), 'area': int(area),
                         'bbox': [0, 0, 1, 1]})
        gt_anns.append({'image_id': image_id, 'file_name': file_name,
                        'segments_info': segs})
        Image.fromarray(id2rgb(gt_pan)).save(
            os.path.join(paths['gt_folder'], file_name))

        pred_index, n_pred = _perturb(gt_index, num_segments, rng)
        pred_cat = np.concatenate(
            (seg_cat, rng.choice(thing_ids + stuff_ids,
                                 n_pred - num_segments)))
        flip = rng.random(pred_cat.size) < 0.08
        pred_cat[flip] = rng.choice(thing_ids + stuff_ids, int(flip.sum()))
        pred_ids = np.concatenate(
            ([0], rng.choice(np.arange(1, 1 << 24), pred_cat.size - 1,
                             replace=False)))
        pred_pan = pred_ids[pred_index]
        psegs = [{'id': int(pred_ids[k]), 'category_id': int(pred_cat[k])}
                 for k in np.unique(pred_index).tolist() if k != 0]
        pred_anns.append({'image_id': image_id, 'file_name': file_name,
                          'segments_info': psegs})
        Image.fromarray(id2rgb(pred_pan)).save(
            os.path.join(paths['pred_folder'], file_name))
    with open(paths['gt_json'], 'w') as f:
        json.dump({'images': images, 'annotations': gt_anns,
                   'categories': categories}, f)
    with open(paths['pred_json'], 'w') as f:
        json.dump({'annotations': pred_anns}, f)
    return paths


def write_step_png(path: str, cls: np.ndarray, ins: np.ndarray) -> None:
    """Write a STEP panoptic PNG: R = class, G = ins // 256, B = ins % 256."""
    cls = np.asarray(cls)
    ins = np.asarray(ins)
    rgb = np.stack([cls, ins // 256, ins % 256], axis=-1).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rgb).save(path)


def make_step_video(num_frames: int = 5,
                    height: int = 24,
                    width: int = 32,
                    num_classes: int = 19,
                    thing_ids: tuple[int, ...] = (11, 13),
                    ignore_label: int = 255,
                    seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random moving-box video: GT and predicted class/instance maps.

    GT: three stuff bands, a void strip and four moving boxes of thing
    classes (the last one with instance 0, i.e. crowd). The prediction is
    shifted by a pixel, swaps two track ids half-way, renames one track in
    frame 1, labels the void strip as stuff and mislabels a stuff region.

    Returns:
        ``gt_cls, gt_ins, pred_cls, pred_ins`` of shape (T, H, W).
    """
    rng = np.random.default_rng(seed)
    stuff = [c for c in range(num_classes) if c not in thing_ids]
    t, h, w = num_frames, height, width
    gt_cls = np.empty((t, h, w), np.int64)
    gt_ins = np.zeros((t, h, w), np.int64)
    base = rng.choice(stuff, size=3)
    gt_cls[:, :h // 3] = base[0]
    gt_cls[:, h // 3:2 * h // 3] = base[1]
    gt_cls[:, 2 * h // 3:] = base[2]
    gt_cls[:, -2:, :w // 4] = ignore_label
    n_obj = 4
    pos = rng.integers(0, [h - 6, w - 8], size=(n_obj, 2))
    vel = rng.integers(-1, 2, size=(n_obj, 2))
    size = rng.integers(4, 8, size=(n_obj, 2))
    obj_cls = rng.choice(thing_ids, n_obj)
    for f in range(t):
        for o in range(n_obj):
            y, x = np.clip(pos[o] + f * vel[o], 0, [h - 1, w - 1])
            sy, sx = size[o]
            gt_cls[f, y:y + sy, x:x + sx] = obj_cls[o]
            gt_ins[f, y:y + sy, x:x + sx] = o + 1 if o < n_obj - 1 else 0
    pred_cls = np.roll(gt_cls, 1, axis=2).copy()
    pred_ins = np.roll(gt_ins, 1, axis=2).copy()
    pred_cls[pred_cls == ignore_label] = stuff[0]
    swap = t // 2
    a, b = 1, 2
    sel_a = pred_ins[swap:] == a
    sel_b = pred_ins[swap:] == b
    pred_ins[swap:][sel_a] = b
    pred_ins[swap:][sel_b] = a
    if t > 2:
        pred_ins[1][pred_ins[1] == 3] = 7
    pred_cls[:, :2, :w // 2] = stuff[-1]
    return gt_cls, gt_ins, pred_cls, pred_ins
