# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""KNetIterativeDecodeHead on tiny inputs: pooling, channel split, stages,
losses, the decode-head interface, and parity with mmseg's
IterativeDecodeHead."""
import copy
import math

import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead, UPerHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import knet.models.seg  # noqa: F401  (registers the seg heads)
from knet.models.layers import KNetKernelUpdateHead
from knet.models.seg import KNetIterativeDecodeHead

try:  # run from the repository root (python -m pytest)
    from tests.models.seg.tie_safe import (assert_accuracy_matches,
                                           assert_close_to_scale,
                                           resize_like_mmseg)
except ImportError:  # pytest's rootdir-less (prepend) import mode
    from tie_safe import (assert_accuracy_matches, assert_close_to_scale,
                          resize_like_mmseg)

NUM_CLASSES = 5


def _stage(channels=16, updator=8, **kwargs):
    cfg = dict(
        type='KNetKernelUpdateHead',
        num_classes=NUM_CLASSES,
        num_heads=2,
        num_mask_fcs=1,
        feedforward_channels=32,
        in_channels=channels,
        out_channels=channels,
        feat_transform_cfg=dict(conv_cfg=dict(type='Conv2d'), act_cfg=None),
        kernel_updator_cfg=dict(
            type='KNetKernelUpdator',
            in_channels=updator,
            feat_channels=updator,
            out_channels=updator))
    cfg.update(kwargs)
    return cfg


def _fcn(channels=16, **kwargs):
    cfg = dict(
        type='FCNHead',
        in_channels=12,
        in_index=2,
        channels=channels,
        num_convs=1,
        concat_input=True,
        dropout_ratio=0.1,
        num_classes=NUM_CLASSES,
        norm_cfg=dict(type='BN'),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    cfg.update(kwargs)
    return cfg


def _uper(channels=16):
    return dict(
        type='UPerHead',
        in_channels=[4, 8, 12],
        in_index=[0, 1, 2],
        pool_scales=(1, 2),
        channels=channels,
        dropout_ratio=0.1,
        num_classes=NUM_CLASSES,
        norm_cfg=dict(type='BN'),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))


def _build(cfg):
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = MODELS.build(cfg)
    head.init_weights()
    return head


def _head(num_stages=3, generate=None, stage=None, **kwargs):
    return _build(
        dict(
            type='KNetIterativeDecodeHead',
            num_stages=num_stages,
            kernel_generate_head=generate or _fcn(),
            kernel_update_head=[stage or _stage()] * num_stages,
            **kwargs))


def _inputs(batch=2):
    return [
        torch.randn(batch, 4, 16, 16),
        torch.randn(batch, 8, 8, 8),
        torch.randn(batch, 12, 8, 8)
    ]


def _samples(batch=2, size=32):
    samples = []
    for _ in range(batch):
        label = torch.randint(0, NUM_CLASSES, (1, size, size))
        label[:, :3] = 255
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(size, size), pad_shape=(size,
                                                                    size)))
        samples.append(sample)
    return samples


def test_softmax_pooling_hand_computed():
    """Soft group-feature assembling: softmax over the kernels (not a
    sigmoid), weighted SUM over pixels, no threshold."""
    head = _head()
    stage = head.kernel_update_head[0]
    assert stage.mask_pooling == 'softmax' and not stage.with_cls
    # two kernels, two pixels; pixel 0 logits (0, 0) -> weights (1/2, 1/2),
    # pixel 1 logits (ln 3, 0) -> weights (3/4, 1/4)
    logits = torch.tensor([[0., math.log(3.)], [0., 0.]]).view(1, 2, 1, 2)
    feats = torch.tensor([[2., 4.], [-1., 8.]]).view(1, 2, 1, 2)
    pooled = stage.assemble(feats, logits)
    expected = torch.tensor([[[0.5 * 2 + 0.75 * 4, 0.5 * -1 + 0.75 * 8],
                              [0.5 * 2 + 0.25 * 4, 0.5 * -1 + 0.25 * 8]]])
    torch.testing.assert_close(pooled, expected)
    # logits at another resolution are resized bilinearly first
    big = logits.repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert stage.assemble(feats.repeat_interleave(2, -1).repeat_interleave(
        2, -2), big).shape == (1, 2, 2)


def test_wide_head_updates_kernel_halves_independently():
    """A 16-d stage with an 8-d updator (the 512 -> 2 x 256 configs): the
    updator output equals the updator applied to each half on its own."""
    head = _head(stage=_stage(channels=16, updator=8))
    stage = head.kernel_update_head[0]
    seen = {}
    stage.kernel_update_conv.register_forward_hook(
        lambda mod, args, out: seen.update(args=args, out=out))
    feats = torch.randn(2, 16, 6, 6)
    kernels = torch.randn(2, NUM_CLASSES, 16, 1, 1)
    _, masks, new_kernels = stage(feats, kernels,
                                  torch.randn(2, NUM_CLASSES, 6, 6))
    assert masks.shape == (2, NUM_CLASSES, 6, 6)
    assert new_kernels.shape == (2, NUM_CLASSES, 16, 1, 1)
    group_feats, stage_kernels = seen['args']
    out = seen['out'].reshape(2, NUM_CLASSES, 16)
    upd = stage.kernel_update_conv
    halves = [
        upd(group_feats[..., sl], stage_kernels[..., sl]).reshape(
            2, NUM_CLASSES, 8) for sl in (slice(0, 8), slice(8, 16))
    ]
    torch.testing.assert_close(out, torch.cat(halves, -1))
    assert upd.dynamic_layer.weight.shape == (16, 8)


def test_stages_train_and_eval_outputs():
    head = _head()
    inputs = _inputs()
    head.train()
    outs = head(inputs)
    assert isinstance(outs, list) and len(outs) == 4
    assert all(o.shape == (2, NUM_CLASSES, 8, 8) for o in outs)
    head.eval()
    with torch.no_grad():
        last = head(inputs)
        stages = head.forward_stages(inputs)
        # stage 0 = the generate head's logits; the kernels are its
        # conv_seg weights (the bias only enters stage 0)
        gen = head.kernel_generate_head
        feats = gen._forward_feature(inputs)
        torch.testing.assert_close(stages[0], gen.cls_seg(feats))
        _, ref, _ = head.kernel_update_head[0](
            feats,
            gen.conv_seg.weight[None].expand(2, -1, -1, -1, -1),
            stages[0])
    torch.testing.assert_close(stages[1], ref)
    torch.testing.assert_close(last, stages[-1])


def test_losses_every_stage_and_gradients():
    head = _head()
    head.train()
    losses = head.loss(_inputs(), _samples(), train_cfg=dict())
    assert sorted(losses) == sorted([f'loss_ce.s{i}' for i in range(4)] +
                                    [f'acc_seg.s{i}' for i in range(4)])
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    gen = head.kernel_generate_head
    assert gen.conv_seg.weight.grad.abs().sum() > 0
    for stage in head.kernel_update_head:
        assert stage.fc_mask.weight.grad.abs().sum() > 0
    # losses also come per stage in eval mode (validation loss)
    head.eval()
    with torch.no_grad():
        assert len(head.loss(_inputs(), _samples(), train_cfg=dict())) == 8
    # each stage uses the generate head's own loss
    logits = [torch.randn(2, NUM_CLASSES, 8, 8) for _ in range(2)]
    samples = _samples()
    losses = head.loss_by_feat(logits, samples)
    ref = gen.loss_by_feat(logits[1], samples)
    torch.testing.assert_close(losses['loss_ce.s1'], ref['loss_ce'])


def test_predict_resizes_last_stage():
    head = _head().eval()
    metas = [dict(img_shape=(32, 32), pad_shape=(32, 32))] * 2
    with torch.no_grad():
        inputs = _inputs()
        pred = head.predict(inputs, metas, test_cfg=dict())
        last = head(inputs)
    assert pred.shape == (2, NUM_CLASSES, 32, 32)
    torch.testing.assert_close(pred, head.predict_by_feat(last, metas))
    torch.testing.assert_close(pred, head.predict_by_feat([last], metas))


def test_decode_head_interface_is_delegated():
    head = _head()
    gen = head.kernel_generate_head
    assert isinstance(head, (KNetIterativeDecodeHead, BaseDecodeHead))
    for name in ('num_classes', 'out_channels', 'align_corners',
                 'ignore_index', 'threshold', 'input_transform', 'in_index',
                 'in_channels', 'channels', 'loss_decode', 'sampler'):
        assert getattr(head, name) is getattr(gen, name), name
    assert head.out_channels == NUM_CLASSES
    # no parameters of its own: same keys as mmseg's IterativeDecodeHead
    assert not hasattr(head, 'conv_seg')
    prefixes = {k.split('.')[0] for k in head.state_dict()}
    assert prefixes == {'kernel_generate_head', 'kernel_update_head'}
    assert {k.split('.')[1]
            for k in head.state_dict()
            if k.startswith('kernel_update_head')} == {'0', '1', '2'}
    assert 'input_transform=None' in repr(head)


def test_merged_decode_head_arguments():
    """BaseDecodeHead arguments at the top level (a merged base config,
    mmseg #3700) are defaults for the generate head, never errors."""
    gen = _fcn()
    del gen['norm_cfg'], gen['dropout_ratio']
    head = _head(
        generate=gen,
        in_channels=999,
        channels=7,
        num_classes=19,
        dropout_ratio=0.0,
        norm_cfg=dict(type='BN'),
        in_index=0)
    kgen = head.kernel_generate_head
    assert (kgen.in_channels, kgen.channels, kgen.num_classes) == (12, 16, 5)
    assert kgen.dropout is None and isinstance(kgen.convs[0].bn,
                                               nn.BatchNorm2d)
    with pytest.raises(TypeError, match='num_stage'):
        _head(num_stage=3)


def test_stage_options():
    # one dict for all stages; KNetKernelUpdateHead gets seg defaults
    stage = _stage()
    head = _build(
        dict(
            type='KNetIterativeDecodeHead',
            num_stages=2,
            kernel_generate_head=_fcn(),
            kernel_update_head=stage))
    assert len(head.kernel_update_head) == 2
    assert all(s.mask_pooling == 'softmax' and not s.with_cls
               for s in head.kernel_update_head)
    assert head.kernel_update_head[0] is not head.kernel_update_head[1]
    # explicit values win
    head = _head(num_stages=1, stage=_stage(num_cls_fcs=1))
    assert head.kernel_update_head[0].with_cls
    with pytest.raises(ValueError, match='num_stages=3'):
        _build(
            dict(
                type='KNetIterativeDecodeHead',
                num_stages=3,
                kernel_generate_head=_fcn(),
                kernel_update_head=[_stage()] * 2))


def test_kernel_generate_head_aliases():
    for name, parent in (('FCNKernelHead', FCNHead),
                         ('UPerKernelHead', UPerHead)):
        cls = MODELS.get(name)
        assert issubclass(cls, parent)
    for name in ('PSPKernelHead', 'ASPPKernelHead'):
        assert MODELS.get(name) is not None
    # an original-style config: alias generate head, stage arguments of the
    # original (mask_upsample_stride, input_feat_shape), no pooling option
    stage = _stage(mask_upsample_stride=2)
    stage['kernel_updator_cfg']['input_feat_shape'] = 3
    head = _head(generate=_fcn(type='FCNKernelHead'), stage=stage)
    assert type(head.kernel_generate_head).__name__ == 'FCNKernelHead'
    assert head.kernel_update_head[0].mask_pooling == 'softmax'
    head.eval()
    with torch.no_grad():
        assert head(_inputs()).shape == (2, NUM_CLASSES, 8, 8)


def _mmseg_stage(channels, updator):
    return dict(
        type='KernelUpdateHead',
        num_classes=NUM_CLASSES,
        num_heads=2,
        num_mask_fcs=1,
        feedforward_channels=32,
        in_channels=channels,
        out_channels=channels,
        feat_transform_cfg=dict(conv_cfg=dict(type='Conv2d'), act_cfg=None),
        kernel_updator_cfg=dict(
            type='KernelUpdator',
            in_channels=updator,
            feat_channels=updator,
            out_channels=updator))


def _randomise(model: nn.Module) -> None:
    """Random weights with well-separated class logits: N(0, 0.3) weights,
    N(0, 0.1) biases, norm scales in [0.5, 1.5]. (All parameters N(0, 0.3)
    puts norm scales near 0: the updated kernels nearly coincide and most
    pixels' top-2 logits tie to within 1e-6, so any argmax-based figure
    becomes a coin toss.)"""
    gen = torch.Generator().manual_seed(0)
    norms = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)
    with torch.no_grad():
        for module in model.modules():
            for name, param in module.named_parameters(recurse=False):
                if isinstance(module, norms) and name == 'weight':
                    param.uniform_(0.5, 1.5, generator=gen)
                elif param.dim() == 1:
                    param.normal_(0, 0.1, generator=gen)
                else:
                    param.normal_(0, 0.3, generator=gen)


