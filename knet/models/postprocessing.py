# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net test-time post-processing: mask rescaling, panoptic merge, top-k."""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.mask import mask2bbox
from mmengine.structures import InstanceData
from torch import Tensor

#: ``pan_id = label + segment_index * INSTANCE_OFFSET`` (mmdet's convention)
INSTANCE_OFFSET = 1000


def rescale_masks(mask_logits: Tensor, img_meta: dict) -> Tensor:
    """Sigmoid probabilities of (N, h, w) logits at the original image size.

    Upsample to the padded batch shape, crop the valid ``img_shape`` region,
    then resize to ``ori_shape`` (all bilinear, align_corners=False).
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
    probs = F.interpolate(
        probs,
        size=tuple(img_meta['ori_shape'][:2]),
        mode='bilinear',
        align_corners=False)
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
    lut = torch.where(keep, pan_ids, pan_ids.new_tensor(void_label))
    return lut[ids]


def instance_topk(cls_probs: Tensor, mask_logits: Tensor, img_meta: dict,
                  max_per_img: int = 100,
                  mask_thr: float = 0.5) -> InstanceData:
    """Top-k (kernel, class) pairs of one image as instance predictions.

    A kernel may appear several times with different classes; the score is
    the class probability; masks are binarised at ``mask_thr`` at the
    original size; boxes are the tight boxes of the masks.
    """
    num_classes = cls_probs.size(1)
    k = min(max_per_img, cls_probs.numel())
    scores, flat_idx = cls_probs.flatten().topk(k, sorted=True)
    kernel_idx = torch.div(flat_idx, num_classes, rounding_mode='floor')
    labels = flat_idx % num_classes
    masks = rescale_masks(mask_logits[kernel_idx], img_meta) > mask_thr
    results = InstanceData()
    results.scores = scores
    results.labels = labels
    results.masks = masks
    results.bboxes = mask2bbox(masks).to(scores.dtype) if len(masks) else \
        scores.new_zeros((0, 4))
    return results
