# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""COCO panoptic quality (PQ) with the exact rules of cocodataset/panopticapi.

Same signature and numbers as ``panopticapi.evaluation.pq_compute`` but
vectorised per image (one contingency table per image, no per-segment Python
loop) and with an explicit ``nproc``. The rules are:

* ids are ``R + 256 G + 256**2 B``; id ``VOID = 0`` is unlabelled;
* a GT and a predicted segment of the same category match when
  ``IoU > 0.5``, where the union leaves out the part of the prediction on
  GT VOID; crowd GT segments never match;
* unmatched non-crowd GT segments are false negatives;
* an unmatched prediction is a false positive unless more than half of it
  lies on GT VOID plus the GT crowd region of its category (panopticapi keeps
  only the *last* crowd segment of each category in ``segments_info`` order);
* GT areas come from the GT json (``area``), predicted areas from the PNG;
* categories with ``tp + fp + fn == 0`` are left out of the means.

The one deliberate difference: a subset (Things / Stuff) without any counted
category gives zeros with ``n == 0`` instead of raising ZeroDivisionError.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._png import decode_many_ids_into, png_shape, prepare, read_png_bytes
from ._utils import count_pairs, count_pairs_by_image

prepare()

__all__ = [
    'OFFSET', 'VOID', 'PQStatCat', 'PQStat', 'pq_image_stats',
    'pq_compute_single_core', 'pq_compute_multi_core', 'pq_compute',
    'rgb2id', 'id2rgb'
]

OFFSET = 256 * 256 * 256
VOID = 0


def rgb2id(color: np.ndarray) -> np.ndarray:
    """COCO panoptic RGB colours (H, W, 3) -> ids ``R + 256 G + 256**2 B``."""
    color = np.asarray(color)
    if color.dtype == np.uint8:
        color = color.astype(np.int32)
    return color[..., 0] + 256 * color[..., 1] + 256 * 256 * color[..., 2]


