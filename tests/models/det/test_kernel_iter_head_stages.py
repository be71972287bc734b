# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""KernelIterHead's one stage loop: loss / predict also return the stage
outputs a video model needs (issue 12, part 1)."""
import copy
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import knet  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
NUM_THINGS, NUM_STUFF, NUM_KERNELS = 6, 5, 30 + 5


def _head(seed=0):
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/toy/knet_s3_r18_fpn_toy-panoptic.py'))
    head_cfg = copy.deepcopy(cfg.model.roi_head.to_dict())
    head_cfg.update(
        train_cfg=cfg.model.train_cfg.rcnn.to_dict(),
        test_cfg=cfg.model.test_cfg.rcnn.to_dict())
    torch.manual_seed(seed)
    head = MODELS.build(head_cfg)
    head.init_weights()
    return head


def _inputs():
    gen = torch.Generator().manual_seed(0)
    x_feats = torch.randn(2, 64, 8, 8, generator=gen)
    kernels = torch.randn(2, NUM_KERNELS, 64, 1, 1, generator=gen) * 0.1
    masks = torch.randn(2, NUM_KERNELS, 8, 8, generator=gen)
    previous = torch.randn(2, NUM_KERNELS, 64, 1, 1, generator=gen)
    return x_feats, kernels, masks, previous


def _gt():
    """Image 0: 3 things, stuff classes 6 and 9; image 1: 1 thing, no
    stuff; masks at the loss size (16 x 16)."""
    masks0 = torch.zeros(3, 16, 16)
    masks0[0, :4, :4] = 1
    masks0[1, 8:, 8:] = 1
    masks0[2, :4, 10:] = 1
    masks1 = torch.zeros(1, 16, 16)
    masks1[0, 5:9, 5:9] = 1
    stuff0 = torch.zeros(2, 16, 16)
    stuff0[0, 10:, :8] = 1
    stuff0[1, 4:8, :] = 1
    return ([masks0, masks1], [torch.tensor([0, 5, 2]), torch.tensor([3])],
            [stuff0, torch.zeros(0, 16, 16)],
            [torch.tensor([6, 9]), torch.zeros(0, dtype=torch.long)])


def test_loss_and_stages_returns_sampling_results_per_stage():
    head = _head().train()
    x_feats, kernels, masks, _ = _inputs()
    gt = _gt()
    losses, outs = head.loss_and_stages(x_feats, kernels, masks, *gt)
    plain = head.loss(x_feats, kernels, masks, *gt)
    assert set(losses) == set(plain)
    for key in plain:
        assert torch.equal(losses[key].detach(), plain[key].detach()), key
    assert outs.num_stages == 3 and len(outs.sampling_results) == 3
    for stage_results in outs.sampling_results:
        assert len(stage_results) == 2
        for result, num_gt in zip(stage_results, (3, 1)):
            # fewer GT than thing kernels: every GT matched exactly once,
            # by a thing kernel
            assigned = sorted(result.pos_assigned_gt_inds.tolist())
            assert assigned == list(range(num_gt))
            assert (result.pos_inds < 30).all()
    assert outs.kernels[-1].shape == (2, NUM_KERNELS, 64, 1, 1)
    assert outs.scaled_mask_preds[0].shape == (2, NUM_KERNELS, 16, 16)


def test_predict_and_stages_segments_point_at_stage_kernels():
    head = _head().eval()
    x_feats, kernels, masks, previous = _inputs()
    metas = [
        dict(batch_input_shape=(32, 32), img_shape=(32, 32),
             ori_shape=(32, 32)),
        dict(batch_input_shape=(32, 32), img_shape=(28, 30),
             ori_shape=(56, 60))
    ]
    with torch.no_grad():
        results, outs = head.predict_and_stages(x_feats, kernels, masks,
                                                metas)
        maps = head.predict(x_feats, kernels, masks, metas)
        with_prev, _ = head.predict_and_stages(
            x_feats, kernels, masks, metas, previous_kernels=previous)
    for result, pan_map, prev in zip(results, maps, with_prev):
        assert torch.equal(result.pan_seg, pan_map)
        # the image stages have no link / fusion: context changes nothing
        assert torch.equal(prev.pan_seg, pan_map)
        assert result.kernel_inds.numel() == result.segment_ids.numel()
        for seg_id, kernel in zip(result.segment_ids, result.kernel_inds):
            assert (pan_map == seg_id).any()
            # stuff kernel j has stuff class NUM_THINGS + j
            if kernel >= 30:
                assert seg_id % 1000 == NUM_THINGS + kernel - 30
    assert sum(r.kernel_inds.numel() for r in results) > 0
    # the tracker reads the kept kernels' last-stage (tracking) kernels
    kept = outs.track_kernels[-1][0, results[0].kernel_inds]
    assert kept.shape == (results[0].kernel_inds.numel(), 64, 1, 1)
    assert torch.equal(outs.track_kernels[-1], outs.kernels[-1])
