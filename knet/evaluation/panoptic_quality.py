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
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._utils import count_pairs, read_rgb_ids

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


def _segment_arrays(segments: Sequence[Mapping[str, Any]],
                    with_area: bool) -> dict[str, np.ndarray]:
    """segments_info list -> id/category/iscrowd(/area) arrays.

    Duplicate ids keep the last entry, as panopticapi's dict does.
    """
    by_id = {int(s['id']): s for s in segments}
    segs = list(by_id.values())
    out = {
        'id': np.fromiter(by_id.keys(), np.int64, len(segs)),
        'cat': np.fromiter((s['category_id'] for s in segs), np.int64,
                           len(segs)),
        'crowd': np.fromiter((s.get('iscrowd', 0) == 1 for s in segs), bool,
                             len(segs)),
    }
    if with_area:
        out['area'] = np.fromiter((s.get('area', -1) for s in segs),
                                  np.float64, len(segs))
    return out


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


def _match_image(gt_ids: np.ndarray, pred_ids: np.ndarray,
                 inter: np.ndarray,
                 gt_segments: Sequence[Mapping[str, Any]],
                 pred_segments: Sequence[Mapping[str, Any]],
                 categories: Iterable[int], where: str) -> PQStat:
    """panopticapi's per-image matching on a sparse contingency table."""
    pred = _segment_arrays(pred_segments, with_area=False)
    gt = _segment_arrays(gt_segments, with_area=True)
    num_gt, num_pred = gt['id'].size, pred['id'].size

    # predicted areas from the PNG + sanity checks (panopticapi's errors)
    png_pred, inv = np.unique(pred_ids, return_inverse=True)
    png_area = np.bincount(inv.reshape(-1), weights=inter,
                           minlength=png_pred.size)
    p_order = np.argsort(pred['id'], kind='stable')
    p_sorted = pred['id'][p_order]
    png_to_json = _lookup(p_sorted, p_order, png_pred)
    unknown = png_pred[(png_to_json < 0) & (png_pred != VOID)]
    if unknown.size:
        raise KeyError(f'{where}: segment id(s) {unknown.tolist()} are '
                       'present in the PNG but not in the JSON '
                       'segments_info')
    pred_area = np.zeros(num_pred, np.float64)
    present = png_to_json >= 0
    pred_area[png_to_json[present]] = png_area[present]
    seen = np.zeros(num_pred, bool)
    seen[png_to_json[present]] = True
    if not seen.all():
        raise KeyError(f'{where}: segment id(s) {pred["id"][~seen].tolist()}'
                       ' are in the JSON segments_info but not in the PNG')
    cat_array = np.asarray(sorted(set(categories)), np.int64)
    bad = ~np.isin(pred['cat'], cat_array)
    if bad.any():
        raise KeyError(f'{where}: segment id(s) {pred["id"][bad].tolist()} '
                       f'have unknown category_id(s) '
                       f'{sorted(set(pred["cat"][bad].tolist()))}')

    # gt side: JSON areas (as panopticapi), PNG counts only if 'area' missing
    g_order = np.argsort(gt['id'], kind='stable')
    g_idx = _lookup(gt['id'][g_order], g_order, gt_ids)
    p_idx = _lookup(p_sorted, p_order, pred_ids)
    gt_area = gt['area']
    if (gt_area < 0).any():
        png_gt_area = np.bincount(g_idx[g_idx >= 0], weights=inter[g_idx >= 0],
                                  minlength=num_gt)
        gt_area = np.where(gt_area < 0, png_gt_area, gt_area)

    # prediction area on GT VOID, per predicted segment
    on_void = (gt_ids == VOID) & (p_idx >= 0)
    void_area = np.bincount(p_idx[on_void], weights=inter[on_void],
                            minlength=num_pred)

    both = (g_idx >= 0) & (p_idx >= 0)
    g, p, i = g_idx[both], p_idx[both], inter[both]
    cand = ~gt['crowd'][g] & (gt['cat'][g] == pred['cat'][p])
    union = gt_area[g] + pred_area[p] - i - void_area[p]
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = i / union
    tp = cand & (iou > 0.5)
    gt_matched = np.zeros(num_gt, bool)
    gt_matched[g[tp]] = True
    pred_matched = np.zeros(num_pred, bool)
    pred_matched[p[tp]] = True

    # last crowd segment of each category (panopticapi's dict overwrite)
    crowd_of_pred = np.full(num_pred, -1, np.int64)
    crowd_idx = np.flatnonzero(gt['crowd'])
    if crowd_idx.size:
        rev = crowd_idx[::-1]
        crowd_cats, first = np.unique(gt['cat'][rev], return_index=True)
        crowd_of_pred = _lookup(crowd_cats, rev[first], pred['cat'])
    on_crowd = (crowd_of_pred[p] == g)
    crowd_area = np.bincount(p[on_crowd], weights=i[on_crowd],
                             minlength=num_pred)

    stat = PQStat()
    if tp.any():
        cats, iou_sum = _per_category(gt['cat'][g[tp]], iou[tp])
        _, tp_cnt = _per_category(gt['cat'][g[tp]])
        stat.add(cats, iou_sum, tp_cnt, np.zeros_like(tp_cnt),
                 np.zeros_like(tp_cnt))
    fn_mask = ~gt_matched & ~gt['crowd']
    if fn_mask.any():
        cats, cnt = _per_category(gt['cat'][fn_mask])
        stat.add(cats, np.zeros(cats.size), np.zeros_like(cnt),
                 np.zeros_like(cnt), cnt)
    with np.errstate(divide='ignore', invalid='ignore'):
        ignored = (void_area + crowd_area) / pred_area > 0.5
    fp_mask = ~pred_matched & ~ignored
    if fp_mask.any():
        cats, cnt = _per_category(pred['cat'][fp_mask])
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
    return _match_image(g, p, c, gt_segments, pred_segments, categories,
                        where)