@pytest.mark.parametrize('generate,channels,updator',
                         [(_fcn, 16, 8), (_uper, 8, 8)])
def test_matches_mmseg_iterative_decode_head(generate, channels, updator):
    """Same weights -> same logits and losses as mmseg's head, for a wide
    (split updator) FCN and a UPerNet generator; the accuracies (argmax
    counts) agree up to the pixels whose top-2 logits nearly tie."""
    ref = _build(
        dict(
            type='IterativeDecodeHead',
            num_stages=2,
            kernel_generate_head=generate(channels),
            kernel_update_head=[_mmseg_stage(channels, updator)] * 2))
    ours = _head(
        num_stages=2,
        generate=generate(channels),
        stage=_stage(channels, updator))
    _randomise(ref)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    inputs = _inputs()
    ours.eval(), ref.eval()
    with torch.no_grad():
        assert_close_to_scale(ours(inputs), ref(inputs), name='eval logits')
    ours.train(), ref.train()
    samples = _samples()
    # the per-stage training logits, with the dropout draws of loss() below
    torch.manual_seed(1)
    ref_stages = ref(inputs)
    torch.manual_seed(1)
    our_stages = ours(inputs)
    assert len(our_stages) == len(ref_stages) == 3
    for i, (our_logits, ref_logits) in enumerate(zip(our_stages,
                                                     ref_stages)):
        assert_close_to_scale(our_logits, ref_logits, name=f'stage {i}')
    torch.manual_seed(1)
    ref_losses = ref.loss(inputs, copy.deepcopy(samples), dict())
    torch.manual_seed(1)
    our_losses = ours.loss(inputs, copy.deepcopy(samples), dict())
    assert set(our_losses) == set(ref_losses)
    assert set(ref_losses) == {f'{k}.s{i}' for k in ('loss_ce', 'acc_seg')
                               for i in range(3)}
    # losses: continuous, compared with a float tolerance; the stage
    # logits above are those the losses were computed from
    labels = torch.cat([s.gt_sem_seg.data for s in samples])
    for i, (our_logits, ref_logits) in enumerate(zip(our_stages,
                                                     ref_stages)):
        key = f'loss_ce.s{i}'
        assert_close_to_scale(our_losses[key], ref_losses[key], name=key)
        assert_close_to_scale(
            ref.kernel_generate_head.loss_by_feat(ref_logits,
                                                  samples)['loss_ce'],
            ref_losses[key], name=key)
        # accuracy: an argmax count, equal up to near-tie pixels only
        size = labels.shape[-2:]
        assert_accuracy_matches(
            our_losses[f'acc_seg.s{i}'], ref_losses[f'acc_seg.s{i}'],
            resize_like_mmseg(our_logits, size, ours.align_corners),
            resize_like_mmseg(ref_logits, size, ref.align_corners), labels,
            ref.ignore_index, f'acc_seg.s{i}')


def test_runs_mmseg_kernel_update_head_stages():
    """mmseg's own KernelUpdateHead (2 outputs) also works as a stage."""
    head = _head(stage=_mmseg_stage(16, 16))
    assert not isinstance(head.kernel_update_head[0], KNetKernelUpdateHead)
    head.eval()
    with torch.no_grad():
        assert head(_inputs()).shape == (2, NUM_CLASSES, 8, 8)
