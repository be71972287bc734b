# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Kernel association embedding head (spec §2.6): layout, init, losses."""
import math

import pytest
import torch
from mmdet.models.tracking_heads import QuasiDenseEmbedHead
from mmdet.registry import MODELS

import knet  # noqa: F401
from knet.models.video import QuasiDenseMaskEmbedHead

SMALL = dict(in_channels=8, fc_out_channels=8, embed_channels=4)


def test_registered_names_and_mmdet_key_layout():
    from mmengine.registry import DefaultScope
    for name in ('QuasiDenseMaskEmbedHead', 'QuasiDenseMaskEmbedHeadGTMask'):
        # (an earlier mmseg test may leave mmseg as the default scope)
        with DefaultScope.overwrite_default_scope('mmdet'):
            head = MODELS.build(
                dict(type=name, norm_cfg=dict(type='GN', num_groups=32)))
        assert isinstance(head, QuasiDenseMaskEmbedHead)
    head = QuasiDenseMaskEmbedHead(**SMALL)
    # (mmdet's default MarginL2Loss config does not build in mmdet 3.3;
    # mmdet's head builds its losses by name: in mmdet's scope)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref = QuasiDenseEmbedHead(
            num_fcs=2, roi_feat_size=1, loss_track_aux=None, **SMALL)
    assert list(head.state_dict()) == [
        'fcs.0.weight', 'fcs.0.bias', 'fcs.1.weight', 'fcs.1.bias',
        'fc_embed.weight', 'fc_embed.bias'
    ]
    assert list(head.state_dict()) == list(ref.state_dict())
    # same weights, same embeddings as mmdet's head, for both input layouts
    ref.load_state_dict(head.state_dict())
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = head(x)
        assert out.shape == (5, 4)
        torch.testing.assert_close(out, ref(x[..., None, None]))
        assert torch.equal(head(x[..., None, None]), out)
    with pytest.raises(ValueError, match='num_convs'):
        QuasiDenseMaskEmbedHead(num_convs=4)


def test_init_xavier_fcs_and_small_normal_embedding():
    torch.manual_seed(0)
    head = QuasiDenseMaskEmbedHead()
    head.init_weights()
    bound = math.sqrt(6 / (256 + 256))  # xavier-uniform, default init: 1/16
    for fc in head.fcs:
        assert fc.weight.abs().max() <= bound
        assert fc.weight.abs().max() > 0.95 * bound
        assert torch.all(fc.bias == 0)
    assert head.fc_embed.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.all(head.fc_embed.bias == 0)


def test_two_by_two_loss_by_hand():
    head = QuasiDenseMaskEmbedHead(**SMALL)
    key = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ref = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    # key 0 and ref 0 are instance 5; key 1 (7) and ref 1 (9) are unmatched
    losses = head.loss([key], [ref], [torch.tensor([5, 7])],
                       [torch.tensor([5, 9])])
    # dot products [[2, 1], [0, 1]]; only row 0 has a positive
    assert losses['loss_track'].item() == pytest.approx(
        0.25 * math.log(1 + math.exp(1 - 2)), rel=1e-6)
    # cosines [[1, s], [0, s]], s = 1/sqrt(2); 1 pos / 3 neg: no mining;
    # negatives lowered by 0.1 and clamped at 0
    s = 1 / math.sqrt(2)
    assert losses['loss_track_aux'].item() == pytest.approx(
        (0 + (s - 0.1)**2 + 0 + (s - 0.1)**2) / 4, rel=1e-6)


def _image(seed, num_key, num_ref, ids_key, ids_ref):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(num_key, 4, generator=gen),
            torch.randn(num_ref, 4, generator=gen), torch.tensor(ids_key),
            torch.tensor(ids_ref))


def test_batch_loss_is_mean_of_per_image_losses():
    head = QuasiDenseMaskEmbedHead(**SMALL)
    images = [
        _image(0, 3, 4, [1, 2, 3], [3, 1, 8, 9]),
        _image(1, 2, 2, [4, 6], [6, 4]),
    ]
    batch = head.loss(*[list(a) for a in zip(*images)])
    single = [head.loss(*[[a] for a in img]) for img in images]
    for name in ('loss_track', 'loss_track_aux'):
        mean = (single[0][name] + single[1][name]) / 2
        torch.testing.assert_close(batch[name], mean)
        assert single[0][name] != pytest.approx(single[1][name].item())


def test_image_without_positives_adds_a_graph_keeping_zero():
    head = QuasiDenseMaskEmbedHead(**SMALL)
    key, ref, key_ids, ref_ids = _image(0, 3, 4, [1, 2, 3], [3, 1, 8, 9])
    key.requires_grad_(True)
    empty_key = torch.zeros(0, 4, requires_grad=True)
    full = head.loss([key], [ref], [key_ids], [ref_ids])
    batch = head.loss([key, empty_key], [ref, ref[:2]],
                      [key_ids, key_ids[:0]], [ref_ids, ref_ids[:2]])
    for name in ('loss_track', 'loss_track_aux'):
        torch.testing.assert_close(batch[name], full[name] / 2)
    zero = head.loss([empty_key], [ref], [key_ids[:0]], [ref_ids])
    assert zero['loss_track'].item() == 0
    assert zero['loss_track'].requires_grad
    sum(batch.values()).backward()
    assert key.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='one entry per image'):
        head.loss([key], [ref, ref], [key_ids], [ref_ids])


def test_builds_whatever_the_default_scope():
    """An mmseg run (or an earlier mmseg test) leaves mmseg as the default
    scope; the head's losses are mmdet's and must still build."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = QuasiDenseMaskEmbedHead(**SMALL)
    assert type(head.loss_track).__name__ == 'MultiPosCrossEntropyLoss'
    assert type(head.loss_track_aux).__name__ == 'KNetL2Loss'