def _image_stats_from_files(gt_ann: Mapping[str, Any],
                            pred_ann: Mapping[str, Any], gt_folder: str,
                            pred_folder: str,
                            categories: Iterable[int]) -> PQStat:
    gt_file = os.path.join(gt_folder, gt_ann['file_name'])
    pred_file = os.path.join(pred_folder, pred_ann['file_name'])
    pan_gt = read_rgb_ids(gt_file)
    pan_pred = read_rgb_ids(pred_file)
    where = f'image {gt_ann["image_id"]!r} (prediction {pred_file})'
    if pan_gt.shape != pan_pred.shape:
        raise ValueError(f'{where}: prediction size {pan_pred.shape} differs '
                         f'from ground truth {gt_file} size {pan_gt.shape}')
    g, p, c = count_pairs(pan_gt, pan_pred)
    return _match_image(g, p, c, gt_ann['segments_info'],
                        pred_ann['segments_info'], categories, where)


def pq_compute_single_core(proc_id: int,
                           annotation_set: Sequence[tuple],
                           gt_folder: str,
                           pred_folder: str,
                           categories: Mapping[int, Any],
                           num_threads: int = 1) -> PQStat:
    """Accumulate PQ statistics over ``(gt_ann, pred_ann)`` pairs.

    Same signature as panopticapi's function (``proc_id`` is unused) plus
    ``num_threads``: PNG decoding and the numpy work release the GIL, so a
    few threads overlap them. Per-image results are summed in image order
    whatever the thread count, so the numbers do not depend on it.
    """
    del proc_id
    cat_ids = list(categories)

    def one(pair: tuple) -> PQStat:
        return _image_stats_from_files(pair[0], pair[1], gt_folder,
                                       pred_folder, cat_ids)

    pq_stat = PQStat()
    if num_threads > 1 and len(annotation_set) > 1:
        with ThreadPoolExecutor(max_workers=num_threads) as pool:
            for stat in pool.map(one, annotation_set):
                pq_stat += stat
    else:
        for pair in annotation_set:
            pq_stat += one(pair)
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
