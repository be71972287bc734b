# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net's update stage: kernel linking / fusion (spec §2.5, §10.2)."""
import math

import pytest
import torch

import knet  # noqa: F401
from knet.models.layers import KNetKernelUpdateHead
from knet.models.video import VideoKernelUpdateHead

UPDATOR = dict(
    type='KNetKernelUpdator', in_channels=16, feat_channels=16,
    out_channels=16)
ATTN = ('attn.in_proj_bias', 'attn.in_proj_weight', 'attn.out_proj.bias',
        'attn.out_proj.weight')
FFN = ('layers.0.0.bias', 'layers.0.0.weight', 'layers.1.bias',
       'layers.1.weight')
NORM = ('bias', 'weight')
UPDATOR_KEYS = tuple(f'{m}.{p}' for m in (
    'dynamic_layer', 'fc_layer', 'fc_norm', 'input_gate', 'input_layer',
    'input_norm_in', 'input_norm_out', 'norm_in', 'norm_out', 'update_gate')
                     for p in NORM)


def _keys(module, names):
    return {f'{module}.{n}' for n in names}


def _link_keys(suffix):
    return (_keys(f'attention_previous{suffix}', ATTN)
            | _keys(f'attention_previous_norm{suffix}', NORM)
            | _keys(f'link_ffn{suffix}', FFN)
            | _keys(f'link_ffn_norm{suffix}', NORM))


def _cfg(channels=16, **kwargs):
    cfg = dict(
        num_classes=5,
        num_heads=2,
        feedforward_channels=32,
        in_channels=channels,
        out_channels=channels,
        feat_transform_cfg=dict(conv_cfg=dict(type='Conv2d'), act_cfg=None),
        kernel_updator_cfg=dict(
            UPDATOR,
            in_channels=channels,
            feat_channels=channels,
            out_channels=channels))
    cfg.update(kwargs)
    return cfg


def _video(seed=0, previous='placeholder', **kwargs):
    torch.manual_seed(seed)
    head = VideoKernelUpdateHead(previous=previous, **_cfg(**kwargs))
    head.init_weights()
    return head.eval()


def _image_twin(video):
    """A KNetKernelUpdateHead holding the video stage's shared weights."""
    head = KNetKernelUpdateHead(**_cfg()).eval()
    missing, _ = head.load_state_dict(video.state_dict(), strict=False)
    assert not missing
    return head


def _inputs(seed=1, num_imgs=2, num_kernels=7, channels=16):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(num_imgs, channels, 8, 8, generator=gen)
    kernels = torch.randn(num_imgs, num_kernels, channels, 1, 1,
                          generator=gen)
    masks = torch.randn(num_imgs, num_kernels, 8, 8, generator=gen)
    previous = torch.randn(num_imgs, num_kernels, channels, 1, 1,
                           generator=gen)
    return feats, kernels, masks, previous


def _base_keys():
    return set(KNetKernelUpdateHead(**_cfg()).state_dict())


@pytest.mark.parametrize('kwargs, extra', [
    (dict(previous_type='ffn'), _link_keys('')),
    (dict(previous_type='update'),
     _link_keys('_track')
     | _keys('attention_previous_update_track', UPDATOR_KEYS)),
    (dict(previous_type='update_obj'),
     _link_keys('_track')
     | _keys('attention_previous_update_track', UPDATOR_KEYS)),
    (dict(previous_type=None, previous_link='link_atten'),
     _link_keys('_link')),
    (dict(previous_type='ffn', previous_link='update_dynamic_cov'),
     _link_keys('') | _link_keys('_link')
     | _keys('attention_previous_update_link', UPDATOR_KEYS)),
])
def test_state_dict_keys_of_each_mode(kwargs, extra):
    keys = set(_video(**kwargs).state_dict())
    assert keys - _base_keys() == extra
    assert _base_keys() <= keys
    # previous=None builds no temporal module whatever the other options
    none = _video(previous=None, **kwargs)
    assert set(none.state_dict()) == _base_keys()


@pytest.mark.parametrize('kwargs', [
    dict(previous_type='ffn'),
    dict(previous_type='update'),
    dict(previous_type='update_obj'),
    dict(previous_type='ffn', previous_link='update_dynamic_cov'),
    dict(previous_type=None, previous_link='link_atten'),
])
def test_without_previous_kernels_it_is_the_image_stage(kwargs):
    video = _video(**kwargs)
    image = _image_twin(video)
    feats, kernels, masks, _ = _inputs()
    with torch.no_grad():
        out = video.forward_stage(feats, kernels, masks)
        ref = image.forward_stage(feats, kernels, masks)
    for name in ('cls_score', 'mask_preds', 'kernels', 'track_kernels',
                 'group_feats'):
        assert torch.equal(getattr(out, name), getattr(ref, name)), name


