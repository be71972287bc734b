# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The kernels' ground-truth preprocessing keeps instance ids (issue 12)."""
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from knet.models.gt_preprocessing import preprocess_kernel_gt


def _sample(ids=None, with_seg=True):
    """6x8 image padded to 8x8: instance A = rows 0-1 x cols 0-3,
    instance B = rows 2-5 x cols 6-7; semantic: stuff 3 left, 4 right,
    thing pixels 0, top row ignored (255)."""
    masks = np.zeros((2, 6, 8), dtype=np.uint8)
    masks[0, 0:2, 0:4] = 1
    masks[1, 2:6, 6:8] = 1
    inst = InstanceData(
        masks=BitmapMasks(masks, 6, 8), labels=torch.tensor([1, 0]))
    if ids is not None:
        inst.instances_ids = torch.tensor(ids)
    sample = DetDataSample(metainfo=dict(batch_input_shape=(8, 8)))
    sample.gt_instances = inst
    if with_seg:
        seg = torch.full((1, 6, 8), 3)
        seg[:, :, 4:] = 4
        seg[:, 2:6, 6:8] = 0
        seg[:, 0] = 255
        sample.gt_sem_seg = PixelData(sem_seg=seg)
    return sample


def test_instance_ids_are_kept_and_aligned_with_masks():
    gt = preprocess_kernel_gt(
        [_sample(ids=[7, 3]), _sample()], mask_assign_stride=2,
        num_thing_classes=2, panoptic=True)
    assert gt.instance_ids[0].tolist() == [7, 3]
    assert gt.instance_ids[1].tolist() == [-1, -1]  # no ids in the sample
    assert gt.labels[0].tolist() == [1, 0]
    # 2x bilinear downsampling of 2-aligned blocks is exact; the padding
    # rows 6-7 are zero
    expected = torch.zeros(2, 4, 4)
    expected[0, 0, 0:2] = 1
    expected[1, 1:3, 3] = 1
    assert torch.equal(gt.masks[0], expected)
    # stuff classes present (>= num_thing_classes, not 255), sorted
    assert gt.sem_labels[0].tolist() == [3, 4]
    assert gt.sem_masks[0].shape == (2, 4, 4)
    assert gt.as_loss_args()[0] is gt.masks
    assert len(gt.as_loss_args()) == 4


def test_instance_model_has_no_stuff():
    gt = preprocess_kernel_gt([_sample(ids=[5, 9], with_seg=False)], 4, 2,
                              panoptic=False)
    assert gt.sem_masks is None and gt.sem_labels is None
    assert gt.instance_ids[0].tolist() == [5, 9]
    assert gt.masks[0].shape == (2, 2, 2)
