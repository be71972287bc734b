# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Ground truth of K-Net's kernels: soft thing / stuff masks at the
assignment stride, per image, with the instance ids kept for tracking.

Shared by the image detector and the video models (which match the
instances of two frames by their ids).
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: semantic-map value of unlabelled pixels (mmdet / mmseg convention)
SEG_IGNORE_INDEX = 255


class KernelGroundTruth(NamedTuple):
    """Per-image ground truth of the kernels (lists have one entry per
    image; the ``sem_*`` lists are None for instance models)."""
    #: (n, h, w) float soft thing masks at the assignment size
    masks: List[Tensor]
    #: (n,) long thing labels
    labels: List[Tensor]
    #: (s, h, w) float soft stuff masks, or None (not panoptic)
    sem_masks: Optional[List[Tensor]]
    #: (s,) long stuff labels, or None (not panoptic)
    sem_labels: Optional[List[Tensor]]
    #: (n,) long instance ids aligned with ``masks`` (``-1`` where the data
    #: sample has no ``gt_instances.instances_ids``)
    instance_ids: List[Tensor]

    def as_loss_args(self) -> Tuple:
        """``(masks, labels, sem_masks, sem_labels)``: the ground-truth
        arguments of the kernel heads' ``loss``."""
        return self.masks, self.labels, self.sem_masks, self.sem_labels


def resize_to_assign(masks: Tensor, pad_h: int, pad_w: int,
                     size: Tuple[int, int]) -> Tensor:
    """Zero-pad (n, h, w) float masks to the batch shape, then resize them
    bilinearly to ``size`` (soft targets in [0, 1])."""
    if masks.size(0) == 0:
        return masks.new_zeros((0, *size))
    height, width = masks.shape[-2:]
    if height < pad_h or width < pad_w:
        masks = F.pad(masks, (0, pad_w - width, 0, pad_h - height))
    return F.interpolate(
        masks[None], size, mode='bilinear', align_corners=False)[0]


def stuff_masks_from_semantic(sem_seg: Tensor,
                              num_thing_classes: int) -> Tuple[Tensor, Tensor]:
    """(s, H, W) binary float masks and (s,) labels of the stuff classes
    (``>= num_thing_classes``, not ignored) present in a (H, W) map."""
    classes = torch.unique(sem_seg)
    classes = classes[(classes >= num_thing_classes)
                      & (classes != SEG_IGNORE_INDEX)]
    stuff = (sem_seg[None] == classes[:, None, None]).float()
    return stuff, classes.long()


def preprocess_kernel_gt(batch_data_samples: Sequence,
                         mask_assign_stride: int,
                         num_thing_classes: int,
                         panoptic: bool) -> KernelGroundTruth:
    """Soft thing (and, for panoptic models, stuff) masks at the padded
    batch size / ``mask_assign_stride``, labels and instance ids per image.

    Args:
        batch_data_samples (Sequence[DetDataSample]): With
            ``gt_instances`` (``masks`` as BitmapMasks or tensor,
            ``labels``, optionally ``instances_ids``), ``gt_sem_seg`` when
            ``panoptic`` and ``batch_input_shape`` in the metainfo.
        mask_assign_stride (int): Stride of the assignment targets.
        num_thing_classes (int): Labels below are things (semantic map).
        panoptic (bool): Also build the stuff masks from ``gt_sem_seg``.

    Returns:
        KernelGroundTruth: masks, labels, stuff masks / labels, ids.
    """
    pad_h, pad_w = batch_data_samples[0].metainfo['batch_input_shape']
    size = (pad_h // mask_assign_stride, pad_w // mask_assign_stride)
    gt_masks, gt_labels, gt_ids, sem_masks, sem_labels = [], [], [], [], []
    for sample in batch_data_samples:
        instances = sample.gt_instances
        labels = instances.labels
        device = labels.device
        masks = instances.masks
        if hasattr(masks, 'to_tensor'):
            masks = masks.to_tensor(torch.float32, device)
        gt_labels.append(labels)
        gt_masks.append(resize_to_assign(masks.float(), pad_h, pad_w, size))
        ids = instances.get('instances_ids', None)
        gt_ids.append(
            torch.full_like(labels, -1, dtype=torch.long) if ids is None
            else torch.as_tensor(ids, device=device).long())
        if not panoptic:
            continue
        if 'gt_sem_seg' not in sample:
            raise KeyError('panoptic K-Net needs gt_sem_seg in the data '
                           'samples: load it with LoadPanopticAnnotations '
                           '(with_seg=True) and pack it with PackDetInputs')
        stuff, classes = stuff_masks_from_semantic(
            sample.gt_sem_seg.sem_seg[0], num_thing_classes)
        sem_labels.append(classes)
        sem_masks.append(resize_to_assign(stuff, pad_h, pad_w, size))
    if not panoptic:
        return KernelGroundTruth(gt_masks, gt_labels, None, None, gt_ids)
    return KernelGroundTruth(gt_masks, gt_labels, sem_masks, sem_labels,
                             gt_ids)


__all__ = [
    'KernelGroundTruth', 'preprocess_kernel_gt', 'resize_to_assign',
    'stuff_masks_from_semantic', 'SEG_IGNORE_INDEX'
]
