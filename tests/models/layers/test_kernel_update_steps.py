# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The update stage split into overridable steps, temporal context and the
shared stage loop (issue 12, part 1)."""
import torch
import torch.nn as nn

from knet.models.layers import (KernelStageLoopMixin, KNetKernelUpdateHead,
                                dynamic_conv)

UPDATOR = dict(
    type='KNetKernelUpdator',
    in_channels=16,
    feat_channels=16,
    out_channels=16)


def _cfg(**kwargs):
    cfg = dict(
        num_classes=5,
        num_heads=2,
        feedforward_channels=32,
        in_channels=16,
        out_channels=16,
        feat_transform_cfg=dict(conv_cfg=dict(type='Conv2d'), act_cfg=None),
        kernel_updator_cfg=UPDATOR)
    cfg.update(kwargs)
    return cfg


def _build(cls=KNetKernelUpdateHead, seed=0, **kwargs):
    torch.manual_seed(seed)
    head = cls(**_cfg(**kwargs))
    head.init_weights()
    return head.eval()


def _inputs(seed=1, num_imgs=2, num_kernels=7):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(num_imgs, 16, 8, 8, generator=gen)
    kernels = torch.randn(num_imgs, num_kernels, 16, 1, 1, generator=gen)
    masks = torch.randn(num_imgs, num_kernels, 8, 8, generator=gen)
    previous = torch.randn(num_imgs, num_kernels, 16, 1, 1, generator=gen)
    return feats, kernels, masks, previous


class DoubledLinkHead(KNetKernelUpdateHead):
    """Overrides only the link step: tracking kernels = 2 x + previous."""

    def link(self, obj_feats, previous_tokens, group_feats):
        return obj_feats * 2 + previous_tokens


class PreviousOnlyFusionHead(KNetKernelUpdateHead):
    """Overrides only the fusion step: the previous kernels replace the
    current ones before the update."""

    def fuse_previous(self, tokens, group_feats, previous_tokens):
        return previous_tokens


def _paper_stage(head, feats, kernels, masks):
    """One det stage written out from the paper / spec §1.4 with the
    head's own submodules (no step methods)."""
    b, n = kernels.shape[:2]
    x = head.feat_transform(feats)
    gate = (masks.sigmoid() > 0.5).float()
    group = (gate[:, :, None] * x[:, None]).sum((-1, -2))  # (B, N, C)
    tokens = kernels.reshape(b, n, 16, 1).permute(0, 1, 3, 2)
    upd = head.kernel_update_conv(group, tokens).reshape(b, n, 16)
    att = head.attention_norm(head.attention(upd.permute(1, 0, 2)))
    obj = head.ffn_norm(head.ffn(att.permute(1, 0, 2)))  # (B, N, C)
    cls = obj
    for layer in head.cls_fcs:
        cls = layer(cls)
    cls = head.fc_cls(cls)
    mk = obj
    for layer in head.mask_fcs:
        mk = layer(mk)
    mk = head.fc_mask(mk)
    new_masks = torch.einsum('bnc,bchw->bnhw', mk, x)
    return cls, new_masks, obj.reshape(b, n, 16, 1, 1)