def id2rgb(id_map: np.ndarray) -> np.ndarray:
    """Segment ids (H, W) -> COCO panoptic RGB colours (H, W, 3) uint8."""
    id_map = np.asarray(id_map, dtype=np.int64)
    return np.stack([id_map % 256, id_map // 256 % 256, id_map // 65536 % 256],
                    axis=-1).astype(np.uint8)


@dataclass
class PQStatCat:
    """TP/FP/FN counts and summed TP IoU of one category."""
    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __iadd__(self, other: 'PQStatCat') -> 'PQStatCat':
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


class PQStat:
    """Per-category PQ accumulator, interface-compatible with panopticapi.

    ``pq_per_cat[cat_id]`` holds a :class:`PQStatCat`; ``+=`` merges two
    accumulators and :meth:`pq_average` gives the class-averaged PQ/SQ/RQ.
    """

    def __init__(self) -> None:
        self.pq_per_cat: defaultdict[int, PQStatCat] = defaultdict(PQStatCat)

    def __getitem__(self, cat_id: int) -> PQStatCat:
        return self.pq_per_cat[cat_id]

    def __iadd__(self, other: 'PQStat') -> 'PQStat':
        for cat_id, stat in other.pq_per_cat.items():
            self.pq_per_cat[cat_id] += stat
        return self

    def add(self, cat_ids: np.ndarray, iou: np.ndarray, tp: np.ndarray,
            fp: np.ndarray, fn: np.ndarray) -> None:
        """Add per-category arrays (aligned with ``cat_ids``)."""
        for c, i, t, p, n in zip(
                np.asarray(cat_ids).tolist(),
                np.asarray(iou, np.float64).tolist(),
                np.asarray(tp).tolist(),
                np.asarray(fp).tolist(),
                np.asarray(fn).tolist()):
            stat = self.pq_per_cat[c]
            stat.iou += i
            stat.tp += int(t)
            stat.fp += int(p)
            stat.fn += int(n)

    def pq_average(self, categories: Mapping[int, Mapping[str, Any]],
                   isthing: bool | None) -> tuple[dict, dict]:
        """Average PQ/SQ/RQ over ``categories`` (all / things / stuff).

        Args:
            categories: ``{cat_id: {'isthing': 0/1, ...}}``.
            isthing: True for things, False for stuff, None for all.

        Returns:
            ``({'pq', 'sq', 'rq', 'n'}, {cat_id: {'pq', 'sq', 'rq'}})``.
        """
        pq = sq = rq = 0.0
        n = 0
        per_class = {}
        for label, info in categories.items():
            if isthing is not None and (info['isthing'] == 1) != isthing:
                continue
            stat = self.pq_per_cat.get(label, PQStatCat())
            iou, tp, fp, fn = stat.iou, stat.tp, stat.fp, stat.fn
            if tp + fp + fn == 0:
                per_class[label] = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
                continue
            n += 1
            denom = tp + 0.5 * fp + 0.5 * fn
            pq_c = iou / denom
            sq_c = iou / tp if tp != 0 else 0
            rq_c = tp / denom
            per_class[label] = {'pq': pq_c, 'sq': sq_c, 'rq': rq_c}
            pq += pq_c
            sq += sq_c
            rq += rq_c
        if n == 0:
            return {'pq': 0.0, 'sq': 0.0, 'rq': 0.0, 'n': 0}, per_class
        return {'pq': pq / n, 'sq': sq / n, 'rq': rq / n, 'n': n}, per_class


class _Segments:
    """``segments_info`` of many images as flat arrays.

    Duplicate ids within an image keep the values of the *last* entry at the
    position of the first, as panopticapi's ``{el['id']: el}`` dict does.
    """

    def __init__(self, segment_lists: Sequence[Sequence[Mapping[str, Any]]],
                 with_area: bool) -> None:
        counts = [len(segments) for segments in segment_lists]
        flat = [s for segments in segment_lists for s in segments]
        img = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        ids = np.asarray([s['id'] for s in flat], np.int64)
        if ids.size and np.unique((img << 32) ^ ids).size != ids.size:
            # duplicate ids: the dict semantics, image by image (rare)
            segment_lists = [list({int(s['id']): s
                                   for s in segments}.values())
                             for segments in segment_lists]
            counts = [len(segments) for segments in segment_lists]
            flat = [s for segments in segment_lists for s in segments]
            img = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
            ids = np.asarray([s['id'] for s in flat], np.int64)
        self.img = img
        self.id = ids
        self.cat = np.asarray([s['category_id'] for s in flat], np.int64)
        self.crowd = np.asarray([s.get('iscrowd', 0) for s in flat]) == 1
        self.area = np.asarray([s.get('area', -1) for s in flat],
                               np.float64) if with_area else None
        # (image, id) keys; ids outside [0, 2**32) can never be in a PNG
        valid = (self.id >= 0) & (self.id < 2**32)
        self.key = np.where(valid, (self.img << 32) | (self.id & 0xFFFFFFFF),
                            -1 - np.arange(self.id.size))
        self.order = np.argsort(self.key, kind='stable')
        self.sorted_key = self.key[self.order]

    def __len__(self) -> int:
        return int(self.id.size)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Index of the segment with each (image, id) key, -1 if none."""
        return _lookup(self.sorted_key, self.order, keys)


def _lookup(sorted_keys: np.ndarray, order: np.ndarray,
            queries: np.ndarray) -> np.ndarray:
    """Index of each query in the (unsorted) key array, -1 when absent."""
    if sorted_keys.size == 0:
        return np.full(queries.shape, -1, np.int64)
    pos = np.searchsorted(sorted_keys, queries)
    pos = np.minimum(pos, sorted_keys.size - 1)
    found = sorted_keys[pos] == queries
    return np.where(found, order[pos], -1)


def _per_category(cats: np.ndarray,
                  weights: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``cats`` and the count (or weight sum) of each."""
    uniq, inv = np.unique(cats, return_inverse=True)
    return uniq, np.bincount(
        inv.reshape(-1), weights=weights, minlength=uniq.size)


def _first_error(img: np.ndarray, ids: np.ndarray,
                 where: Callable[[int], str], message: str) -> KeyError:
    """KeyError naming the first offending image and its segment ids."""
    k = int(img.min())
    bad = sorted(set(ids[img == k].tolist()))
    return KeyError(f'{where(k)}: segment id(s) {bad} {message}')


def _match_images(row_img: np.ndarray, gt_ids: np.ndarray,
                  pred_ids: np.ndarray, inter: np.ndarray,
                  gt_lists: Sequence[Sequence[Mapping[str, Any]]],
                  pred_lists: Sequence[Sequence[Mapping[str, Any]]],
                  categories: Iterable[int],
                  where: Callable[[int], str]) -> PQStat:
    """panopticapi's per-image matching, for many images at once.

    ``(row_img, gt_ids, pred_ids, inter)`` are the images' sparse
    contingency tables stacked (image index, GT id, predicted id, pixel
    count); segments are keyed by ``(image, id)`` so that one set of array
    operations serves the whole batch. ``where(k)`` names image k in errors.
    """
    gt = _Segments(gt_lists, with_area=True)
    pred = _Segments(pred_lists, with_area=False)
    row_img = np.asarray(row_img, np.int64)
    gt_ids = np.asarray(gt_ids, np.int64)
    pred_ids = np.asarray(pred_ids, np.int64)
    inter = np.asarray(inter, np.float64)
    for ids in (gt_ids, pred_ids):
        if ids.size and (ids.min() < 0 or ids.max() >= 2**32):
            raise ValueError(f'{where(0)}: segment ids must lie in '
                             '[0, 2**32)')
    num_gt, num_pred = len(gt), len(pred)

    # predicted areas from the PNG + sanity checks (panopticapi's errors)
    p_idx = pred.find((row_img << 32) | pred_ids)
    unknown = (p_idx < 0) & (pred_ids != VOID)
    if unknown.any():
        raise _first_error(row_img[unknown], pred_ids[unknown], where,
                           'are present in the PNG but not in the JSON '
                           'segments_info')
    has_p = p_idx >= 0
    pred_area = np.bincount(p_idx[has_p], weights=inter[has_p],
                            minlength=num_pred)
    seen = np.zeros(num_pred, bool)
    seen[p_idx[has_p]] = True
    if not seen.all():
        raise _first_error(pred.img[~seen], pred.id[~seen], where,
                           'are in the JSON segments_info but not in the '
                           'PNG')
    bad = ~np.isin(pred.cat, np.asarray(sorted(set(categories)), np.int64))
    if bad.any():
        k = int(pred.img[bad].min())
        sel = bad & (pred.img == k)
        raise KeyError(f'{where(k)}: segment id(s) {pred.id[sel].tolist()} '
                       f'have unknown category_id(s) '
                       f'{sorted(set(pred.cat[sel].tolist()))}')

    # gt side: JSON areas (as panopticapi), PNG counts only if 'area' missing
    g_idx = gt.find((row_img << 32) | gt_ids)
    gt_area = gt.area
    if (gt_area < 0).any():
        has_g = g_idx >= 0
        png_gt_area = np.bincount(g_idx[has_g], weights=inter[has_g],
                                  minlength=num_gt)
        gt_area = np.where(gt_area < 0, png_gt_area, gt_area)

    # prediction area on GT VOID, per predicted segment
    on_void = (gt_ids == VOID) & has_p
    void_area = np.bincount(p_idx[on_void], weights=inter[on_void],
                            minlength=num_pred)

    both = (g_idx >= 0) & has_p
    g, p, i = g_idx[both], p_idx[both], inter[both]
    cand = ~gt.crowd[g] & (gt.cat[g] == pred.cat[p])
    union = gt_area[g] + pred_area[p] - i - void_area[p]
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = i / union
    tp = cand & (iou > 0.5)
    gt_matched = np.zeros(num_gt, bool)
    gt_matched[g[tp]] = True
    pred_matched = np.zeros(num_pred, bool)
    pred_matched[p[tp]] = True

    # last crowd segment of each (image, category): panopticapi's dict
    crowd_of_pred = np.full(num_pred, -1, np.int64)
    crowd_idx = np.flatnonzero(gt.crowd)
    if crowd_idx.size:
        cat_values, cat_dense = np.unique(
            np.concatenate([gt.cat, pred.cat]), return_inverse=True)
        gt_cat = cat_dense[:num_gt]
        pred_cat = cat_dense[num_gt:]
        ncat = np.int64(cat_values.size)
        rev = crowd_idx[::-1]
        crowd_keys, first = np.unique(gt.img[rev] * ncat + gt_cat[rev],
                                      return_index=True)
        crowd_of_pred = _lookup(crowd_keys, rev[first],
                                pred.img * ncat + pred_cat)
    on_crowd = (crowd_of_pred[p] == g)
    crowd_area = np.bincount(p[on_crowd], weights=i[on_crowd],
                             minlength=num_pred)

    stat = PQStat()
    if tp.any():
        cats, iou_sum = _per_category(gt.cat[g[tp]], iou[tp])
        _, tp_cnt = _per_category(gt.cat[g[tp]])
        stat.add(cats, iou_sum, tp_cnt, np.zeros_like(tp_cnt),
                 np.zeros_like(tp_cnt))
    fn_mask = ~gt_matched & ~gt.crowd
    if fn_mask.any():
        cats, cnt = _per_category(gt.cat[fn_mask])
        stat.add(cats, np.zeros(cats.size), np.zeros_like(cnt),
                 np.zeros_like(cnt), cnt)
    with np.errstate(divide='ignore', invalid='ignore'):
        ignored = (void_area + crowd_area) / pred_area > 0.5
    fp_mask = ~pred_matched & ~ignored
    if fp_mask.any():
        cats, cnt = _per_category(pred.cat[fp_mask])
        stat.add(cats, np.zeros(cats.size), np.zeros_like(cnt), cnt,
                 np.zeros_like(cnt))
    return stat


def pq_image_stats(pan_gt: np.ndarray,
                   pan_pred: np.ndarray,
                   gt_segments: Sequence[Mapping[str, Any]],
                   pred_segments: Sequence[Mapping[str, Any]],
                   categories: Iterable[int],
                   where: str = 'image') -> PQStat:
    """PQ statistics of one image from its two panoptic id maps.

    Reusable by metrics that hold predictions in memory.

    Args:
        pan_gt, pan_pred: (H, W) integer segment-id maps (``rgb2id`` of the
            PNGs), ids in ``[0, 2**32)``; 0 is VOID.
        gt_segments, pred_segments: COCO ``segments_info`` lists (``id``,
            ``category_id``, GT ``iscrowd`` and ``area``; a missing GT
            ``area`` is counted from ``pan_gt``).
        categories: The valid category ids (e.g. the GT json's categories).
        where: Names the image in error messages.

    Returns:
        A :class:`PQStat` with this image's counts.
    """
    pan_gt = np.asarray(pan_gt)
    pan_pred = np.asarray(pan_pred)
    if pan_gt.shape != pan_pred.shape:
        raise ValueError(f'{where}: ground-truth shape {pan_gt.shape} != '
                         f'prediction shape {pan_pred.shape}')
    g, p, c = count_pairs(pan_gt, pan_pred)
    return _match_images(np.zeros(g.size, np.int64), g, p, c, [gt_segments],
                         [pred_segments], categories, lambda k: where)


def _where(gt_ann: Mapping[str, Any], pred_file: str) -> str:
    return f'image {gt_ann["image_id"]!r} (prediction {pred_file})'


# pixels decoded and counted together: small images are grouped (numpy's
# per-call overhead), the buffers stay cache-sized (~3 MB)
_CHUNK_PIXELS = 1 << 18
# images matched together: bounds the stacked contingency tables
_BATCH = 512


def _read_pairs(pairs: Sequence[tuple], gt_folder: str,
                pred_folder: str) -> list[tuple]:
    """Read the PNG pairs and check their headers and sizes.

    Returns:
        ``(gt bytes, pred bytes, pixels, gt file, pred file)`` per pair.
    """
    items = []
    for gt_ann, pred_ann in pairs:
        gt_file = os.path.join(gt_folder, gt_ann['file_name'])
        pred_file = os.path.join(pred_folder, pred_ann['file_name'])
        gt_data = read_png_bytes(gt_file)
        pred_data = read_png_bytes(pred_file)
        gt_shape = png_shape(gt_data, gt_file)
        pred_shape = png_shape(pred_data, pred_file)
        if gt_shape != pred_shape:
            raise ValueError(
                f'{_where(gt_ann, pred_file)}: prediction size {pred_shape} '
                f'differs from ground truth {gt_file} size {gt_shape}')
        items.append((gt_data, pred_data, gt_shape[0] * gt_shape[1],
                      gt_file, pred_file))
    return items


def _tables_from_items(items: Sequence[tuple]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                  np.ndarray]:
    """Decode image pairs (from :func:`_read_pairs`) and count their
    (GT id, predicted id) pixels.

    Images are decoded back to back into one buffer per side (up to
    ``_CHUNK_PIXELS`` at a time) and counted in one pass, so that the cost
    per image is the decoding, not numpy's per-call overhead.

    Returns:
        ``(image index in items, gt ids, pred ids, pixel counts)``.
    """
    parts = []
    first = 0
    while first < len(items):
        last, total = first, 0
        while last < len(items) and (last == first or
                                     total + items[last][2] <= _CHUNK_PIXELS):
            total += items[last][2]
            last += 1
        chunk = items[first:last]
        sizes = [item[2] for item in chunk]
        gt_ids = np.empty(total, np.uint32)
        pred_ids = np.empty(total, np.uint32)
        decode_many_ids_into([item[0] for item in chunk], sizes,
                             [item[3] for item in chunk], gt_ids)
        decode_many_ids_into([item[1] for item in chunk], sizes,
                             [item[4] for item in chunk], pred_ids)
        starts = np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.int64)
        img, g, p, c = count_pairs_by_image(gt_ids, pred_ids, starts,
                                            check_ids=False)
        parts.append((img + first, g, p, c))
        first = last
    if not parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    return tuple(np.concatenate(x) for x in zip(*parts))


