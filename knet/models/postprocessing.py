# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net test-time post-processing: mask rescaling, panoptic merge, top-k.

Every kept instance / panoptic segment carries the index of the kernel that
produced it (``kernel_inds``), so that a tracker can pick that kernel's
embedding. The thresholds come from the head's ``test_cfg``
(:data:`DEFAULT_TEST_CFG` lists the keys and their defaults).
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.mask import mask2bbox
from mmengine.structures import InstanceData
from torch import Tensor

#: ``pan_id = label + segment_index * INSTANCE_OFFSET`` (mmdet's convention)
INSTANCE_OFFSET = 1000

#: ``test_cfg`` (``test_cfg.rcnn`` of the detector) read by the
#: instance / panoptic post-processing, with the defaults used when a key
#: is absent. ``mask_thr`` binarises instance masks and defines the own
#: area of a panoptic candidate; ``max_per_img`` and ``mask_score`` only
#: apply to instance outputs.
DEFAULT_TEST_CFG = dict(
    max_per_img=100,
    mask_thr=0.5,
    mask_score=False,
    # panoptic thing candidates: 'per_kernel' (image K-Net: the best thing
    # class of every thing kernel) or 'topk' (Video K-Net, spec §1.7: the
    # ``max_per_img`` best (kernel, class) pairs of all thing scores)
    thing_candidates='per_kernel',
    merge_stuff_thing=dict(
        overlap_thr=0.6, instance_score_thr=0.3, segment_id_start=1))
#: every key of ``test_cfg`` the K-Net post-processing reads
KNOWN_TEST_CFG_KEYS = frozenset(DEFAULT_TEST_CFG)
#: every key of ``test_cfg.merge_stuff_thing`` the panoptic merge reads
KNOWN_MERGE_CFG_KEYS = frozenset(DEFAULT_TEST_CFG['merge_stuff_thing'])


def get_test_cfg(cfg: Optional[dict], key: str):
    """``cfg[key]`` or its :data:`DEFAULT_TEST_CFG` default (``key`` may be
    ``'merge_stuff_thing.<name>'``)."""
    cfg = cfg or {}
    if key.startswith('merge_stuff_thing.'):
        name = key.split('.', 1)[1]
        merge = cfg.get('merge_stuff_thing') or {}
        return merge.get(name, DEFAULT_TEST_CFG['merge_stuff_thing'][name])
    return cfg.get(key, DEFAULT_TEST_CFG[key])


class PanopticPrediction(NamedTuple):
    """Panoptic output of one image with its segments (segment order =
    descending kernel score, i.e. segment index order)."""
    #: (H, W) long panoptic id map (``void_label`` where unassigned)
    pan_seg: Tensor
    #: (M,) long panoptic id of every kept segment
    segment_ids: Tensor
    #: (M,) long label of every kept segment
    labels: Tensor
    #: (M,) score of every kept segment
    scores: Tensor
    #: (M,) long index of the kernel that produced every kept segment
    kernel_inds: Tensor


def rescale_masks(mask_logits: Tensor, img_meta: dict) -> Tensor:
    """Sigmoid probabilities of (N, h, w) logits at the original image size.

    Upsample to the padded batch shape, crop the valid ``img_shape`` region,
    then resize to ``ori_shape`` (all bilinear, align_corners=False). The
    last resize is skipped when ``img_shape == ori_shape``: PyTorch's
    same-size bilinear resize computes ``(x * 1 + x * 0) * 1 + (..) * 0``,
    i.e. returns ``x`` bit for bit, so skipping it only saves a full pass.
    """
    if mask_logits.size(0) == 0:
        return mask_logits.new_zeros((0, *img_meta['ori_shape'][:2]))
    probs = mask_logits.sigmoid()[None]
    probs = F.interpolate(
        probs,
        size=tuple(img_meta['batch_input_shape']),
        mode='bilinear',
        align_corners=False)
    img_h, img_w = img_meta['img_shape'][:2]
    probs = probs[..., :img_h, :img_w]
    ori_shape = tuple(img_meta['ori_shape'][:2])
    if (img_h, img_w) != ori_shape:
        probs = F.interpolate(
            probs, size=ori_shape, mode='bilinear', align_corners=False)
    return probs[0]


