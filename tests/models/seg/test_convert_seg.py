# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""knet.utils.convert_seg: detection, validation errors, meta rewrite."""
from collections import OrderedDict

import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import knet.models.seg  # noqa: F401  (registers the seg heads)
from knet.utils.checkpoint_convert import CheckpointMismatchError
from knet.utils.convert_seg import (SegCheckpointError, convert_seg_checkpoint,
                                    convert_seg_state_dict, detect_seg_source,
                                    is_seg_state_dict, seg_state_dict_info)


def _stage(channels, updator):
    return dict(
        type='KNetKernelUpdateHead',
        num_classes=3,
        num_heads=2,
        feedforward_channels=16,
        in_channels=channels,
        out_channels=channels,
        feat_transform_cfg=dict(conv_cfg=dict(type='Conv2d'), act_cfg=None),
        kernel_updator_cfg=dict(
            type='KNetKernelUpdator',
            in_channels=updator,
            feat_channels=updator,
            out_channels=updator))


def _state(channels=8, updator=4, num_stages=2) -> 'OrderedDict':
    """State dict of a tiny EncoderDecoder-style semantic K-Net."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = MODELS.build(
            dict(
                type='KNetIterativeDecodeHead',
                num_stages=num_stages,
                kernel_generate_head=dict(
                    type='FCNHead',
                    in_channels=6,
                    channels=channels,
                    num_convs=1,
                    num_classes=3),
                kernel_update_head=[_stage(channels, updator)] * num_stages))
    state = OrderedDict({'backbone.conv1.weight': torch.randn(4, 3, 3, 3)})
    state.update(('decode_head.' + k, v) for k, v in head.state_dict().items())
    state['auxiliary_head.conv_seg.weight'] = torch.randn(3, 4, 1, 1)
    return state


def test_detection():
    state = _state()
    assert is_seg_state_dict(state)
    assert is_seg_state_dict({'state_dict': state, 'meta': {}})
    assert is_seg_state_dict({'module.' + k: v for k, v in state.items()})
    det = {
        'rpn_head.init_kernels.weight': torch.zeros(1),
        'roi_head.mask_head.0.fc_cls.weight': torch.zeros(1)
    }
    assert not is_seg_state_dict(det)
    plain = {
        'decode_head.conv_seg.weight': torch.zeros(3, 8, 1, 1),
        'backbone.conv1.weight': torch.zeros(1)
    }
    assert not is_seg_state_dict(plain)


def test_identity_conversion_and_module_prefix():
    state = _state()
    out = convert_seg_state_dict({'module.' + k: v for k, v in state.items()})
    assert list(out) == list(state)
    assert all(out[k] is state[k] for k in state)
    assert convert_seg_state_dict(state, reference=state).keys() == \
        state.keys()
    info = seg_state_dict_info(state)
    assert info == dict(
        num_classes=3,
        kernel_channels=8,
        num_stages=2,
        stage_channels=8,
        updator_channels=4,
        generate_head='FCNHead')


def test_errors_list_every_problem():
    state = _state()
    bad = OrderedDict(state)
    bad['decode_head.kernel_update_head.1.fc_cls.weight'] = torch.zeros(3, 8)
    bad['decode_head.conv_seg.weight'] = torch.zeros(3, 8, 1, 1)
    bad['roi_head.foo'] = torch.zeros(1)
    bad['decode_head.kernel_update_head.1.fc_mask.weight'] = torch.zeros(
        8, 6)
    with pytest.raises(SegCheckpointError) as err:
        convert_seg_state_dict(bad)
    msg = str(err.value)
    assert isinstance(err.value, CheckpointMismatchError)
    assert "unexpected top-level modules ['roi_head']" in msg
    assert 'decode_head.conv_seg.weight' in msg
    assert 'classifier weights' in msg and 'fc_cls.weight' in msg
    assert 'fc_mask.weight (8, 6) vs (8, 8)' in msg
    assert 'kernel_update_head.1: keys differ from stage 0' in msg


def test_missing_stage_and_numbering_and_widths():
    state = _state(num_stages=3)
    gap = OrderedDict((k, v) for k, v in state.items()
                      if '.kernel_update_head.1.' not in k)
    with pytest.raises(SegCheckpointError, match=r'numbered 0..n-1: \[0, 2\]'):
        convert_seg_state_dict(gap)
    odd = _state(channels=6, updator=4)
    with pytest.raises(SegCheckpointError, match='not a multiple'):
        convert_seg_state_dict(odd)
    no_stages = OrderedDict((k, v) for k, v in state.items()
                            if 'kernel_update_head' not in k)
    with pytest.raises(SegCheckpointError, match='not a semantic K-Net'):
        convert_seg_state_dict(no_stages)


def test_reference_mismatch_is_listed():
    """E.g. mmseg's 512-channel UPerNet K-Net into a 256-channel model."""
    wide, narrow = _state(channels=8), _state(channels=4)
    with pytest.raises(SegCheckpointError) as err:
        convert_seg_state_dict(wide, reference=narrow)
    msg = str(err.value)
    assert 'shape mismatch' in msg
    assert ('decode_head.kernel_generate_head.conv_seg.weight: checkpoint '
            '(3, 8, 1, 1) vs model (3, 4, 1, 1)') in msg
    assert 'kernel_channels=8' in msg
    fewer = _state(num_stages=1)
    with pytest.raises(SegCheckpointError, match='missing in checkpoint'):
        convert_seg_state_dict(fewer, reference=_state())


def test_checkpoint_meta_rewrite():
    state = _state()
    ckpt = dict(
        state_dict=state,
        meta=dict(
            mmseg_version='0.20.0',
            CLASSES=('wall', 'floor', 'tree'),
            PALETTE=[[1, 2, 3], [4, 5, 6], [7, 8, 9]],
            config="model = dict(decode_head=dict(type='IterativeDecodeHead'"
            ", kernel_generate_head=dict(type='FCNHead')))"),
        optimizer={'state': {}})
    assert detect_seg_source(ckpt) == 'mmseg'
    out = convert_seg_checkpoint(ckpt)
    assert set(out) == {'meta', 'state_dict'}
    meta = out['meta']
    assert meta['dataset_meta'] == dict(
        classes=('wall', 'floor', 'tree'),
        palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert meta['source'] == 'mmseg'
    assert meta['source_versions'] == {'mmseg_version': '0.20.0'}
    assert detect_seg_source(out) == 'knet-mm'
    original = dict(
        state_dict=state,
        meta=dict(config="kernel_generate_head=dict(type='UPerKernelHead'"))
    assert detect_seg_source(original) == 'knet-original'
    assert detect_seg_source({'state_dict': state}) == 'unknown'
    bare = convert_seg_checkpoint(state)
    assert bare['meta']['dataset_meta'] == {}