@pytest.mark.parametrize('previous_type', ['ffn', 'update', 'update_obj'])
def test_linking_changes_only_the_tracking_kernels(previous_type):
    video = _video(previous_type=previous_type)
    feats, kernels, masks, previous = _inputs()
    with torch.no_grad():
        plain = video.forward_stage(feats, kernels, masks)
        linked = video.forward_stage(feats, kernels, masks, previous)
    assert torch.equal(linked.cls_score, plain.cls_score)
    assert torch.equal(linked.mask_preds, plain.mask_preds)
    assert torch.equal(linked.kernels, plain.kernels)
    assert linked.track_kernels.shape == plain.kernels.shape
    assert not torch.allclose(linked.track_kernels, plain.kernels,
                              atol=1e-3)


def test_ffn_link_is_cross_attention_ln_ffn_ln():
    video = _video(previous_type='ffn')
    feats, kernels, masks, previous = _inputs()
    with torch.no_grad():
        out = video.forward_stage(feats, kernels, masks, previous)
        # spec §2.5 (a) with torch's attention, sequence-first
        q = out.kernels.flatten(2).permute(1, 0, 2)
        kv = previous.flatten(2).permute(1, 0, 2)
        attn = video.attention_previous.attn
        assert attn.num_heads == 8
        y = video.attention_previous_norm(q + attn(q, kv, kv)[0])
        z = video.link_ffn_norm(y + video.link_ffn.layers(y))
    torch.testing.assert_close(out.track_kernels,
                               z.permute(1, 0, 2)[..., None, None])


@pytest.mark.parametrize('previous_type', ['update', 'update_obj'])
def test_update_links_attend_to_updated_previous_kernels(previous_type):
    """'update' = the 'ffn' link applied to previous kernels first updated
    with the group features ('update_obj': with the updated kernels)."""
    video = _video(previous_type=previous_type)
    ffn = _video(previous_type='ffn')
    ffn.load_state_dict({
        k.replace('_track', ''): v
        for k, v in video.state_dict().items()
        if 'update_track' not in k
    })
    feats, kernels, masks, previous = _inputs()
    with torch.no_grad():
        out = video.forward_stage(feats, kernels, masks, previous)
        update_feats = out.group_feats if previous_type == 'update' \
            else out.kernels.flatten(2)
        updated = video.attention_previous_update_track(
            update_feats, previous.flatten(2)[:, :, None])
        ref = ffn.forward_stage(feats, kernels, masks,
                                updated.reshape(previous.shape))
    torch.testing.assert_close(out.track_kernels, ref.track_kernels)
    assert torch.equal(out.mask_preds, ref.mask_preds)


@pytest.mark.parametrize('previous_link', ['link_atten', 'update_dynamic_cov'])
def test_fusion_feeds_fused_kernels_to_the_image_stage(previous_link):
    video = _video(previous_type=None, previous_link=previous_link)
    image = _image_twin(video)
    feats, kernels, masks, previous = _inputs()
    with torch.no_grad():
        out = video.forward_stage(feats, kernels, masks, previous)
        plain = image.forward_stage(feats, kernels, masks)
        prev = previous.flatten(2)
        if previous_link == 'update_dynamic_cov':
            prev = video.attention_previous_update_link(
                plain.group_feats, prev[:, :, None]).reshape(prev.shape)
        # proposal = LN(FFN(LN(q0 + MHA(q0, p', p')))), sequence-first
        q = kernels.flatten(2).permute(1, 0, 2)
        kv = prev.permute(1, 0, 2)
        attn = video.attention_previous_link.attn
        y = video.attention_previous_norm_link(q + attn(q, kv, kv)[0])
        fused = video.link_ffn_norm_link(y + video.link_ffn_link.layers(y))
        ref = image.forward_stage(feats,
                                  fused.permute(1, 0, 2)[..., None, None],
                                  masks)
    # the group features come from the current masks, before the fusion
    assert torch.equal(out.group_feats, plain.group_feats)
    torch.testing.assert_close(out.cls_score, ref.cls_score)
    torch.testing.assert_close(out.mask_preds, ref.mask_preds)
    assert not torch.allclose(out.cls_score, plain.cls_score, atol=1e-3)
    assert not torch.allclose(out.mask_preds, plain.mask_preds, atol=1e-3)