def panoptic_scores(cls_probs: Tensor, num_thing_kernels: int,
                    num_thing_classes: int) -> Tuple[Tensor, Tensor]:
    """Score and label of every kernel: best thing class for thing kernels,
    the own class (diagonal) for stuff kernel ``j`` = class
    ``num_thing_classes + j``."""
    thing_scores, thing_labels = cls_probs[:num_thing_kernels, :
                                           num_thing_classes].max(dim=1)
    num_stuff = cls_probs.size(0) - num_thing_kernels
    stuff_labels = torch.arange(
        num_thing_classes,
        num_thing_classes + num_stuff,
        device=cls_probs.device)
    stuff_scores = cls_probs[num_thing_kernels:].gather(
        1, stuff_labels[:, None])[:, 0]
    return (torch.cat([thing_scores, stuff_scores]),
            torch.cat([thing_labels, stuff_labels]))


def panoptic_topk_scores(cls_probs: Tensor, num_thing_kernels: int,
                         num_thing_classes: int,
                         max_per_img: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Video K-Net's panoptic candidates (spec §1.7): the ``max_per_img``
    best (thing kernel, thing class) pairs, then the stuff kernels.

    A kernel may appear with several classes; a thing kernel outside the
    top-k takes no part in the merge. Returns the scores, labels and the
    kernel index of every candidate (things, then stuff, each in descending
    score).
    """
    thing_probs = cls_probs[:num_thing_kernels, :num_thing_classes]
    k = min(int(max_per_img), thing_probs.numel())
    thing_scores, flat = thing_probs.flatten().topk(k)
    thing_kernels = torch.div(flat, num_thing_classes, rounding_mode='floor')
    thing_labels = flat % num_thing_classes
    scores, labels = panoptic_scores(cls_probs, num_thing_kernels,
                                     num_thing_classes)
    # stuff in descending score as well: the merge's argmax takes the first
    # of equal products, so the order decides ties (e.g. all probs 0)
    stuff_scores, order = scores[num_thing_kernels:].sort(
        descending=True, stable=True)
    stuff_labels = labels[num_thing_kernels:][order]
    stuff_kernels = order + num_thing_kernels
    return (torch.cat([thing_scores, stuff_scores]),
            torch.cat([thing_labels, stuff_labels]),
            torch.cat([thing_kernels, stuff_kernels]))


def panoptic_merge(scores: Tensor,
                   labels: Tensor,
                   mask_probs: Tensor,
                   num_thing_kernels: int,
                   void_label: int,
                   overlap_thr: float = 0.6,
                   instance_score_thr: float = 0.3,
                   mask_thr: float = 0.5,
                   segment_id_start: int = 1) -> Tensor:
    """K-Net's greedy panoptic merge, vectorised.

    Every pixel goes to ``argmax_k score_k * prob_k``. Kernel ``k`` becomes a
    segment when it is a stuff kernel or a thing with
    ``score >= instance_score_thr``, and when
    ``#pixels(argmax == k) / #pixels(prob_k >= mask_thr) >= overlap_thr``
    (both counts nonzero). Segments are numbered in descending score order
    starting at ``segment_id_start``; the id is
    ``label + index * INSTANCE_OFFSET``. Other pixels are ``void_label``.

    The original visits kernels in score order, but its decision for a
    kernel only depends on that kernel's own argmax area, so the loop can be
    replaced by counting.

    Args:
        scores (Tensor): (N,) kernel scores.
        labels (Tensor): (N,) kernel labels.
        mask_probs (Tensor): (N, H, W) mask probabilities.
        num_thing_kernels (int): The first kernels are things.
        void_label (int): Label of unassigned pixels (num_classes).
        segment_id_start (int): 1 (default) keeps the first segment from
            getting id ``label`` and colliding with VOID in the evaluators;
            0 reproduces the original exactly.

    Returns:
        Tensor: (H, W) long panoptic id map.
    """
    num_kernels = scores.size(0)
    height, width = mask_probs.shape[-2:]
    device = mask_probs.device
    if num_kernels == 0:
        return torch.full((height, width),
                          void_label,
                          dtype=torch.long,
                          device=device)
    ids = (scores[:, None, None] * mask_probs).argmax(dim=0)
    area = torch.bincount(ids.flatten(), minlength=num_kernels)
    orig_area = (mask_probs >= mask_thr).flatten(1).sum(1)
    lut = _segment_lut(scores, labels, area, orig_area, num_thing_kernels,
                       void_label, overlap_thr, instance_score_thr,
                       segment_id_start)
    return lut[ids]


def _segment_lut(scores: Tensor, labels: Tensor, area: Tensor,
                 orig_area: Tensor, num_thing_kernels: int, void_label: int,
                 overlap_thr: float, instance_score_thr: float,
                 segment_id_start: int) -> Tensor:
    """Panoptic id of every kernel (``void_label`` for rejected ones) from
    its argmax area and its own thresholded area (see
    :func:`panoptic_merge`)."""
    num_kernels = scores.size(0)
    device = scores.device
    is_thing = torch.arange(num_kernels, device=device) < num_thing_kernels
    keep = (~is_thing) | (scores >= instance_score_thr)
    keep &= (area > 0) & (orig_area > 0)
    # float64 division, as the original's Python-level ``area / orig``
    ratio = area.double() / orig_area.clamp(min=1).double()
    keep &= ratio >= overlap_thr

    order = torch.sort(scores, descending=True, stable=True).indices
    rank_among_kept = torch.cumsum(keep[order].long(), dim=0) - 1
    seg_index = torch.empty_like(rank_among_kept)
    seg_index[order] = rank_among_kept
    pan_ids = labels.long() + (seg_index + segment_id_start) * INSTANCE_OFFSET
    return torch.where(keep, pan_ids, pan_ids.new_tensor(void_label))


def kept_segments(scores: Tensor, labels: Tensor, lut: Tensor,
                  pan_seg: Tensor, void_label: int) -> PanopticPrediction:
    """Collect the segments of a kernel -> panoptic id table ``lut`` (see
    :func:`_segment_lut`): kept kernels, in segment (descending score)
    order, with their ids, labels, scores and kernel indices."""
    order = torch.sort(scores, descending=True, stable=True).indices
    kernel_inds = order[lut[order] != void_label]
    return PanopticPrediction(pan_seg, lut[kernel_inds], labels[kernel_inds],
                              scores[kernel_inds], kernel_inds)


# --------------------------------------------------------------------------
# Fused, memory-bounded form of ``rescale_masks`` + ``panoptic_merge``.
#
# The straightforward form materialises (N, H, W) float probabilities at
# the original size (153 x 800 x 1216 x 4 B = 595 MB) several times over
# (resize, crop copy, second resize, score product, threshold, int64
# conversion for the count). The functions below produce the *same* argmax
# map and the same per-kernel areas while only ever holding a slab of it:
#
# * banded path (the usual case: masks at a power-of-two stride of the
#   padded batch and ``img_shape == ori_shape``): horizontal bands of output
#   rows, all kernels at once. A band is computed by resizing the slice of
#   input rows it depends on to exactly ``factor`` times its height: the
#   resize ratio stays the same power of two, every source coordinate
#   ``(dst + 0.5) / factor - 0.5`` is an exact dyadic number, so each output
#   pixel gets bit-identical neighbours and weights, hence a bit-identical
#   value. The band buffers are allocated once and reused (fresh multi-MB
#   allocations cost more than the arithmetic here), and the per-pixel
#   argmax is ``min{k : v_k == max_k v_k}`` computed with vectorised
#   ``amax`` / ``eq`` / ``amin`` (``Tensor.max(dim)`` tracks indices in a
#   slow scalar loop); it is the first maximal index, exactly as
#   ``argmax``. Counts use a uint8 sum over the band rows (< 256).
# * general path: chunks of kernels through :func:`rescale_masks` (every
#   channel of a bilinear resize is computed independently, so a chunk's
#   values equal the corresponding rows of the full result), combined
#   across chunks with a strict ``>`` so that ties keep the earliest kernel.
#
# Inputs with NaN (a broken model) take the straightforward formulation, so
# that even NaN handling is that of ``argmax``.
# --------------------------------------------------------------------------
#: elements (kernels x pixels) of one slab: 8M floats = 32 MB. Smaller
#: slabs are a little faster on an idle CPU (cache), but each band costs ~8
#: parallel ops, and on a busy machine every OpenMP region waits for a
#: descheduled worker; 8M keeps that count low (~17 bands at 800x1216).
SLAB_ELEMENTS = 8 * 2**20


def _is_pow2(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _band_factors(mask_shape, img_meta: dict):
    """(fh, fw) when the banded exact path applies, else None."""
    height, width = mask_shape
    pad_h, pad_w = (int(v) for v in img_meta['batch_input_shape'])
    img_h, img_w = (int(v) for v in img_meta['img_shape'][:2])
    if (img_h, img_w) != tuple(int(v) for v in img_meta['ori_shape'][:2]):
        return None
    if pad_h % height or pad_w % width:
        return None
    fh, fw = pad_h // height, pad_w // width
    if not (_is_pow2(fh) and _is_pow2(fw)) or fh > 64:
        return None
    # PyTorch switches to another bilinear kernel for small outputs
    # (H + W <= 128); keep every band (and the full map) on the same one.
    if pad_w <= 128:
        return None
    return fh, fw


def _band_input_rows(row0: int, row1: int, fh: int,
                     height: int) -> Tuple[int, int]:
    """Input rows ``start:stop`` that output rows ``row0:row1`` of a
    ``fh`` x bilinear upsampling (align_corners=False) read.

    Output row ``r`` reads input rows ``floor(s)`` and ``floor(s) + 1``
    (clamped) with ``s = max(0, (r + 0.5) / fh - 0.5)``. Resized by exactly
    ``fh``, the slice puts output row ``r`` at ``r - start * fh`` with
    source coordinate ``s - start`` (exact: a dyadic number), so the
    neighbours, weights and clamping are those of the full resize.
    """
    start = max(0, (2 * row0 + 1 - fh) // (2 * fh))
    last = max(0, (2 * row1 - 1 - fh) // (2 * fh))
    return start, min(height, last + 2)


def _bilinear_into(src: Tensor, size: Tuple[int, int],
                   out: Tensor) -> Tensor:
    """``F.interpolate(src, size, bilinear, align_corners=False)`` written
    into ``out`` (the same ATen kernel, no scale factors)."""
    try:
        return torch._C._nn.upsample_bilinear2d(
            src, list(size), False, None, None, out=out)
    except (TypeError, RuntimeError):  # pragma: no cover - other torch
        return F.interpolate(
            src, size=size, mode='bilinear', align_corners=False)


def _banded_argmax_and_areas(scores: Tensor, sig: Tensor, factors,
                             out_h: int, out_w: int, mask_thr: float,
                             slab_elements: int) -> Tuple[Tensor, Tensor]:
    """Banded path of :func:`mask_argmax_and_areas`."""
    num_kernels, height, width = sig.shape
    fh, fw = factors
    device = sig.device
    rows = max(fh, slab_elements // max(1, num_kernels * out_w))
    # a multiple of fh, and < 256 rows per band (uint8 counts)
    rows = min(-(-rows // fh) * fh, (255 - fh // 2) // fh * fh)
    bands, row0 = [], 0
    while row0 < out_h:
        # bands after the first start at fh * k + fh // 2, where the
        # bilinear footprint needs no input row above floor(row / fh)
        row1 = min(out_h, row0 + rows + (fh // 2 if row0 == 0 else 0))
        bands.append((row0, row1, *_band_input_rows(row0, row1, fh,
                                                    height)))
        row0 = row1
    max_up = max((stop - start) * fh for _, _, start, stop in bands)
    max_rows = max(row1 - row0 for row0, row1, _, _ in bands)
    up_buf = sig.new_empty(num_kernels * max_up * width * fw)
    flag_buf = torch.empty(
        num_kernels * max_rows * out_w, dtype=torch.bool, device=device)
    key_dtype = torch.uint8 if num_kernels < 255 else torch.int32
    key_buf = torch.empty(
        num_kernels * max_rows * out_w, dtype=key_dtype, device=device)
    keys = torch.arange(num_kernels, dtype=key_dtype, device=device)
    keys = keys[:, None, None]
    no_key = torch.tensor(num_kernels, dtype=key_dtype, device=device)
    scale = scores[:, None, None]

    ids = torch.empty((out_h, out_w), dtype=key_dtype, device=device)
    counts = torch.zeros(num_kernels, dtype=torch.int32, device=device)
    for row0, row1, start, stop in bands:
        up_size = ((stop - start) * fh, width * fw)
        up = up_buf[:num_kernels * up_size[0] * up_size[1]].view(
            1, num_kernels, *up_size)
        up = _bilinear_into(sig[None, :, start:stop], up_size, up)
        probs = up[0, :, row0 - start * fh:row1 - start * fh, :out_w]
        band_shape = (num_kernels, row1 - row0, out_w)
        numel = band_shape[0] * band_shape[1] * band_shape[2]
        flags = flag_buf[:numel].view(band_shape)
        # own area: #(prob >= thr), rows first in uint8 (< 256 rows)
        torch.ge(probs, mask_thr, out=flags)
        counts += flags.view(torch.uint8).sum(
            1, dtype=torch.uint8).sum(
                1, dtype=torch.int32)
        # first index of the maximal score * prob (== argmax(0))
        weighted = probs.mul_(scale)
        torch.eq(weighted, weighted.amax(0), out=flags)
        first = key_buf[:numel].view(band_shape)
        torch.where(flags, keys, no_key, out=first)
        torch.amin(first, 0, out=ids[row0:row1])
    return ids.long(), counts.long()


def mask_argmax_and_areas(scores: Tensor,
                          mask_logits: Tensor,
                          img_meta: dict,
                          mask_thr: float = 0.5,
                          slab_elements: int = SLAB_ELEMENTS
                          ) -> Tuple[Tensor, Tensor]:
    """``ids = (scores * probs).argmax(0)`` and
    ``orig_area = (probs >= mask_thr).sum((1, 2))`` for
    ``probs = rescale_masks(mask_logits, img_meta)``, without materialising
    ``probs``; identical results (see the comment above).

    Returns:
        tuple: ids (H, W) long at ``ori_shape``, orig_area (N,) long.
    """
    num_kernels = mask_logits.size(0)
    ori_h, ori_w = (int(v) for v in img_meta['ori_shape'][:2])
    slab_elements = max(1, int(slab_elements))
    scale = scores[:, None, None]
    if bool(torch.isnan(mask_logits).any()) or bool(
            torch.isnan(scores).any()):
        probs = rescale_masks(mask_logits, img_meta)
        return ((scale * probs).argmax(dim=0),
                (probs >= mask_thr).flatten(1).sum(1))
    factors = _band_factors(mask_logits.shape[-2:], img_meta)
    if factors is not None:
        return _banded_argmax_and_areas(scores, mask_logits.sigmoid(),
                                        factors, ori_h, ori_w, mask_thr,
                                        slab_elements)
    # general path: kernel chunks
    chunk = max(1, slab_elements // max(1, ori_h * ori_w))
    best = ids = None
    areas = []
    for start in range(0, num_kernels, chunk):
        stop = min(num_kernels, start + chunk)
        probs = rescale_masks(mask_logits[start:stop], img_meta)
        areas.append((probs >= mask_thr).flatten(1).sum(1))
        values, idx = (scale[start:stop] * probs).max(dim=0)
        if best is None:
            best, ids = values, idx
        else:
            better = values > best
            best = torch.where(better, values, best)
            ids = torch.where(better, idx + start, ids)
    return ids, torch.cat(areas).long()


def panoptic_merge_logits(scores: Tensor,
                          labels: Tensor,
                          mask_logits: Tensor,
                          img_meta: dict,
                          num_thing_kernels: int,
                          void_label: int,
                          overlap_thr: float = 0.6,
                          instance_score_thr: float = 0.3,
                          mask_thr: float = 0.5,
                          segment_id_start: int = 1,
                          slab_elements: int = SLAB_ELEMENTS) -> Tensor:
    """``panoptic_merge(scores, labels, rescale_masks(mask_logits,
    img_meta), ...)`` with identical output, computed slab by slab (see
    :func:`mask_argmax_and_areas`): peak memory ~``slab_elements`` floats
    instead of several (N, H, W) tensors, and fewer passes over them."""
    return panoptic_segments_logits(
        scores, labels, mask_logits, img_meta, num_thing_kernels,
        void_label, overlap_thr, instance_score_thr, mask_thr,
        segment_id_start, slab_elements).pan_seg


def panoptic_segments_logits(scores: Tensor,
                             labels: Tensor,
                             mask_logits: Tensor,
                             img_meta: dict,
                             num_thing_kernels: int,
                             void_label: int,
                             overlap_thr: float = 0.6,
                             instance_score_thr: float = 0.3,
                             mask_thr: float = 0.5,
                             segment_id_start: int = 1,
                             slab_elements: int = SLAB_ELEMENTS
                             ) -> PanopticPrediction:
    """:func:`panoptic_merge_logits` that also returns the kept segments
    and the kernel of each (what a tracker needs)."""
    ori_h, ori_w = (int(v) for v in img_meta['ori_shape'][:2])
    num_kernels = scores.size(0)
    if num_kernels == 0:
        pan_seg = torch.full((ori_h, ori_w),
                             void_label,
                             dtype=torch.long,
                             device=mask_logits.device)
        empty = pan_seg.new_zeros((0, ))
        return PanopticPrediction(pan_seg, empty, empty,
                                  scores.new_zeros((0, )), empty)
    ids, orig_area = mask_argmax_and_areas(scores, mask_logits, img_meta,
                                           mask_thr, slab_elements)
    area = torch.bincount(ids.flatten(), minlength=num_kernels)
    lut = _segment_lut(scores, labels, area, orig_area, num_thing_kernels,
                       void_label, overlap_thr, instance_score_thr,
                       segment_id_start)
    return kept_segments(scores, labels, lut, lut[ids], void_label)


def binary_masks(mask_logits: Tensor,
                 kernel_idx: Tensor,
                 img_meta: dict,
                 mask_thr: float = 0.5,
                 slab_elements: int = SLAB_ELEMENTS) -> Tensor:
    """``rescale_masks(mask_logits[kernel_idx], img_meta) > mask_thr``.

    Identical result; every distinct kernel is rescaled once (top-k lists a
    kernel once per class it is kept for) and in chunks, so no (k, H, W)
    float tensor is materialised.
    """
    ori_h, ori_w = (int(v) for v in img_meta['ori_shape'][:2])
    if kernel_idx.numel() == 0:
        return mask_logits.new_zeros((0, ori_h, ori_w), dtype=torch.bool)
    uniq, inverse = torch.unique(kernel_idx, return_inverse=True)
    out = torch.empty((uniq.numel(), ori_h, ori_w),
                      dtype=torch.bool,
                      device=mask_logits.device)
    chunk = max(1, int(slab_elements) // max(1, ori_h * ori_w))
    for start in range(0, uniq.numel(), chunk):
        stop = min(uniq.numel(), start + chunk)
        out[start:stop] = rescale_masks(mask_logits[uniq[start:stop]],
                                        img_meta) > mask_thr
    return out[inverse]


def instance_topk(cls_probs: Tensor,
                  mask_logits: Tensor,
                  img_meta: dict,
                  max_per_img: int = 100,
                  mask_thr: float = 0.5,
                  mask_score: bool = False) -> InstanceData:
    """Top-k (kernel, class) pairs of one image as instance predictions.

    A kernel may appear several times with different classes; the score is
    the class probability (the original K-Net), or with ``mask_score`` the
    class probability times the kernel's mean mask probability over its
    foreground (``> mask_thr``), which ranks sharp masks above vague ones
    (Mask2Former-style); masks are binarised at ``mask_thr`` at the
    original size; boxes are the tight boxes of the masks; ``kernel_inds``
    is the kernel of every instance.
    """
    if mask_score:
        probs = mask_logits.sigmoid().flatten(1)
        fg = (probs > mask_thr).to(probs.dtype)
        quality = (probs * fg).sum(1) / fg.sum(1).clamp(min=1)
        cls_probs = cls_probs * quality[:, None]
    num_classes = cls_probs.size(1)
    k = min(max_per_img, cls_probs.numel())
    scores, flat_idx = cls_probs.flatten().topk(k, sorted=True)
    kernel_idx = torch.div(flat_idx, num_classes, rounding_mode='floor')
    labels = flat_idx % num_classes
    masks = binary_masks(mask_logits, kernel_idx, img_meta, mask_thr)
    results = InstanceData()
    results.scores = scores
    results.labels = labels
    results.masks = masks
    # the kernel of every instance (a tracker reads its kernel / embedding)
    results.kernel_inds = kernel_idx
    results.bboxes = mask2bbox(masks).to(scores.dtype) if len(masks) else \
        scores.new_zeros((0, 4))
    return results
