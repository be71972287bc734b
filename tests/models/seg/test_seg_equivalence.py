# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Our semantic K-Net == mmseg 1.x's K-Net on the same (random) weights.

mmseg's own configs (shipped in ``mmseg/.mim/configs/knet``) are built with
mmseg's ``IterativeDecodeHead``; their state dict goes through
``convert_seg_state_dict`` into the model of our config, and logits and
losses must agree. mmseg's UPerNet K-Net uses 512 channels, the original
K-Net (our config) 256: both pairings are checked.
"""
import copy
import os.path as osp

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix

import knet.models.seg  # noqa: F401  (registers the seg heads)
from knet.utils.convert_seg import convert_seg_state_dict

try:  # run from the repository root (python -m pytest)
    from tests.models.seg.tie_safe import (assert_accuracy_matches,
                                           resize_like_mmseg)
except ImportError:  # pytest's rootdir-less (prepend) import mode
    from tie_safe import assert_accuracy_matches, resize_like_mmseg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
OURS = osp.join(REPO, 'configs', 'seg', 'knet')
MMSEG = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'knet')
MAX_REL_DIFF = 1e-4


# one intra-op thread unless KNET_TEST_THREADS says otherwise (conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def _sync_bn_to_bn(cfg):
    if isinstance(cfg, dict):
        if cfg.get('type') == 'SyncBN':
            cfg['type'] = 'BN'
        for value in cfg.values():
            _sync_bn_to_bn(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _sync_bn_to_bn(value)


def _set_channels(model_cfg, channels):
    head = model_cfg.decode_head
    head.kernel_generate_head.channels = channels
    for stage in head.kernel_update_head:
        stage.in_channels = stage.out_channels = channels


def _build(path, channels=None):
    cfg = Config.fromfile(path)
    init_default_scope('mmseg')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pretrained = None
    model_cfg.backbone.init_cfg = None
    _sync_bn_to_bn(model_cfg)
    if channels is not None:
        _set_channels(model_cfg, channels)
    return MODELS.build(model_cfg)


def _randomise(model):
    """Non-trivial weights: random norm affines and BN statistics and a
    larger-than-default kernel init, so softmax pooling is not uniform."""
    gen = torch.Generator().manual_seed(0)
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            continue
        if name.endswith('running_var'):
            tensor.uniform_(0.5, 1.5, generator=gen)
        elif name.endswith('running_mean') or (tensor.dim() == 1
                                               and name.endswith('bias')):
            tensor.normal_(0, 0.1, generator=gen)
        elif tensor.dim() == 1:
            tensor.uniform_(0.5, 1.5, generator=gen)
        elif 'conv_seg' in name:
            tensor.normal_(0, 0.1, generator=gen)


def _rel_diff(ours, ref):
    return ((ours - ref).abs().max() / ref.abs().max()).item()


def _train_logits(model, inputs):
    """Training-mode logits of every decode stage and of the auxiliary head,
    keyed like the loss terms they give (``decode.loss_ce.s<i>``,
    ``aux.loss_ce``), drawing dropout in the order of ``model.loss``."""
    feats = model.extract_feat(inputs)
    stages = model.decode_head(feats)
    out = {f'decode.loss_ce.s{i}': logits for i, logits in enumerate(stages)}
    out['aux.loss_ce'] = model.auxiliary_head(feats)
    return out


def _samples(batch, size):
    gen = torch.Generator().manual_seed(1)
    samples = []
    for _ in range(batch):
        label = torch.randint(0, 150, (1, size, size), generator=gen)
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(
            dict(
                img_shape=(size, size),
                pad_shape=(size, size),
                ori_shape=(size, size)))
        samples.append(sample)
    return samples


CASES = [
    # (ours, mmseg's, channels forced on mmseg's model, on ours, losses?)
    ('knet_s3_fcn_r50-d8_80k_adamw_ade20k.py',
     'knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py', None, None, True),
    ('knet_s3_upernet_r50-d8_80k_adamw_ade20k.py',
     'knet-s3_r50-d8_upernet_8xb2-adamw-80k_ade20k-512x512.py', 256, None,
     True),
    ('knet_s3_upernet_r50-d8_80k_adamw_ade20k.py',
     'knet-s3_r50-d8_upernet_8xb2-adamw-80k_ade20k-512x512.py', None, 512,
     False),
]


@pytest.mark.parametrize(
    'ours_cfg,ref_cfg,ref_channels,our_channels,check_losses',
    CASES,
    ids=['fcn-512', 'upernet-256', 'upernet-512'])
def test_matches_mmseg_knet(ours_cfg, ref_cfg, ref_channels, our_channels,
                            check_losses):
    if not osp.isfile(osp.join(MMSEG, ref_cfg)):
        pytest.skip(f'mmseg config not installed: {ref_cfg}')
    ref = _build(osp.join(MMSEG, ref_cfg), ref_channels)
    ours = _build(osp.join(OURS, ours_cfg), our_channels)
    assert type(ref.decode_head).__name__ == 'IterativeDecodeHead'
    assert type(ours.decode_head).__name__ == 'KNetIterativeDecodeHead'
    _randomise(ref)
    state = convert_seg_state_dict(
        ref.state_dict(), reference=ours.state_dict())
    ours.load_state_dict(state, strict=True)

    # inference: last-stage logits, and the full predict path
    ours.eval(), ref.eval()
    inputs = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref_logits = ref._forward(inputs)
        stages = ours.decode_head.forward_stages(ours.extract_feat(inputs))
        metas = [dict(img_shape=(64, 64), pad_shape=(64, 64))]
        ref_pred = ref.encode_decode(inputs, metas)
        our_pred = ours.encode_decode(inputs, metas)
    our_logits = stages[-1]
    assert our_logits.shape == ref_logits.shape
    assert ref_logits.shape[1] == 150
    # the update stages really change the generate head's logits
    assert _rel_diff(stages[0], our_logits) > 0.1
    logit_diff = _rel_diff(our_logits, ref_logits)
    pred_diff = _rel_diff(our_pred, ref_pred)
    print(f'\n{ours_cfg} vs {ref_cfg}: max rel diff logits '
          f'{logit_diff:.2e}, resized {pred_diff:.2e}')
    assert logit_diff <= MAX_REL_DIFF
    assert pred_diff <= MAX_REL_DIFF
    if not check_losses:
        return

    # training: the same loss terms with the same values (same dropout draws)
    ours.train(), ref.train()
    inputs = torch.randn(2, 3, 32, 32)
    samples = _samples(2, 32)
    torch.manual_seed(3)
    ref_logits = _train_logits(ref, inputs)
    torch.manual_seed(3)
    our_logits = _train_logits(ours, inputs)
    for key, value in ref_logits.items():
        assert _rel_diff(our_logits[key], value) <= MAX_REL_DIFF, key
    torch.manual_seed(3)
    ref_losses = ref.loss(inputs, copy.deepcopy(samples))
    torch.manual_seed(3)
    our_losses = ours.loss(inputs, copy.deepcopy(samples))
    assert set(our_losses) == set(ref_losses)
    assert {f'decode.loss_ce.s{i}' for i in range(4)} <= set(our_losses)
    labels = torch.cat([s.gt_sem_seg.data for s in samples])
    ignore = ref.decode_head.ignore_index
    for key, value in ref_losses.items():
        if 'acc_seg' not in key:  # continuous: a float tolerance
            assert _rel_diff(our_losses[key], value) <= MAX_REL_DIFF, key
            continue
        # an argmax count: equal up to pixels whose top-2 logits nearly tie
        logits_key = key.replace('acc_seg', 'loss_ce')
        align = ref.decode_head.align_corners
        assert align == ref.auxiliary_head.align_corners
        assert_accuracy_matches(
            our_losses[key], value,
            resize_like_mmseg(our_logits[logits_key], labels.shape[-2:],
                              align),
            resize_like_mmseg(ref_logits[logits_key], labels.shape[-2:],
                              align), labels, ignore, key)
    # the logits above are those the reference losses came from
    stages = [ref_logits[f'decode.loss_ce.s{i}'] for i in range(4)]
    recomputed = add_prefix(
        ref.decode_head.loss_by_feat(stages, samples), 'decode')
    recomputed.update(
        add_prefix(
            ref.auxiliary_head.loss_by_feat(ref_logits['aux.loss_ce'],
                                            samples), 'aux'))
    for key, value in recomputed.items():
        if 'loss' in key:
            torch.testing.assert_close(value, ref_losses[key])