def pq_compute_single_core(proc_id: int,
                           annotation_set: Sequence[tuple],
                           gt_folder: str,
                           pred_folder: str,
                           categories: Mapping[int, Any],
                           num_threads: int = 1) -> PQStat:
    """Accumulate PQ statistics over ``(gt_ann, pred_ann)`` pairs.

    Same signature as panopticapi's function (``proc_id`` is unused) plus
    ``num_threads``: PNG decoding (the ``_fastpng`` extension or libspng)
    and the pixel counting release the GIL, so threads run them in parallel
    on groups of images; the matching then runs once per batch of images
    as array operations. The numbers do not depend on the thread count.
    """
    del proc_id
    cat_ids = list(categories)
    annotation_set = list(annotation_set)
    pq_stat = PQStat()
    pool = ThreadPoolExecutor(max_workers=num_threads) \
        if num_threads > 1 and len(annotation_set) > 1 else None
    try:
        for start in range(0, len(annotation_set), _BATCH):
            pairs = annotation_set[start:start + _BATCH]
            # files are read here, decoded and counted in the threads
            items = _read_pairs(pairs, gt_folder, pred_folder)
            if pool is None:
                row_img, g, p, c = _tables_from_items(items)
            else:  # a few groups per thread for balance
                groups = np.array_split(
                    np.arange(len(items)), min(len(items), 4 * num_threads))
                bounds = [(int(x[0]), int(x[-1]) + 1) for x in groups]
                parts = list(
                    pool.map(lambda b: _tables_from_items(items[b[0]:b[1]]),
                             bounds))
                row_img = np.concatenate(
                    [part[0] + b[0] for part, b in zip(parts, bounds)])
                g, p, c = (np.concatenate([part[i] for part in parts])
                           for i in (1, 2, 3))

            def where(k: int, pairs: Sequence[tuple] = pairs) -> str:
                gt_ann, pred_ann = pairs[k]
                return _where(gt_ann,
                              os.path.join(pred_folder, pred_ann['file_name']))

            pq_stat += _match_images(
                row_img, g, p, c, [gt['segments_info'] for gt, _ in pairs],
                [pred['segments_info'] for _, pred in pairs], cat_ids, where)
    finally:
        if pool is not None:
            pool.shutdown()
    return pq_stat


