# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The semantic head runs the shared stage loop and takes the previous
frame's kernels (issue 12, part 1: the hooks of video semantic K-Net)."""
import torch
from mmengine.registry import MODELS as ROOT_MODELS
from mmseg.registry import MODELS

import knet.models.seg  # noqa: F401  (registers the seg heads)
from knet.models.layers import KNetKernelUpdateHead

NUM_CLASSES, CHANNELS = 5, 16


@ROOT_MODELS.register_module(name='_TestPreviousOnlyFusionStage', force=True)
class PreviousOnlyFusionStage(KNetKernelUpdateHead):
    """Fusion step replaced: the previous kernels replace the current ones
    before the update."""

    def fuse_previous(self, tokens, group_feats, previous_tokens):
        return previous_tokens


def _head(last_stage_type='KNetKernelUpdateHead'):
    stage = dict(
        num_classes=NUM_CLASSES,
        num_heads=2,
        feedforward_channels=32,
        in_channels=CHANNELS,
        out_channels=CHANNELS,
        mask_pooling='softmax',
        num_cls_fcs=0,
        feat_transform_cfg=dict(conv_cfg=dict(type='Conv2d'), act_cfg=None),
        kernel_updator_cfg=dict(
            type='KNetKernelUpdator',
            in_channels=CHANNELS,
            feat_channels=CHANNELS,
            out_channels=CHANNELS))
    stages = [dict(stage, type='KNetKernelUpdateHead') for _ in range(2)]
    stages.append(dict(stage, type=last_stage_type))
    torch.manual_seed(0)
    head = MODELS.build(
        dict(
            type='KNetIterativeDecodeHead',
            num_stages=3,
            kernel_update_head=stages,
            kernel_generate_head=dict(
                type='FCNHead',
                in_channels=12,
                in_index=0,
                channels=CHANNELS,
                num_convs=1,
                concat_input=False,
                num_classes=NUM_CLASSES,
                norm_cfg=dict(type='BN'))))
    head.init_weights()
    return head.eval()


def _inputs():
    gen = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, 12, 9, 10, generator=gen)]
    previous = torch.randn(2, NUM_CLASSES, CHANNELS, 1, 1, generator=gen)
    return feats, previous


def test_forward_with_stages_matches_forward_stages():
    head = _head()
    feats, previous = _inputs()
    with torch.no_grad():
        logits, outs = head.forward_with_stages(feats)
        plain = head.forward_stages(feats)
        with_prev, _ = head.forward_with_stages(feats, previous)
    assert len(logits) == 4 and outs.num_stages == 3
    for a, b, c in zip(logits, plain, with_prev):
        assert torch.equal(a, b)
        # plain image stages ignore the previous frame's kernels
        assert torch.equal(a, c)
    assert outs.kernels[-1].shape == (2, NUM_CLASSES, CHANNELS, 1, 1)
    assert outs.cls_scores == [None] * 3
    assert outs.sampling_results == [None] * 3


def test_previous_kernels_reach_only_the_last_stage():
    head = _head('_TestPreviousOnlyFusionStage')
    feats, previous = _inputs()
    with torch.no_grad():
        logits, outs = head.forward_with_stages(feats, previous)
        plain, plain_outs = head.forward_with_stages(feats)
        # last stage by hand: current group features, previous kernels
        gen = head.kernel_generate_head
        x = gen._forward_feature(feats)
        ref = KNetKernelUpdateHead.forward(head.kernel_update_head[2], x,
                                           previous, plain[2])
    for s in range(3):
        assert torch.equal(logits[s], plain[s])
    assert torch.equal(logits[3], ref[1])
    assert torch.equal(outs.kernels[-1], ref[2])
    assert not torch.equal(logits[3], plain[3])
