# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net checkpoints: key tree and parameter count of the R-50
KITTI-STEP model (hand-computed from video_knet_spec.md §1, §2.5, §2.6 and
knet_image_spec.md §4), conversion of original-format files through
tools/convert_checkpoint.py, the messages for wrong files, and the rename of
the original's Microsoft-layout Swin backbone."""
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from knet.utils.checkpoint_convert import (CheckpointMismatchError,
                                           build_model_from_config,
                                           compare_state_dicts,
                                           convert_checkpoint,
                                           convert_swin_backbone,
                                           infer_det_config,
                                           infer_video_config,
                                           is_video_state_dict,
                                           temporal_modules)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KITTI_R50 = ('configs/det/video_knet_kitti_step/video_knet_s3_r50_rpn_1x_'
             'kitti_step_sigmoid_stride2_mask_embed_link_ffn_joint_train.py')
KITTI_SWINB = ('configs/det/video_knet_kitti_step/video_knet_s3_swinb_rpn_'
               '1x_kitti_step_sigmoid_stride2_mask_embed_link_ffn_joint_'
               'train.py')
VIPSEG_R50 = ('configs/det/video_knet_vipseg/video_knet_s3_r50_rpn_vipseg_'
              'mask_embed_link_ffn_joint_train.py')
VIPSEG_SWINB = ('configs/det/video_knet_vipseg/video_knet_s3_swinb_rpn_'
                'vipseg_mask_embed_link_ffn_joint_train_8e.py')
#: KITTI-STEP classes in trainId order (the original's CLASSES meta)
KITTI_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                 'traffic light', 'traffic sign', 'vegetation', 'terrain',
                 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                 'motorcycle', 'bicycle')
TOP_LEVEL = {'backbone', 'neck', 'rpn_head', 'roi_head', 'track_head',
             'embed_fcs', 'fc_embed'}
C, FFN, PROPOSALS, CLASSES = 256, 2048, 100, 19


@pytest.fixture(scope='module')
def kitti_model():
    """The R-50 KITTI-STEP Video K-Net (random weights), built once."""
    torch.manual_seed(0)
    model, _ = build_model_from_config(osp.join(REPO, KITTI_R50))
    return model.eval()


