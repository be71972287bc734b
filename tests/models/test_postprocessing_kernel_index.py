# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Post-processing returns the kernel of every kept instance / segment, and
reads its thresholds from test_cfg (issue 12, part 1)."""
import torch

import knet  # noqa: F401  (registers the stage head)
from knet.models.postprocessing import (DEFAULT_TEST_CFG,
                                        KNOWN_TEST_CFG_KEYS, get_test_cfg,
                                        instance_topk, panoptic_merge_logits,
                                        panoptic_segments_logits)
from knet.models.roi_heads import KernelIterHead

META = dict(batch_input_shape=(4, 4), img_shape=(4, 4), ori_shape=(4, 4))
POS, NEG = 10.0, -10.0


def _block(rows, cols, inside=POS, outside=NEG):
    logits = torch.full((4, 4), outside)
    logits[rows, cols] = inside
    return logits


def _panoptic_masks():
    """k0 top-left, k1 top-right, k2 bottom-left (things); k3 stuff: all
    but top-left (logit -5 there: prob 0.0067), bottom-right at logit 1."""
    stuff = torch.full((4, 4), POS)
    stuff[:2, :2] = -5.0
    stuff[2:, 2:] = 1.0
    return torch.stack([
        _block(slice(0, 2), slice(0, 2)),
        _block(slice(0, 2), slice(2, 4)),
        _block(slice(2, 4), slice(0, 2)), stuff
    ])


#: kernel scores (k1 below instance_score_thr 0.3) and labels (2 thing
#: classes, stuff class 2)
SCORES = torch.tensor([0.9, 0.2, 0.7, 0.5])
LABELS = torch.tensor([1, 0, 0, 2])


def test_panoptic_segments_carry_their_kernels():
    out = panoptic_segments_logits(SCORES, LABELS, _panoptic_masks(), META,
                                   num_thing_kernels=3, void_label=3)
    # kept: k0 (score), k2, k3 (argmax area 8 / own area 12 >= 0.6);
    # k1 is below the score threshold; order = descending score
    assert out.kernel_inds.tolist() == [0, 2, 3]
    assert out.labels.tolist() == [1, 0, 2]
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.7, 0.5]))
    assert out.segment_ids.tolist() == [1 + 1000, 0 + 2000, 2 + 3000]
    expected = torch.tensor([[1001, 1001, 3002, 3002],
                             [1001, 1001, 3002, 3002],
                             [2000, 2000, 3002, 3002],
                             [2000, 2000, 3002, 3002]])
    assert torch.equal(out.pan_seg, expected)
    assert torch.equal(
        panoptic_merge_logits(SCORES, LABELS, _panoptic_masks(), META, 3, 3),
        expected)


def test_panoptic_rejected_argmax_kernel_leaves_void():
    masks = _panoptic_masks()
    # no stuff; k1 (score below the threshold) covers the right half
    masks[3] = NEG
    masks[1] = _block(slice(0, 4), slice(2, 4))
    out = panoptic_segments_logits(SCORES, LABELS, masks, META, 3, 3)
    assert out.kernel_inds.tolist() == [0, 2]
    assert (out.pan_seg[:, 2:] == 3).all()


def test_empty_panoptic_segments():
    out = panoptic_segments_logits(
        torch.zeros(0), torch.zeros(0, dtype=torch.long),
        torch.zeros(0, 4, 4), META, 0, 7)
    assert out.kernel_inds.numel() == 0 and (out.pan_seg == 7).all()


def test_instance_topk_kernel_inds_point_at_the_producing_kernel():
    cls_probs = torch.tensor([[0.10, 0.90], [0.80, 0.20], [0.30, 0.05]])
    masks = torch.stack([
        _block(slice(0, 2), slice(0, 2)),
        _block(slice(0, 2), slice(2, 4)),
        _block(slice(2, 4), slice(0, 4))
    ])
    out = instance_topk(cls_probs, masks, META, max_per_img=4)
    # pairs by probability: (k0,c1) .9, (k1,c0) .8, (k2,c0) .3, (k1,c1) .2
    assert out.kernel_inds.tolist() == [0, 1, 2, 1]
    assert out.labels.tolist() == [1, 0, 0, 1]
    for mask, kernel in zip(out.masks, out.kernel_inds):
        assert torch.equal(mask, masks[kernel] > 0)


def _head(panoptic, test_cfg):
    return KernelIterHead(
        num_stages=1,
        stage_loss_weights=(1, ),
        mask_head=dict(
            type='KNetKernelUpdateHead',
            num_classes=3,
            num_heads=2,
            feedforward_channels=16,
            in_channels=8,
            out_channels=8,
            kernel_updator_cfg=dict(
                type='KNetKernelUpdator', in_channels=8, feat_channels=8,
                out_channels=8)),
        mask_upsample_stride=1,
        num_proposals=3,
        num_thing_classes=2,
        num_stuff_classes=1 if panoptic else 0,
        do_panoptic=panoptic,
        test_cfg=test_cfg).eval()


def _cls_logits():
    # thing kernels: best thing class = SCORES / LABELS; stuff: diagonal
    probs = torch.tensor([[0.10, 0.90, 0.0], [0.20, 0.10, 0.0],
                          [0.70, 0.30, 0.0], [0.0, 0.0, 0.50]])
    return torch.logit(probs, eps=1e-6)[None]


def test_head_panoptic_reads_mask_thr_from_test_cfg():
    metas = [dict(META)]
    masks = _panoptic_masks()[None]
    default = _head(True, dict(merge_stuff_thing=dict()))
    out = default.postprocess(_cls_logits(), masks, metas)[0]
    assert out.kernel_inds.tolist() == [0, 2, 3]
    # mask_thr 0.005 adds the top-left block (prob 0.0067) to k3's own
    # area: 8 / 16 < overlap_thr 0.6, so the stuff segment is dropped
    low = _head(True, dict(mask_thr=0.005))
    out = low.postprocess(_cls_logits(), masks, metas)[0]
    assert out.kernel_inds.tolist() == [0, 2]
    assert (out.pan_seg[:, 2:] == 3).all()


def test_head_instance_results_have_kernel_inds():
    head = _head(False, dict(max_per_img=2))
    cls = torch.logit(
        torch.tensor([[0.2, 0.1], [0.1, 0.95], [0.6, 0.1]]), eps=1e-6)[None]
    masks = _panoptic_masks()[None, :3]
    out = head.postprocess(cls, masks, [dict(META)])[0]
    assert out.kernel_inds.tolist() == [1, 2]
    assert out.labels.tolist() == [1, 0]
    for mask, kernel in zip(out.masks, out.kernel_inds):
        assert torch.equal(mask, masks[0, kernel] > 0)


def test_known_test_cfg_keys_and_defaults():
    assert KNOWN_TEST_CFG_KEYS == {
        'max_per_img', 'mask_thr', 'mask_score', 'thing_candidates',
        'merge_stuff_thing'
    }
    assert get_test_cfg(None, 'thing_candidates') == 'per_kernel'
    assert get_test_cfg(None, 'mask_thr') == 0.5
    assert get_test_cfg(dict(mask_thr=0.3), 'mask_thr') == 0.3
    assert get_test_cfg({}, 'merge_stuff_thing.overlap_thr') == 0.6
    assert get_test_cfg(dict(merge_stuff_thing=dict(overlap_thr=0.1)),
                        'merge_stuff_thing.overlap_thr') == 0.1
    assert DEFAULT_TEST_CFG['merge_stuff_thing']['instance_score_thr'] == 0.3


def test_topk_thing_candidates_follow_video_knet():
    """Video K-Net (spec §1.7): the top-k (kernel, class) pairs compete; a
    kernel outside the top-k steals no pixels, one inside may appear with
    two classes, and the kernel indices point at the kernels."""
    from knet.models.postprocessing import panoptic_topk_scores
    # 3 thing kernels x 2 thing classes, 1 stuff kernel (class 2)
    probs = torch.tensor([[0.9, 0.8, 0.0], [0.25, 0.05, 0.0],
                          [0.2, 0.7, 0.0], [0.0, 0.0, 0.2]])
    scores, labels, kernels = panoptic_topk_scores(probs, 3, 2, 3)
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.8, 0.7, 0.2]))
    assert labels.tolist() == [0, 1, 1, 2]
    assert kernels.tolist() == [0, 0, 2, 3]

    head = KernelIterHead(
        num_stages=1, stage_loss_weights=[1], num_proposals=3,
        num_thing_classes=2, num_stuff_classes=1, do_panoptic=True,
        mask_upsample_stride=1,
        mask_head=dict(type='KNetKernelUpdateHead', num_classes=3,
                       in_channels=8, out_channels=8,
                       feedforward_channels=16, num_heads=2,
                       kernel_updator_cfg=dict(
                           type='KNetKernelUpdator', in_channels=8,
                           feat_channels=8, out_channels=8)),
        test_cfg=dict(thing_candidates='topk', max_per_img=3))
    masks = _panoptic_masks()  # k0 TL, k1 TR, k2 BL, k3 stuff
    out = head._panoptic(probs, masks, META, head.test_cfg)
    # k1 (best score 0.25) is outside the top-3: the top-right block is
    # taken by the stuff kernel instead of being lost to a rejected k1
    assert out.kernel_inds.tolist() == [0, 2, 3]
    assert out.labels.tolist() == [0, 1, 2]
    pan = out.pan_seg
    assert (pan[:2, 2:] % 1000 == 2).all()
    # per-kernel candidates: k1 takes part, is rejected (0.25 < 0.3) and its
    # block becomes void
    out = head._panoptic(probs, masks, META, dict(max_per_img=3))
    assert (out.pan_seg[:2, 2:] == 3).all()
