# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Targets and mask losses shared by the kernel head and every update stage.

K-Net's kernel head (``rpn_head``) and its update stages build the same kind
of targets from a Hungarian assignment (matched thing masks, background
elsewhere, fixed stuff rows in panoptic mode) and apply the same mask, Dice
and rank losses to the positives. Both call the functions below.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

#: ignore value of the rank-loss target map (never a kernel index)
RANK_IGNORE_INDEX = -100


def last_writer_index(masks: Tensor) -> Tensor:
    """Index of the last True along dim 0 for every pixel, -1 if none.

    Reproduces a Python loop that writes mask ``j = 0, 1, ...`` in order
    into a map (later masks overwrite earlier ones), without the loop.

    Args:
        masks (Tensor): (M, H, W) bool.

    Returns:
        Tensor: (H, W) long.
    """
    if masks.numel() == 0:
        return masks.new_full(masks.shape[1:], -1, dtype=torch.long)
    order = torch.arange(masks.size(0), device=masks.device)
    return torch.where(masks, order[:, None, None],
                       order.new_tensor(-1)).amax(dim=0)


def image_kernel_targets(
        pos_inds: Tensor,
        pos_gt_labels: Tensor,
        pos_gt_masks: Tensor,
        num_kernels: int,
        mask_shape: Tuple[int, int],
        num_classes: int,
        stuff_labels: Optional[Tensor] = None,
        stuff_masks: Optional[Tensor] = None,
        num_thing_classes: int = 80,
        num_stuff_classes: int = 53,
        per_class_weights: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """Targets of one image for ``num_kernels`` thing kernels (+ stuff rows).

    Args:
        pos_inds (Tensor): Indices of matched kernels.
        pos_gt_labels (Tensor): Their GT labels.
        pos_gt_masks (Tensor): Their (soft) GT masks, (P, h, w).
        num_kernels (int): Number of thing kernels.
        mask_shape (tuple): (h, w) of the mask targets.
        num_classes (int): Classifier width; also the background label.
        stuff_labels / stuff_masks (Tensor, optional): Present stuff classes
            and their masks. When given (panoptic), ``num_stuff_classes``
            fixed stuff rows are appended: row ``j`` is stuff class
            ``num_thing_classes + j``; it is trained on its own class logit
            only, and thing rows get no loss on stuff logits.
        per_class_weights (bool): (N, C) label weights instead of (N,).

    Returns:
        tuple: labels (N,), label_weights (N,) or (N, C), mask_targets
        (N, h, w), with N = num_kernels (+ num_stuff_classes).
    """
    device = pos_gt_masks.device
    labels = torch.full((num_kernels, ),
                        num_classes,
                        dtype=torch.long,
                        device=device)
    labels[pos_inds] = pos_gt_labels
    mask_targets = pos_gt_masks.new_zeros((num_kernels, *mask_shape))
    mask_targets[pos_inds] = pos_gt_masks.to(mask_targets.dtype)
    weight_shape = (num_kernels,
                    num_classes) if per_class_weights else (num_kernels, )
    label_weights = pos_gt_masks.new_ones(weight_shape)
    if stuff_labels is None:
        return labels, label_weights, mask_targets

    label_weights[:, num_thing_classes:] = 0
    rows = stuff_labels.long() - num_thing_classes
    s_labels = labels.new_full((num_stuff_classes, ), num_classes)
    s_labels[rows] = stuff_labels.long()
    s_masks = mask_targets.new_zeros((num_stuff_classes, *mask_shape))
    s_masks[rows] = stuff_masks.to(s_masks.dtype)
    s_weights = label_weights.new_zeros((num_stuff_classes, num_classes))
    s_weights[:, num_thing_classes:num_thing_classes +
              num_stuff_classes] = torch.eye(
                  num_stuff_classes, device=device)
    return (torch.cat([labels, s_labels]),
            torch.cat([label_weights, s_weights]),
            torch.cat([mask_targets, s_masks]))


def rank_targets(mask_targets: Tensor, positive: Tensor) -> Tensor:
    """Per-pixel kernel index targets of the rank loss.

    Every positive kernel ``j`` (ascending) writes ``j`` where its target
    mask is nonzero; untouched pixels are ``RANK_IGNORE_INDEX``.

    Args:
        mask_targets (Tensor): (B, N, h, w) soft targets.
        positive (Tensor): (B, N) bool.

    Returns:
        Tensor: (B, h, w) long.
    """
    writes = (mask_targets > 0) & positive[:, :, None, None]
    order = torch.arange(writes.size(1), device=writes.device)
    idx = torch.where(writes, order[None, :, None, None],
                      order.new_tensor(-1)).amax(dim=1)
    return torch.where(idx >= 0, idx, idx.new_tensor(RANK_IGNORE_INDEX))


def kernel_mask_losses(mask_preds: Tensor,
                       labels: Tensor,
                       mask_targets: Tensor,
                       num_classes: int,
                       loss_mask: nn.Module,
                       loss_dice: nn.Module,
                       loss_rank: Optional[nn.Module] = None) -> dict:
    """BCE, Dice (positives) and rank (all kernels) losses.

    Args:
        mask_preds (Tensor): (B, N, h, w) mask logits.
        labels (Tensor): (B*N,) labels; positives are ``< num_classes``.
        mask_targets (Tensor): (B*N, h, w) soft targets.
        num_classes (int): Background label.

    Returns:
        dict: ``loss_mask``, ``loss_dice`` (and ``loss_rank``).
    """
    num_imgs, num_kernels = mask_preds.shape[:2]
    positive = (labels >= 0) & (labels < num_classes)
    flat_preds = mask_preds.flatten(0, 1)
    losses = {}
    if positive.any():
        pos_preds = flat_preds[positive]
        pos_targets = mask_targets[positive]
        losses['loss_mask'] = loss_mask(pos_preds, pos_targets)
        losses['loss_dice'] = loss_dice(pos_preds, pos_targets)
        if loss_rank is not None:
            target_map = rank_targets(
                mask_targets.view(num_imgs, num_kernels,
                                  *mask_targets.shape[-2:]),
                positive.view(num_imgs, num_kernels))
            losses['loss_rank'] = loss_rank(
                mask_preds, target_map, ignore_index=RANK_IGNORE_INDEX)
    else:
        zero = flat_preds.sum() * 0
        losses['loss_mask'] = zero
        losses['loss_dice'] = zero
        if loss_rank is not None:
            losses['loss_rank'] = zero
    return losses


def dense_seg_targets(stuff_labels: Optional[Tensor],
                      stuff_masks: Optional[Tensor], thing_labels: Tensor,
                      thing_masks: Tensor, mask_shape: Sequence[int],
                      num_classes: int) -> Tensor:
    """Semantic target map of the kernel head's dense loss (one image).

    Starts as background (``num_classes``); every stuff class, then every
    matched thing (later ones win), writes its label on its nonzero pixels.
    """
    if stuff_labels is None:
        stuff_labels = thing_labels.new_zeros((0, ))
        stuff_masks = thing_masks.new_zeros((0, *mask_shape))
    all_labels = torch.cat([stuff_labels.long(), thing_labels.long()])
    all_masks = torch.cat([stuff_masks, thing_masks.to(stuff_masks.dtype)])
    writer = last_writer_index(all_masks > 0)
    lut = torch.cat([all_labels, all_labels.new_tensor([num_classes])])
    return lut[writer]  # writer == -1 picks the background entry