@pytest.fixture(scope='module')
def kitti_state(kitti_model):
    return dict(kitti_model.state_dict())


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'convert_checkpoint_tool',
        osp.join(REPO, 'tools', 'convert_checkpoint.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _save_original(state, path, classes=KITTI_CLASSES):
    """A file laid out as the original's mmdet 2.x / mmcv 1.x checkpoints:
    the same keys (the modules keep the original names), under
    ``state_dict``, with ``meta`` and the optimizer state."""
    torch.save(
        {
            'meta': {
                'mmdet_version': '2.18.0',
                'CLASSES': classes,
                'epoch': 12,
                'iter': 12345
            },
            'state_dict': state,
            'optimizer': {'state': {}, 'param_groups': []},
        }, path)


# ---------------------------------------------------------------------------
# (a) key tree
# ---------------------------------------------------------------------------
def _link_keys():
    """Keys and shapes of one stage's kernel-linking modules (spec §2.5 a):
    MHA(256, 8 heads) + LN + FFN(256->2048->256) + LN."""
    return {
        'attention_previous.attn.in_proj_weight': (3 * C, C),
        'attention_previous.attn.in_proj_bias': (3 * C, ),
        'attention_previous.attn.out_proj.weight': (C, C),
        'attention_previous.attn.out_proj.bias': (C, ),
        'attention_previous_norm.weight': (C, ),
        'attention_previous_norm.bias': (C, ),
        'link_ffn.layers.0.0.weight': (FFN, C),
        'link_ffn.layers.0.0.bias': (FFN, ),
        'link_ffn.layers.1.weight': (C, FFN),
        'link_ffn.layers.1.bias': (C, ),
        'link_ffn_norm.weight': (C, ),
        'link_ffn_norm.bias': (C, ),
    }


def test_top_level_modules_and_key_count(kitti_state):
    assert {k.split('.', 1)[0] for k in kitti_state} == TOP_LEVEL
    # image panoptic R-50 K-Net: 502 keys (knet_image_spec.md §4); video
    # adds 12 link keys per stage (all 3 stages, as in the original) and
    # embed_fcs (Linear w/o bias + LN: 3), fc_embed (2), track head (6)
    assert len(kitti_state) == 502 + 3 * 12 + 3 + 2 + 6


def test_last_stage_link_keys_and_shapes(kitti_state):
    prefix = 'roi_head.mask_head.2.'
    link = {
        k[len(prefix):]: tuple(v.shape)
        for k, v in kitti_state.items() if k.startswith(prefix) and (
            'attention_previous' in k or 'link_ffn' in k)
    }
    assert link == _link_keys()
    # every stage has them (the config replicates the head dict)
    for stage in (0, 1):
        assert all(f'roi_head.mask_head.{stage}.{k}' in kitti_state
                   for k in _link_keys())
    # no fusion / update-link modules in the R-50 'ffn' model
    stage_modules = {
        k.split('.')[3]
        for k in kitti_state if k.startswith('roi_head.mask_head.')
    }
    assert not any(m.endswith(('_track', '_link')) for m in stage_modules)
    assert 'attention_previous_update_track' not in stage_modules
    assert kitti_state[prefix + 'fc_cls.weight'].shape == (CLASSES, C)


def test_embedding_and_track_head_keys(kitti_state):
    video = {
        k: tuple(v.shape)
        for k, v in kitti_state.items()
        if k.startswith(('embed_fcs.', 'fc_embed.', 'track_head.'))
    }
    assert video == {
        'embed_fcs.0.weight': (C, C),  # Linear, no bias
        'embed_fcs.1.weight': (C, ),  # LayerNorm
        'embed_fcs.1.bias': (C, ),
        'fc_embed.weight': (C, C),
        'fc_embed.bias': (C, ),
        'track_head.fcs.0.weight': (C, C),
        'track_head.fcs.0.bias': (C, ),
        'track_head.fcs.1.weight': (C, C),
        'track_head.fcs.1.bias': (C, ),
        'track_head.fc_embed.weight': (C, C),
        'track_head.fc_embed.bias': (C, ),
    }


# ---------------------------------------------------------------------------
# (b) parameter count, by hand
# ---------------------------------------------------------------------------
def _linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def _conv(i, o, k, bias=False):
    return i * o * k * k + (o if bias else 0)


def _norm(c):  # LN / GN / BN affine parameters
    return 2 * c


def _resnet50():
    total = _conv(3, 64, 7) + _norm(64)
    in_ch = 64
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for b in range(blocks):
            total += (_conv(in_ch, planes, 1) + _norm(planes) +
                      _conv(planes, planes, 3) + _norm(planes) +
                      _conv(planes, 4 * planes, 1) + _norm(4 * planes))
            if b == 0:
                total += _conv(in_ch, 4 * planes, 1) + _norm(4 * planes)
            in_ch = 4 * planes
    return total


def _hand_counts():
    """Trainable parameters per top-level module of the R-50 KITTI-STEP
    Video K-Net, from the module sizes of the specs."""
    conv_gn = _conv(C, C, 3) + _norm(C)  # 3x3 ConvModule + GN
    conv1_gn = _conv(C, C, 1) + _norm(C)
    mha = _linear(C, 3 * C) + _linear(C, C)
    ffn = _linear(C, FFN) + _linear(FFN, C)
    updator = (2 * _linear(C, 2 * C) + 3 * _linear(C, C) + 5 * _norm(C))
    image_stage = (mha + _norm(C) + updator + _conv(C, C, 1, bias=True) +
                   ffn + _norm(C) + _linear(C, C, bias=False) + _norm(C) +
                   _linear(C, CLASSES) + _linear(C, C, bias=False) +
                   _norm(C) + _linear(C, C))
    link = mha + _norm(C) + ffn + _norm(C)
    return {
        'backbone': _resnet50(),
        'neck': sum(_conv(i, C, 1, bias=True)
                    for i in (256, 512, 1024, 2048)) +
        4 * _conv(C, C, 3, bias=True),
        # init_kernels, conv_seg, loc/seg convs, localization FPN (7 3x3
        # convs, conv_pred, one aux conv)
        'rpn_head': _conv(C, PROPOSALS, 1) +
        _conv(C, CLASSES, 1, bias=True) + 2 * conv1_gn + 7 * conv_gn +
        2 * conv1_gn,
        'roi_head': 3 * (image_stage + link),
        'embed_fcs': _linear(C, C, bias=False) + _norm(C),
        'fc_embed': _linear(C, C),
        'track_head': 3 * _linear(C, C),
    }


def test_parameter_count_matches_hand_computation(kitti_model):
    hand = _hand_counts()
    # cross-checks against the spec's published numbers: R-50 without fc,
    # FPN, and the 133-class image stage (2,076,037) minus 114 classes
    assert hand['backbone'] == 23_508_032
    assert hand['neck'] == 3_344_384
    link = 1_315_072  # MHA 263,168 + LN 512 + FFN 1,050,880 + LN 512
    assert hand['roi_head'] == 3 * (2_076_037 - 114 * 257 + link)
    built = {
        name: sum(p.numel() for p in getattr(kitti_model, name).parameters())
        for name in TOP_LEVEL
    }
    assert built == hand
    assert sum(p.numel() for p in kitti_model.parameters()) == \
        sum(hand.values()) == 41_694_092


# ---------------------------------------------------------------------------
# (c) round trip through tools/convert_checkpoint.py
# ---------------------------------------------------------------------------
def _two_frame_outputs(model, imgs):
    """Kernel-head semantic logits, last-stage class / mask logits, linked
    kernels and association embeddings of two consecutive frames (the
    second linked to the first)."""
    outs, previous = [], None
    with torch.no_grad():
        for t in range(imgs.shape[0]):
            feats = model.extract_feat(imgs[t:t + 1])
            kernels, x_feats, mask_preds, seg_preds = model.rpn_head(feats)
            kernels, mask_preds = model.rpn_head.append_stuff(
                kernels, mask_preds, seg_preds)
            stages = model.roi_head.run_stages(
                x_feats, kernels, mask_preds, previous_kernels=previous)
            track = stages.track_kernels[-1]
            outs.append(
                dict(
                    seg=seg_preds,
                    cls=stages.cls_scores[-1],
                    masks=stages.scaled_mask_preds[-1],
                    kernels=stages.kernels[-1],
                    track=track,
                    embeds=model.embed(track[0, :model.num_proposals])))
            previous = stages.kernels[-1]
    return outs


def test_original_format_round_trip_loads_strictly_and_predicts_the_same(
        tmp_path, kitti_model, kitti_state, capsys):
    src, dst = str(tmp_path / 'video_knet_orig.pth'), str(tmp_path / 'o.pth')
    _save_original(kitti_state, src)
    assert _load_tool().main([src, dst]) == 0
    assert osp.basename(KITTI_R50) in capsys.readouterr().out
    ckpt = torch.load(dst, weights_only=True)
    assert 'optimizer' not in ckpt
    assert ckpt['meta']['config'] == KITTI_R50
    assert ckpt['meta']['dataset_meta'] == {'classes': KITTI_CLASSES}
    assert set(ckpt['state_dict']) == set(kitti_state)

    torch.manual_seed(1)  # other random weights than the source model
    fresh, _ = build_model_from_config(osp.join(REPO, KITTI_R50))
    fresh.eval()
    link_key = 'roi_head.mask_head.2.link_ffn.layers.1.weight'
    assert not torch.equal(fresh.state_dict()[link_key], kitti_state[link_key])
    fresh.load_state_dict(ckpt['state_dict'], strict=True)
    torch.manual_seed(2)
    imgs = torch.randn(2, 3, 32, 64)
    expected = _two_frame_outputs(kitti_model, imgs)
    after = _two_frame_outputs(fresh, imgs)
    # frame 0 has no previous kernels (tracking kernels = kernels); frame 1
    # is linked, so the link modules are part of what is compared
    assert torch.equal(expected[0]['track'], expected[0]['kernels'])
    assert not torch.allclose(expected[1]['track'], expected[1]['kernels'])
    for got, want in zip(after, expected):
        for name in want:
            torch.testing.assert_close(
                got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)


# ---------------------------------------------------------------------------
# (d) wrong files
# ---------------------------------------------------------------------------
def _convert_error(tmp_path, state, config=None):
    src, dst = str(tmp_path / 'src.pth'), str(tmp_path / 'dst.pth')
    _save_original(state, src)
    with pytest.raises(CheckpointMismatchError) as err:
        convert_checkpoint(
            src, dst, config=None if config is None else osp.join(
                REPO, config))
    assert not osp.exists(dst)
    return str(err.value)


def test_image_knet_with_the_video_config_lists_the_video_keys(
        tmp_path, kitti_state):
    image = {
        k: v
        for k, v in kitti_state.items()
        if not k.startswith(('track_head.', 'embed_fcs.', 'fc_embed.'))
        and 'attention_previous' not in k and 'link_ffn' not in k
    }
    assert len(image) == 502
    # on its own it is recognised as the Cityscapes-STEP image K-Net
    assert not is_video_state_dict(image)
    assert infer_det_config(image).endswith(
        'knet_cityscapes_step/knet_s3_r50_fpn.py')
    msg = _convert_error(tmp_path, image, KITTI_R50)
    assert 'missing in checkpoint (47): ' in msg
    assert 'roi_head.mask_head.0.attention_previous.attn.in_proj_weight' in msg
    assert 'it is an image K-Net' in msg and '--load-from' in msg


def test_vipseg_checkpoint_with_the_kitti_config_lists_the_class_layers(
        tmp_path, kitti_state):
    vipseg = dict(kitti_state)
    vipseg['rpn_head.conv_seg.weight'] = torch.zeros(124, C, 1, 1)
    vipseg['rpn_head.conv_seg.bias'] = torch.zeros(124)
    for i in range(3):
        vipseg[f'roi_head.mask_head.{i}.fc_cls.weight'] = torch.zeros(124, C)
        vipseg[f'roi_head.mask_head.{i}.fc_cls.bias'] = torch.zeros(124)
    assert infer_video_config(vipseg).endswith(VIPSEG_R50)
    msg = _convert_error(tmp_path, vipseg, KITTI_R50)
    assert 'shape mismatch (8): ' in msg
    assert ('rpn_head.conv_seg.weight: checkpoint (124, 256, 1, 1) vs model '
            '(19, 256, 1, 1)') in msg
    assert ('roi_head.mask_head.2.fc_cls.bias: checkpoint (124,) vs model '
            '(19,)') in msg
    assert 'missing' not in msg and 'unexpected' not in msg
    assert '124 classes (VIP-Seg), the config 19 (KITTI-STEP' in msg


def test_truncated_video_state_dict_lists_the_missing_keys(
        tmp_path, kitti_state):
    lost = ['track_head.fcs.1.weight', 'track_head.fcs.1.bias',
            'track_head.fc_embed.weight', 'track_head.fc_embed.bias']
    keys = list(kitti_state)
    assert keys[-4:] == lost  # the file ends with the track head
    truncated = {k: kitti_state[k] for k in keys[:-4]}
    msg = _convert_error(tmp_path, truncated)  # still auto-detected
    assert 'missing in checkpoint (4): ' + ', '.join(lost) in msg
    assert 'unexpected' not in msg and 'shape mismatch' not in msg
    assert 'checkpoint previous_type=' in msg and 'track_fcs=1' in msg


def test_other_link_variant_names_its_settings(tmp_path, kitti_state):
    """The original Swin-B 'joint_update' model links with previous_type
    'update' (``*_track`` modules): a mismatch says which settings."""
    renamed = {}
    for k, v in kitti_state.items():
        for old, new in (('attention_previous.', 'attention_previous_track.'),
                         ('attention_previous_norm.',
                          'attention_previous_norm_track.'),
                         ('link_ffn.', 'link_ffn_track.'),
                         ('link_ffn_norm.', 'link_ffn_norm_track.')):
            k = k.replace('.' + old, '.' + new)
        renamed[k] = v
    renamed['roi_head.mask_head.2.attention_previous_update_track.'
            'fc_layer.weight'] = torch.zeros(C, C)
    assert temporal_modules(renamed)['previous_type'] == 'update/update_obj'
    msg = _convert_error(tmp_path, renamed)
    assert 'unexpected in checkpoint (' in msg
    assert "checkpoint previous_type='update/update_obj'" in msg
    assert "config previous_type='ffn'" in msg


def test_cli_reports_a_wrong_file_without_traceback(tmp_path, kitti_state,
                                                     capsys):
    state = dict(kitti_state)
    del state['fc_embed.bias']
    src = str(tmp_path / 'broken.pth')
    _save_original(state, src)
    assert _load_tool().main([src, str(tmp_path / 'out.pth')]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'Traceback' not in err
    assert 'missing in checkpoint (1): fc_embed.bias' in err
    assert not osp.exists(tmp_path / 'out.pth')


# ---------------------------------------------------------------------------
# config choice and the Swin rename
# ---------------------------------------------------------------------------
def _with_swin(state, embed_dims):
    out = {k: v for k, v in state.items() if not k.startswith('backbone.')}
    out['backbone.patch_embed.projection.weight'] = torch.zeros(
        embed_dims, 3, 4, 4)
    return out


def test_video_config_from_classes_and_backbone(kitti_state):
    assert temporal_modules(kitti_state) == dict(
        video=True, previous_type='ffn', previous_link=None, track_fcs=2)
    assert infer_video_config(kitti_state).endswith(KITTI_R50)
    swinb = _with_swin(kitti_state, 128)
    assert infer_video_config(swinb).endswith(KITTI_SWINB)
    swinb['rpn_head.conv_seg.weight'] = torch.zeros(124, C, 1, 1)
    assert infer_video_config(swinb).endswith(VIPSEG_SWINB)
    with pytest.raises(CheckpointMismatchError, match='backbone swinl'):
        infer_video_config(_with_swin(kitti_state, 192))
    # image K-Nets with 19 classes: the Cityscapes-STEP pre-training models
    assert infer_det_config(_with_swin(kitti_state, 192)).endswith(
        'knet_cityscapes_step/knet_s3_swinl_fpn.py')
    odd = dict(kitti_state, **{'rpn_head.conv_seg.weight': torch.zeros(
        40, C, 1, 1)})
    with pytest.raises(CheckpointMismatchError, match='40 classes'):
        infer_video_config(odd)


def _microsoft_swin_shapes(c=8, heads=(1, 2), window=2):
    """Key shapes of a 2-stage Swin in the original Video K-Net's
    (Microsoft Swin) layout: patch_embed.proj/norm, layers.<i>.blocks.<j>
    {norm1, attn.{relative_position_bias_table, relative_position_index,
    qkv, proj}, norm2, mlp.fc1/fc2}, layers.0.downsample.{reduction, norm},
    norm<i>."""
    shapes = {
        'patch_embed.proj.weight': (c, 3, 4, 4),
        'patch_embed.proj.bias': (c, ),
        'patch_embed.norm.weight': (c, ),
        'patch_embed.norm.bias': (c, ),
    }
    for i, nh in enumerate(heads):
        d = c * 2**i
        for j in range(2):
            p = f'layers.{i}.blocks.{j}.'
            shapes.update({
                p + 'norm1.weight': (d, ), p + 'norm1.bias': (d, ),
                p + 'attn.relative_position_bias_table':
                ((2 * window - 1)**2, nh),
                p + 'attn.relative_position_index': (window**2, window**2),
                p + 'attn.qkv.weight': (3 * d, d), p + 'attn.qkv.bias':
                (3 * d, ),
                p + 'attn.proj.weight': (d, d), p + 'attn.proj.bias': (d, ),
                p + 'norm2.weight': (d, ), p + 'norm2.bias': (d, ),
                p + 'mlp.fc1.weight': (4 * d, d), p + 'mlp.fc1.bias':
                (4 * d, ),
                p + 'mlp.fc2.weight': (d, 4 * d), p + 'mlp.fc2.bias': (d, ),
            })
        shapes[f'norm{i}.weight'] = shapes[f'norm{i}.bias'] = (d, )
    shapes['layers.0.downsample.reduction.weight'] = (2 * c, 4 * c)
    shapes['layers.0.downsample.norm.weight'] = (4 * c, )
    shapes['layers.0.downsample.norm.bias'] = (4 * c, )
    return shapes


def test_microsoft_swin_keys_become_mmdet_swin_keys():
    from mmdet.models.backbones import SwinTransformer
    swin = SwinTransformer(
        embed_dims=8, depths=(2, 2), num_heads=(1, 2), window_size=2,
        strides=(4, 2), out_indices=(0, 1))
    expected = {f'backbone.{k}': v for k, v in swin.state_dict().items()}
    original = {
        f'backbone.{k}': torch.zeros(s)
        for k, s in _microsoft_swin_shapes().items()
    }
    original['rpn_head.init_kernels.weight'] = torch.ones(3)
    converted = convert_swin_backbone(original)
    assert torch.equal(converted.pop('rpn_head.init_kernels.weight'),
                       torch.ones(3))
    assert compare_state_dicts(converted, expected) == []
    # mmdet-layout weights pass through untouched
    assert convert_swin_backbone(expected) is expected


def test_swin_patch_merging_weights_are_reordered_for_mmdet():
    """The original merges the 2x2 neighbours as [(0,0), (1,0), (0,1),
    (1,1)] (row, col) per channel block, mmdet's Unfold channel-major: the
    converted weights give the same output."""
    from mmdet.models.layers.transformer import PatchMerging
    torch.manual_seed(0)
    c, h, w = 3, 4, 6
    x = torch.randn(1, h, w, c)
    weight, gamma, beta = (torch.randn(2 * c, 4 * c), torch.randn(4 * c),
                           torch.randn(4 * c))
    merged = torch.cat([
        x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]
    ], -1).reshape(1, -1, 4 * c)
    want = F.layer_norm(merged, (4 * c, ), gamma, beta) @ weight.t()
    prefix = 'backbone.layers.0.downsample.'
    converted = convert_swin_backbone({
        prefix + 'reduction.weight': weight,
        prefix + 'norm.weight': gamma,
        prefix + 'norm.bias': beta
    })
    merge = PatchMerging(in_channels=c, out_channels=2 * c)
    merge.load_state_dict({
        k.split('downsample.')[1]: v for k, v in converted.items()
    })
    got, out_hw = merge(x.reshape(1, h * w, c), (h, w))
    assert out_hw == (h // 2, w // 2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