def test_shapes_for_117_kernels_at_256_channels():
    video = _video(channels=256, num_classes=19, num_heads=8,
                   feedforward_channels=2048, previous_type='ffn',
                   previous_link='update_dynamic_cov')
    feats, kernels, masks, previous = _inputs(
        num_imgs=1, num_kernels=117, channels=256)
    with torch.no_grad():
        out = video.forward_stage(feats, kernels, masks, previous)
    assert out.cls_score.shape == (1, 117, 19)
    assert out.mask_preds.shape == (1, 117, 8, 8)
    assert out.kernels.shape == (1, 117, 256, 1, 1)
    assert out.track_kernels.shape == (1, 117, 256, 1, 1)
    assert out.group_feats.shape == (1, 117, 256)


def _grads(module, prefix):
    return [
        p.grad for n, p in module.named_parameters() if n.startswith(prefix)
    ]


def test_link_modules_get_gradients_only_through_tracking_kernels():
    video = _video(previous_type='ffn').train()
    feats, kernels, masks, previous = _inputs()
    out = video.forward_stage(feats, kernels, masks, previous)
    (out.cls_score.sum() + out.mask_preds.sum()).backward(retain_graph=True)
    for prefix in ('attention_previous', 'link_ffn'):
        assert all(g is None for g in _grads(video, prefix))
    assert video.fc_mask.weight.grad is not None
    out.track_kernels.square().sum().backward()
    for prefix in ('attention_previous', 'link_ffn'):
        grads = _grads(video, prefix)
        assert grads and all(g is not None for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('kwargs, reaches', [
    (dict(previous_type='ffn'), True),
    (dict(previous_type='ffn', previous_detach=True), False),
    (dict(previous_type=None, previous_link='link_atten'), True),
    (dict(previous_type=None, previous_link='link_atten',
          previous_detach_link=True), False),
])
def test_detach_switches_stop_gradients_to_previous_kernels(kwargs, reaches):
    video = _video(**kwargs).train()
    feats, kernels, masks, previous = _inputs()
    previous.requires_grad_(True)
    out = video.forward_stage(feats, kernels, masks, previous)
    (out.track_kernels.square().sum() +
     out.mask_preds.square().sum()).backward()
    if reaches:
        assert previous.grad is not None and previous.grad.abs().sum() > 0
    else:
        assert previous.grad is None


def test_init_is_xavier_on_the_temporal_modules():
    video = _video(previous_type='update',
                   previous_link='update_dynamic_cov')
    # default init bound of these Linear layers: 1/sqrt(fan_in) = 0.25
    for name in ('link_ffn_link.layers.0.0.weight',
                 'attention_previous_update_track.dynamic_layer.weight',
                 'attention_previous_update_link.input_layer.weight',
                 'attention_previous_track.attn.out_proj.weight'):
        weight = video.state_dict()[name]
        bound = math.sqrt(6 / sum(weight.shape))
        assert weight.abs().max() <= bound
        assert weight.abs().max() > 0.9 * bound, name


def test_link_modules_follow_the_stage_defaults():
    head = VideoKernelUpdateHead(previous='p', previous_type='update',
                                 previous_link='update_dynamic_cov')
    for ffn in (head.ffn, head.link_ffn_track, head.link_ffn_link):
        assert ffn.layers[0][0].weight.shape == (2048, 256)
    for updator in (head.attention_previous_update_track,
                    head.attention_previous_update_link):
        assert updator.fc_layer.weight.shape == (256, 256)
    assert head.attention_previous_track.attn.num_heads == 8
    assert head.attention_previous_link.attn.embed_dim == 256


def test_argument_checks():
    VideoKernelUpdateHead(previous='p', previous_x_feat=None,
                          previous_link_detach=False, **_cfg())
    with pytest.raises(ValueError, match='previous_type'):
        VideoKernelUpdateHead(previous='p', previous_type='lstm', **_cfg())
    with pytest.raises(ValueError, match='previous_link'):
        VideoKernelUpdateHead(previous='p', previous_link='concat', **_cfg())
    with pytest.raises(TypeError, match='unexpected'):
        VideoKernelUpdateHead(previous='p', previous_typo='ffn', **_cfg())
