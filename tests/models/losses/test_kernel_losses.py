# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
import torch
import torch.nn.functional as F
from mmdet.models.losses import CrossEntropyLoss, DiceLoss

from knet.models.losses import (RANK_IGNORE_INDEX, dense_seg_targets,
                                image_kernel_targets, kernel_mask_losses,
                                rank_targets)


def test_rank_targets_later_positive_kernels_win():
    # 1 image, 3 kernels on a 1x4 strip; kernel 1 is negative
    targets = torch.tensor([[[[0.5, 1.0, 0.0, 0.0]], [[1.0, 1.0, 1.0, 0.0]],
                             [[0.0, 0.2, 0.0, 0.0]]]])
    positive = torch.tensor([[True, False, True]])
    out = rank_targets(targets, positive)
    ig = RANK_IGNORE_INDEX
    assert out.tolist() == [[[0, 2, ig, ig]]]


def test_rank_loss_averages_over_all_pixels():
    """Ignored pixels count in the mean (mmdet avg_non_ignore=False)."""
    preds = torch.randn(1, 3, 1, 4)
    targets = torch.zeros(3, 1, 4)
    targets[0, 0, 0] = 1.0
    labels = torch.tensor([0, 5, 5])  # only kernel 0 is positive (bg = 5)
    losses = kernel_mask_losses(
        preds, labels, targets, 5,
        CrossEntropyLoss(use_sigmoid=True), DiceLoss(loss_weight=4.0),
        CrossEntropyLoss(use_sigmoid=False, loss_weight=0.1))
    one_pixel = F.cross_entropy(preds[:, :, 0, 0], torch.tensor([0]))
    torch.testing.assert_close(losses['loss_rank'], 0.1 * one_pixel / 4)
    bce = F.binary_cross_entropy_with_logits(preds[0, 0], targets[0])
    torch.testing.assert_close(losses['loss_mask'], bce)
    p = preds[0, 0].sigmoid().flatten()
    t = targets[0].flatten()
    dice = 1 - 2 * (p * t).sum() / ((p * p).sum() + 1e-3 + (t * t).sum() +
                                    1e-3)
    torch.testing.assert_close(losses['loss_dice'], 4 * dice)


def test_no_positive_gives_zero_losses_with_gradient():
    preds = torch.randn(2, 3, 4, 4, requires_grad=True)
    losses = kernel_mask_losses(
        preds, torch.full((6, ), 5), torch.zeros(6, 4, 4), 5,
        CrossEntropyLoss(use_sigmoid=True), DiceLoss(),
        CrossEntropyLoss(use_sigmoid=False))
    assert set(losses) == {'loss_mask', 'loss_dice', 'loss_rank'}
    total = sum(losses.values())
    assert float(total) == 0.0
    total.backward()
    assert preds.grad is not None


def test_panoptic_targets_fixed_stuff_rows_and_label_weights():
    masks = torch.rand(1, 2, 2)
    stuff_masks = torch.rand(1, 2, 2)
    labels, weights, targets = image_kernel_targets(
        pos_inds=torch.tensor([2]),
        pos_gt_labels=torch.tensor([1]),
        pos_gt_masks=masks,
        num_kernels=3,
        mask_shape=(2, 2),
        num_classes=5,
        stuff_labels=torch.tensor([4]),
        stuff_masks=stuff_masks,
        num_thing_classes=2,
        num_stuff_classes=3)
    # 3 thing rows + 3 stuff rows (classes 2, 3, 4); only class 4 present
    assert labels.tolist() == [5, 5, 1, 5, 5, 4]
    torch.testing.assert_close(targets[2], masks[0])
    torch.testing.assert_close(targets[5], stuff_masks[0])
    assert targets[[0, 1, 3, 4]].abs().sum() == 0
    expected_w = torch.tensor([[1., 1., 0., 0., 0.]] * 3 +
                              [[0., 0., 1., 0., 0.], [0., 0., 0., 1., 0.],
                               [0., 0., 0., 0., 1.]])
    torch.testing.assert_close(weights, expected_w)


def test_instance_targets_without_stuff():
    labels, weights, targets = image_kernel_targets(
        torch.tensor([0]), torch.tensor([3]), torch.ones(1, 2, 2), 2, (2, 2),
        4, per_class_weights=False)
    assert labels.tolist() == [3, 4]
    assert weights.tolist() == [1.0, 1.0]
    assert targets[0].sum() == 4 and targets[1].sum() == 0


def test_dense_seg_targets_things_overwrite_stuff():
    stuff = torch.tensor([[[0.3, 0.3], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]])
    things = torch.tensor([[[0.0, 0.0], [0.1, 0.0]]])
    out = dense_seg_targets(
        torch.tensor([5, 6]), stuff, torch.tensor([1]), things, (2, 2), 9)
    # pixel (0,1): stuff 6 after stuff 5; (1,0): thing 1 over stuff 6;
    # (1,1): nothing -> background 9
    assert out.tolist() == [[5, 6], [1, 9]]
    empty = dense_seg_targets(None, None, torch.zeros(0).long(),
                              torch.zeros(0, 2, 2), (2, 2), 9)
    assert empty.tolist() == [[9, 9], [9, 9]]
