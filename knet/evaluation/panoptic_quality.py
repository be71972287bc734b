# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""COCO panoptic quality (PQ) by hotcoco, with panopticapi's numbers.

`hotcoco <https://github.com/derekallman/hotcoco>`_ (Rust, MIT, depends on
numpy only) decodes the PNGs and applies panopticapi's rules: ids
``R + 256 G + 256**2 B`` with ``VOID = 0``; a same-category match needs
``IoU > 0.5`` with the prediction's part on GT VOID left out of the union;
crowd GT segments never match; an unmatched prediction is not a false
positive when more than half of it lies on VOID plus the (last) crowd
segment of its category; GT areas come from the GT json; categories with
``tp + fp + fn == 0`` are left out of the means.

This module adds what hotcoco leaves to the caller:

* every PNG header is checked before hotcoco decodes anything (size against
  the other PNG, the GT json's ``images`` entry and :data:`MAX_PIXELS`; 8-bit
  RGB / RGBA / palette only): a header claiming a huge image would make
  hotcoco abort the whole process on the failed allocation;
* errors name the PNG files (hotcoco names only the image id);
* panopticapi's zeros for empty categories and an empty Things / Stuff
  subset (``n == 0``) instead of hotcoco's ``-1``.
"""
from __future__ import annotations

import json
import os
import re
import struct
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    'OFFSET', 'VOID', 'MAX_PIXELS', 'PQStatCat', 'PQStat', 'png_size',
    'pq_image_stats', 'pq_compute', 'pq_results', 'rgb2id', 'id2rgb'
]

OFFSET = 256 * 256 * 256
VOID = 0
# largest PNG (height * width) accepted: 8192 x 8192 (hotcoco holds a few
# buffers of this size per image and thread)
MAX_PIXELS = 1 << 26

_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
_PNG_COLOUR_TYPES = {2: 'RGB', 3: 'palette', 6: 'RGBA'}


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


def png_size(path: str) -> tuple[int, int]:
    """``(height, width)`` from the header of a COCO-panoptic PNG.

    Reads 33 bytes only; used to reject a file before hotcoco decodes it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a PNG, not 8-bit RGB / RGBA / palette, or larger
            than :data:`MAX_PIXELS`.
    """
    try:  # os.read: half the cost of open() for 33 bytes
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise FileNotFoundError(f'Panoptic PNG not found: {path}') from None
    try:
        head = os.read(fd, 33)
    except OSError as err:  # e.g. a folder named like the PNG
        raise ValueError(f'Cannot read panoptic PNG {path}: {err}') from None
    finally:
        os.close(fd)
    if len(head) < 33 or head[:8] != _PNG_MAGIC or head[12:16] != b'IHDR':
        raise ValueError(f'Not a PNG file (bad signature or header): {path}')
    width, height, depth, colour = struct.unpack('>IIBB', head[16:26])
    if depth != 8 or colour not in _PNG_COLOUR_TYPES:
        raise ValueError(
            f'Expected an 8-bit RGB, RGBA or palette panoptic PNG, got bit '
            f'depth {depth} and colour type {colour}: {path}')
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise ValueError(
            f'PNG header says {height}x{width} pixels, outside 1..'
            f'{MAX_PIXELS} (knet.evaluation.panoptic_quality.MAX_PIXELS): '
            f'{path}')
    return height, width


def _check_pngs(pairs: Sequence[tuple[dict, dict]], gt_folder: str,
                pred_folder: str,
                image_sizes: Mapping[Any, tuple[int, int]]) -> dict:
    """Check the headers of every PNG pair; ``{str(image id): files}``."""
    files = {}
    for gt_ann, pred_ann in pairs:
        gt_file = os.path.join(gt_folder, gt_ann['file_name'])
        pred_file = os.path.join(pred_folder, pred_ann['file_name'])
        gt_size, pred_size = png_size(gt_file), png_size(pred_file)
        if pred_size != gt_size:
            raise ValueError(
                f'{pred_file}: prediction size {pred_size} differs from the '
                f'ground truth {gt_file} size {gt_size}')
        want = image_sizes.get(gt_ann['image_id'])
        if want is not None and want != gt_size:
            raise ValueError(
                f'{gt_file}: PNG size {gt_size} differs from the GT json '
                f'images entry (height, width) {want} of image '
                f'{gt_ann["image_id"]!r}')
        files[str(gt_ann['image_id'])] = f'{pred_file} (ground truth ' \
                                         f'{gt_file})'
    return files


_IMAGE_ERROR = re.compile(r'^image (.+?): (.*)$', re.S)


def _hotcoco_stat(gt: str | dict, pred: str | dict, gt_folder: str,
                  pred_folder: str, files: Mapping[str, str]) -> PQStat:
    """Run hotcoco on checked jsons (paths or dicts); errors name the
    files (``files``: PNG names by ``str(image id)``)."""
    try:
        from hotcoco.panoptic import PanopticEval
    except ImportError as err:
        raise ImportError('COCO panoptic quality needs hotcoco: pip install '
                          'hotcoco==1.3.0 (or bash tools/install_deps.sh)'
                          ) from err
    try:
        evaluator = PanopticEval(
            gt, pred, gt_folder=gt_folder, pred_folder=pred_folder)
        evaluator.evaluate()
        per_class = evaluator.results()['per_class']
        for deviation in evaluator.reference_deviations():
            warnings.warn(f'{pred_folder}: differs from panopticapi: '
                          f'{deviation}')
    except (ValueError, KeyError) as err:
        match = _IMAGE_ERROR.match(str(err))
        if match and match.group(1) in files:
            raise ValueError(f'{files[match.group(1)]}: image '
                             f'{match.group(1)}: {match.group(2)}') from None
        raise
    except BaseException as err:  # a Rust panic: pyo3's PanicException
        if type(err).__name__ != 'PanicException':
            raise
        raise RuntimeError(f'hotcoco failed on the PNGs of {pred_folder}: '
                           f'{err}') from None
    stat = PQStat()
    for cat_id, c in per_class.items():
        stat.add([cat_id], [c['iou']], [c['tp']], [c['fp']], [c['fn']])
    return stat


def pq_image_stats(pan_gt: np.ndarray,
                   pan_pred: np.ndarray,
                   gt_segments: Sequence[Mapping[str, Any]],
                   pred_segments: Sequence[Mapping[str, Any]],
                   categories: Iterable[int],
                   where: str = 'image') -> PQStat:
    """PQ statistics of one image from its two panoptic id maps.

    For metrics that hold predictions in memory: the maps are written as
    PNGs to a temporary folder and scored by the same hotcoco call as
    :func:`pq_compute`, so the rules cannot drift apart.

    Args:
        pan_gt, pan_pred: (H, W) integer segment-id maps (``rgb2id`` of the
            PNGs), ids in ``[0, 2**24)``; 0 is VOID.
        gt_segments, pred_segments: COCO ``segments_info`` lists (``id``,
            ``category_id``, GT ``iscrowd`` and ``area``; a missing GT
            ``area`` is counted from ``pan_gt``).
        categories: The valid category ids (e.g. the GT json's categories).
        where: Names the image in error messages.

    Returns:
        A :class:`PQStat` with this image's counts.
    """
    from PIL import Image
    pan_gt = np.asarray(pan_gt)
    pan_pred = np.asarray(pan_pred)
    if pan_gt.shape != pan_pred.shape or pan_gt.ndim != 2:
        raise ValueError(f'{where}: ground-truth shape {pan_gt.shape} and '
                         f'prediction shape {pan_pred.shape} must be the '
                         'same (H, W)')
    for name, ids in (('ground-truth', pan_gt), ('prediction', pan_pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= OFFSET):
            raise ValueError(f'{where}: {name} segment ids must lie in '
                             '[0, 2**24) to be stored as RGB')
    cats = [{'id': int(c), 'name': str(c), 'isthing': 1}
            for c in categories]
    ann = {'image_id': 0, 'file_name': 'x.png'}
    with tempfile.TemporaryDirectory(prefix='knet_pq_') as tmp:
        for side, ids in (('gt', pan_gt), ('pred', pan_pred)):
            os.mkdir(os.path.join(tmp, side))
            Image.fromarray(id2rgb(ids)).save(
                os.path.join(tmp, side, 'x.png'), compress_level=1)
        return _hotcoco_stat(
            {'annotations': [dict(ann, segments_info=list(gt_segments))],
             'categories': cats},
            {'annotations': [dict(ann, segments_info=list(pred_segments))]},
            os.path.join(tmp, 'gt'), os.path.join(tmp, 'pred'),
            {'0': where})


def _load_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'File not found: {path}')
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}: not valid JSON: {err}') from None
    if not isinstance(data, dict) or not isinstance(
            data.get('annotations'), list):
        raise ValueError(f'{path}: expected a COCO panoptic json with an '
                         '"annotations" list')
    return data


def pq_compute(gt_json_file: str,
               pred_json_file: str,
               gt_folder: str | None = None,
               pred_folder: str | None = None,
               nproc: int | None = None,
               num_threads: int | None = None) -> dict[str, Any]:
    """COCO panoptic quality, a drop-in for panopticapi's ``pq_compute``.

    Args:
        gt_json_file, pred_json_file: COCO panoptic jsons.
        gt_folder, pred_folder: PNG folders (default: the json path without
            ``.json``).
        nproc, num_threads: Accepted for compatibility and ignored: hotcoco
            evaluates the images in threads on all CPUs (set
            ``RAYON_NUM_THREADS`` before the first call to limit them). The
            numbers do not depend on it.

    Returns:
        ``{'All'|'Things'|'Stuff': {'pq', 'sq', 'rq', 'n'},
        'per_class': {cat_id: {'pq', 'sq', 'rq'}}}`` with fractions in [0, 1].

    Raises:
        FileNotFoundError: A json, folder or PNG is missing.
        KeyError: A GT image has no prediction.
        ValueError: A PNG is malformed, too large or of the wrong size, or
            its segments disagree with the json (the message names files).
    """
    del nproc, num_threads
    gt_json = _load_json(gt_json_file)
    pred_json = _load_json(pred_json_file)
    if gt_folder is None:
        gt_folder = gt_json_file.replace('.json', '')
    if pred_folder is None:
        pred_folder = pred_json_file.replace('.json', '')
    for kind, folder in (('ground truth', gt_folder),
                         ('predicted', pred_folder)):
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f'Folder {folder} with {kind} segmentations does not exist')
    categories = {el['id']: el for el in gt_json['categories']}
    pred_annotations = {el['image_id']: el for el in pred_json['annotations']}
    pairs = []
    for gt_ann in gt_json['annotations']:
        image_id = gt_ann['image_id']
        if image_id not in pred_annotations:
            raise KeyError(f'{pred_json_file}: no prediction for the image '
                           f'with id {image_id!r}')
        pairs.append((gt_ann, pred_annotations[image_id]))
    image_sizes = {
        im['id']: (im['height'], im['width'])
        for im in gt_json.get('images') or []
        if 'height' in im and 'width' in im
    }
    files = _check_pngs(pairs, gt_folder, pred_folder, image_sizes)
    if not pairs:
        return pq_results(PQStat(), categories)
    # the paths, not the loaded dicts: hotcoco would serialise dicts back
    # to JSON text first (~15% of its time)
    stat = _hotcoco_stat(gt_json_file, pred_json_file, gt_folder, pred_folder,
                         files)
    return pq_results(stat, categories)


def pq_results(pq_stat: PQStat,
               categories: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """All / Things / Stuff averages and per-class values of a PQStat."""
    results: dict[str, Any] = {}
    for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
        results[name], per_class = pq_stat.pq_average(categories, isthing)
        if name == 'All':
            results['per_class'] = per_class
    return results