def pq_compute_multi_core(matched_annotations_list: Sequence[tuple],
                          gt_folder: str,
                          pred_folder: str,
                          categories: Mapping[int, Any],
                          nproc: int | None = None,
                          num_threads: int = 1) -> PQStat:
    """Split the images over ``nproc`` worker processes (default: all CPUs)
    and sum their statistics (in image order)."""
    nproc = nproc or multiprocessing.cpu_count()
    nproc = max(1, min(nproc, len(matched_annotations_list)))
    if nproc == 1:
        return pq_compute_single_core(0, matched_annotations_list, gt_folder,
                                      pred_folder, categories, num_threads)
    chunks = np.array_split(np.arange(len(matched_annotations_list)), nproc)
    jobs = [(i, [matched_annotations_list[j] for j in chunk.tolist()],
             gt_folder, pred_folder, dict(categories), num_threads)
            for i, chunk in enumerate(chunks)]
    with multiprocessing.Pool(processes=nproc) as pool:
        results = pool.starmap(pq_compute_single_core, jobs)
    pq_stat = PQStat()
    for res in results:
        pq_stat += res
    return pq_stat


def pq_compute(gt_json_file: str,
               pred_json_file: str,
               gt_folder: str | None = None,
               pred_folder: str | None = None,
               nproc: int = 1,
               num_threads: int | None = None) -> dict[str, Any]:
    """COCO panoptic quality, a drop-in for panopticapi's ``pq_compute``.

    Args:
        gt_json_file, pred_json_file: COCO panoptic jsons.
        gt_folder, pred_folder: PNG folders (default: the json path without
            ``.json``).
        nproc: Worker processes over images (1 = in-process).
        num_threads: Decoding threads per process; default
            ``min(8, cpu_count)`` when ``nproc == 1``, else 1. Use 1 for a
            strictly single-core run. Results do not depend on it.

    Returns:
        ``{'All'|'Things'|'Stuff': {'pq', 'sq', 'rq', 'n'},
        'per_class': {cat_id: {'pq', 'sq', 'rq'}}}`` with fractions in [0, 1].
    """
    for path in (gt_json_file, pred_json_file):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'File not found: {path}')
    with open(gt_json_file) as f:
        gt_json = json.load(f)
    with open(pred_json_file) as f:
        pred_json = json.load(f)
    if gt_folder is None:
        gt_folder = gt_json_file.replace('.json', '')
    if pred_folder is None:
        pred_folder = pred_json_file.replace('.json', '')
    if not os.path.isdir(gt_folder):
        raise FileNotFoundError(
            f'Folder {gt_folder} with ground truth segmentations does not '
            'exist')
    if not os.path.isdir(pred_folder):
        raise FileNotFoundError(
            f'Folder {pred_folder} with predicted segmentations does not '
            'exist')
    categories = {el['id']: el for el in gt_json['categories']}
    pred_annotations = {el['image_id']: el for el in pred_json['annotations']}
    matched = []
    for gt_ann in gt_json['annotations']:
        image_id = gt_ann['image_id']
        if image_id not in pred_annotations:
            raise KeyError(f'{pred_json_file}: no prediction for the image '
                           f'with id {image_id!r}')
        matched.append((gt_ann, pred_annotations[image_id]))
    if num_threads is None:
        num_threads = min(8, os.cpu_count() or 1) if nproc == 1 else 1
    pq_stat = pq_compute_multi_core(matched, gt_folder, pred_folder,
                                    categories, nproc=nproc,
                                    num_threads=num_threads)
    return pq_results(pq_stat, categories)


def pq_results(pq_stat: PQStat,
               categories: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """All / Things / Stuff averages and per-class values of a PQStat."""
    results: dict[str, Any] = {}
    for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
        results[name], per_class = pq_stat.pq_average(categories, isthing)
        if name == 'All':
            results['per_class'] = per_class
    return results