def test_steps_compose_the_paper_stage():
    head = _build()
    feats, kernels, masks, _ = _inputs()
    with torch.no_grad():
        cls, new_masks, new_kernels = head(feats, kernels, masks)
        ref_cls, ref_masks, ref_kernels = _paper_stage(
            head, feats, kernels, masks)
    torch.testing.assert_close(cls, ref_cls, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(new_masks, ref_masks, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(new_kernels, ref_kernels, rtol=1e-5,
                               atol=1e-5)


def test_previous_none_is_the_image_path_exactly():
    head = _build()
    feats, kernels, masks, previous = _inputs()
    with torch.no_grad():
        plain = head(feats, kernels, masks)
        none = head(feats, kernels, masks, previous_kernels=None)
        stage = head.forward_stage(feats, kernels, masks)
        # the image stage has no link / fusion module: context is ignored
        with_prev = head.forward_stage(feats, kernels, masks, previous)
    for a, b in zip(plain, none):
        assert torch.equal(a, b)
    assert torch.equal(stage.cls_score, plain[0])
    assert torch.equal(stage.mask_preds, plain[1])
    assert torch.equal(stage.kernels, plain[2])
    assert stage.track_kernels is stage.kernels
    assert stage.group_feats.shape == (2, 7, 16)
    for name in ('cls_score', 'mask_preds', 'kernels', 'track_kernels'):
        assert torch.equal(getattr(with_prev, name), getattr(stage, name))


def test_overriding_the_link_step_changes_only_tracking_kernels():
    base = _build()
    linked = _build(DoubledLinkHead)
    linked.load_state_dict(base.state_dict())
    feats, kernels, masks, previous = _inputs()
    with torch.no_grad():
        ref = base.forward_stage(feats, kernels, masks)
        out = linked.forward_stage(feats, kernels, masks, previous)
        first_frame = linked.forward_stage(feats, kernels, masks)
    assert torch.equal(out.cls_score, ref.cls_score)
    assert torch.equal(out.mask_preds, ref.mask_preds)
    assert torch.equal(out.kernels, ref.kernels)
    torch.testing.assert_close(out.track_kernels,
                               2 * ref.kernels + previous)
    # no previous frame: no link, tracking kernels are the kernels
    assert torch.equal(first_frame.track_kernels, ref.kernels)


def test_overriding_the_fusion_step_feeds_previous_kernels():
    base = _build()
    fused = _build(PreviousOnlyFusionHead)
    fused.load_state_dict(base.state_dict())
    feats, kernels, masks, previous = _inputs()
    with torch.no_grad():
        out = fused(feats, kernels, masks, previous_kernels=previous)
        # group features still come from the current masks
        ref = base(feats, previous, masks)
        unchanged = fused(feats, kernels, masks)
        plain = base(feats, kernels, masks)
    for a, b in zip(out, ref):
        assert torch.equal(a, b)
    for a, b in zip(unchanged, plain):
        assert torch.equal(a, b)
    assert not torch.equal(out[1], plain[1])


def test_predict_masks_is_dynamic_conv_of_decoded_kernels():
    head = _build(feat_transform_cfg=None)
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(1, 16, 5, 6, generator=gen)
    obj = torch.randn(1, 3, 1, 16, generator=gen)
    with torch.no_grad():
        out = head.predict_masks(feats, obj)
        mk = head.fc_mask(head.mask_fcs[2](head.mask_fcs[1](
            head.mask_fcs[0](obj))))
        ref = dynamic_conv(feats, mk.permute(0, 1, 3, 2)[..., None])
    torch.testing.assert_close(out, ref)


class _ThreeStages(KernelStageLoopMixin, nn.Module):

    def __init__(self, cls=KNetKernelUpdateHead):
        super().__init__()
        self.stages = nn.ModuleList(
            _build(cls, seed=s) for s in range(3))

    def stage_modules(self):
        return self.stages


def test_stage_loop_chains_stages_and_gives_context_to_last_stage():
    host = _ThreeStages(DoubledLinkHead).eval()
    feats, kernels, masks, previous = _inputs()
    with torch.no_grad():
        outs = host.run_stages(feats, kernels, masks,
                               previous_kernels=previous)
        k, m = kernels, masks
        for s, stage in enumerate(host.stages):
            cls, m, k = stage(feats, k, m)
            assert torch.equal(outs.cls_scores[s], cls)
            assert torch.equal(outs.mask_preds[s], m)
            assert torch.equal(outs.scaled_mask_preds[s], m)
            assert torch.equal(outs.kernels[s], k)
        first = host.run_stages(feats, kernels, masks,
                                previous_kernels=previous,
                                context_stages=(0, ))
    assert outs.num_stages == 3
    assert outs.sampling_results == [None] * 3
    assert torch.equal(outs.track_kernels[0], outs.kernels[0])
    assert torch.equal(outs.track_kernels[1], outs.kernels[1])
    torch.testing.assert_close(outs.track_kernels[2],
                               2 * outs.kernels[2] + previous)
    torch.testing.assert_close(first.track_kernels[0],
                               2 * first.kernels[0] + previous)
    assert torch.equal(first.track_kernels[2], first.kernels[2])
    # the link never changes what the next stage receives
    assert torch.equal(first.mask_preds[2], outs.mask_preds[2])


def test_stage_loop_assigns_with_each_stage_inputs():
    calls = []

    class Host(_ThreeStages):

        def scale_stage_masks(self, stage, mask_preds):
            return mask_preds * 10

        def assign_stage(self, stage, prev_cls, prev_masks, prev_scaled,
                         batch_gt):
            calls.append((stage, prev_cls, prev_masks, prev_scaled))
            return f'{batch_gt}-{stage}'

    host = Host().eval()
    feats, kernels, masks, _ = _inputs()
    with torch.no_grad():
        outs = host.run_stages(feats, kernels, masks, batch_gt='gt')
    assert outs.sampling_results == ['gt-0', 'gt-1', 'gt-2']
    assert calls[0][1] is None and calls[0][3] is None
    assert torch.equal(calls[0][2], masks)
    for s in (1, 2):
        assert torch.equal(calls[s][1], outs.cls_scores[s - 1])
        assert torch.equal(calls[s][2], outs.mask_preds[s - 1])
        assert torch.equal(calls[s][3], outs.mask_preds[s - 1] * 10)
        assert torch.equal(outs.scaled_mask_preds[s - 1],
                           outs.mask_preds[s - 1] * 10)
