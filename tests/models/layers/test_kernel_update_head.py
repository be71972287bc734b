# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmseg.models.decode_heads.knet_head import KernelUpdateHead

from knet.models.layers import KNetKernelUpdateHead, dynamic_conv

UPDATOR = dict(
    type='KNetKernelUpdator',
    in_channels=16,
    feat_channels=16,
    out_channels=16)


def _head(**kwargs):
    cfg = dict(
        num_classes=5,
        num_heads=2,
        feedforward_channels=32,
        in_channels=16,
        out_channels=16,
        feat_transform_cfg=dict(conv_cfg=dict(type='Conv2d'), act_cfg=None),
        kernel_updator_cfg=UPDATOR)
    cfg.update(kwargs)
    head = KNetKernelUpdateHead(**cfg)
    head.init_weights()
    return head


def test_hard_pooling_sums_features_inside_binarised_masks():
    head = _head(feat_transform_cfg=None)
    feats = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).view(2, 3, 2, 2)
    # kernel 0 covers pixels 0 and 3, kernel 1 only pixel 1 (logit 0 is
    # sigmoid 0.5, not > 0.5, so it is excluded)
    logits = torch.tensor([[[5., -5.], [-5., 5.]], [[0., 5.], [-5., -5.]]])
    pooled = head.assemble(feats, logits[None].repeat(2, 1, 1, 1))
    flat = feats.flatten(2)
    expected = torch.stack(
        [flat[..., 0] + flat[..., 3], flat[..., 1]], dim=1)
    torch.testing.assert_close(pooled, expected)


def test_soft_pooling_is_softmax_over_kernels():
    head = _head(mask_pooling='softmax', num_cls_fcs=0,
                 feat_transform_cfg=None)
    feats = torch.randn(1, 4, 3, 3)
    logits = torch.randn(1, 2, 3, 3)
    weights = logits.softmax(1)
    expected = (weights[:, :, None] * feats[:, None]).sum((-1, -2))
    torch.testing.assert_close(head.assemble(feats, logits), expected)


@pytest.mark.parametrize('ksize', [1, 3])
def test_dynamic_conv_equals_per_image_conv(ksize):
    feats = torch.randn(3, 4, 7, 6)
    kernels = torch.randn(3, 5, 4, ksize, ksize)
    out = dynamic_conv(feats, kernels)
    ref = torch.cat([
        F.conv2d(feats[i:i + 1], kernels[i], padding=ksize // 2)
        for i in range(3)
    ])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_det_stage_outputs_and_init():
    head = _head()
    cls, masks, kernels = head(
        torch.randn(2, 16, 8, 8), torch.randn(2, 7, 16, 1, 1),
        torch.randn(2, 7, 8, 8))
    assert cls.shape == (2, 7, 5)
    assert masks.shape == (2, 7, 8, 8)
    assert kernels.shape == (2, 7, 16, 1, 1)
    # prior probability 0.01 on the sigmoid classifier
    torch.testing.assert_close(head.fc_cls.bias,
                               torch.full((5, ), -4.59512), atol=1e-4,
                               rtol=0)


def _mmseg_head() -> KernelUpdateHead:
    with DefaultScope.overwrite_default_scope('mmseg'):
        ref = KernelUpdateHead(
            num_classes=6,
            num_heads=2,
            num_mask_fcs=1,
            feedforward_channels=32,
            in_channels=16,
            out_channels=16,
            feat_transform_cfg=dict(
                conv_cfg=dict(type='Conv2d'), act_cfg=None),
            kernel_updator_cfg=dict(
                type='KernelUpdator', in_channels=16, feat_channels=16,
                out_channels=16))
    ref.init_weights()
    return ref


def test_soft_mode_matches_mmseg_kernel_update_head():
    """The semantic options reproduce mmseg's KernelUpdateHead exactly."""
    ref = _mmseg_head()
    ours = _head(num_classes=6, mask_pooling='softmax', num_cls_fcs=0)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.eval(), ours.eval()
    feats = torch.randn(2, 16, 9, 10)
    kernels = torch.randn(2, 6, 16, 1, 1)
    logits = torch.randn(2, 6, 9, 10)
    ref_masks, ref_kernels = ref(feats, kernels, logits)
    cls, masks, new_kernels = ours(feats, kernels, logits)
    assert cls is None
    torch.testing.assert_close(masks, ref_masks, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(new_kernels, ref_kernels)


def test_rejects_unknown_arguments():
    with pytest.raises(TypeError, match='num_clases'):
        _head(num_clases=3)
    with pytest.raises(ValueError, match='mask_pooling'):
        _head(mask_pooling='mean')
