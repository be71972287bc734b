# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net's embedding losses against hand-computed values (spec §2.6,
acceptance check §10.3) and the hard-mining denominator decision."""
import math

import pytest
import torch
from mmdet.models.losses import L2Loss, MultiPosCrossEntropyLoss
from mmdet.registry import MODELS

import knet  # noqa: F401  (registers KNetL2Loss)
from knet.models.losses import KNetL2Loss

AUX = dict(neg_pos_ub=3, pos_margin=0, neg_margin=0.1, hard_mining=True)


def test_multi_pos_cross_entropy_is_log_one_plus_sum_exp():
    # row 0: one positive (2.0); row 1: two positives (0.3, 1.2)
    pred = torch.tensor([[2.0, 0.5, 1.0], [0.3, 1.2, -0.4]])
    label = torch.tensor([[1, 0, 0], [1, 1, 0]])
    row0 = math.log(1 + math.exp(0.5 - 2.0) + math.exp(1.0 - 2.0))
    row1 = math.log(1 + math.exp(-0.4 - 0.3) + math.exp(-0.4 - 1.2))
    loss = MultiPosCrossEntropyLoss(loss_weight=0.25)(
        pred, label, torch.ones(2), avg_factor=2.0)
    assert loss.item() == pytest.approx(0.25 * (row0 + row1) / 2, rel=1e-6)
    # a row without positive weighs 0 and is left out of the average
    loss = MultiPosCrossEntropyLoss()(
        pred, label, torch.tensor([1.0, 0.0]), avg_factor=1.0)
    assert loss.item() == pytest.approx(row0, rel=1e-6)


def test_multi_pos_cross_entropy_on_random_inputs():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(4, 6, generator=gen)
    label = (torch.rand(4, 6, generator=gen) > 0.6).int()
    label[:, 0] = 1
    loss = MultiPosCrossEntropyLoss(reduction='none')(pred, label)
    for i in range(4):
        pos = [pred[i, j].item() for j in range(6) if label[i, j]]
        neg = [pred[i, j].item() for j in range(6) if not label[i, j]]
        ref = math.log(1 + sum(
            math.exp(n - p) for p in pos for n in neg))
        assert loss[i].item() == pytest.approx(ref, rel=1e-5)


def test_l2_hard_mining_keeps_three_hardest_negatives_per_positive():
    # 1 positive, 7 negatives: 7 / (1 + 1) = 3.5 > 3 -> keep 3 negatives
    cos = torch.tensor([[0.9, 0.05, 0.7, 0.3], [0.5, 0.85, 0.2, 0.65]])
    target = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]])
    loss = KNetL2Loss(**AUX)(cos, target)
    negs = sorted((max(c - 0.1, 0.0) for c in
                   (0.05, 0.7, 0.3, 0.5, 0.85, 0.2, 0.65)),
                  reverse=True)
    ref = ((0.9 - 1)**2 + sum(n**2 for n in negs[:3])) / 4
    assert loss.item() == pytest.approx(ref, rel=1e-5)
    # without mining every entry counts
    all_entries = KNetL2Loss(**dict(AUX, neg_pos_ub=-1))(cos, target)
    assert all_entries.item() == pytest.approx(
        ((0.9 - 1)**2 + sum(n**2 for n in negs)) / 8, rel=1e-5)


def _boundary_case(num_rows, num_cols, num_pos, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # distinct values, no ties in the mining order
    cos = torch.randperm(num_rows * num_cols, generator=gen).float()
    cos = (cos / (num_rows * num_cols)).view(num_rows, num_cols)
    target = torch.zeros(num_rows, num_cols, dtype=torch.int)
    target.view(-1)[:num_pos] = 1
    return cos, target


def _hand_l2(cos, target, keep_neg=None):
    pos = [(min(c, 1.0) - 1)**2 for c, t in zip(cos.flatten().tolist(),
                                               target.flatten().tolist())
           if t == 1]
    neg = sorted(((max(c - 0.1, 0.0))**2
                  for c, t in zip(cos.flatten().tolist(),
                                  target.flatten().tolist()) if t == 0),
                 reverse=True)
    if keep_neg is not None:
        neg = neg[:keep_neg]
    return (sum(pos) + sum(neg)) / (len(pos) + len(neg))


def test_l2_boundary_original_vs_mmdet_denominator():
    # 10 positives, 32 negatives: 32 / 11 = 2.91 (original: no mining),
    # 32 / 10 = 3.2 (mmdet: the 30 hardest negatives)
    cos, target = _boundary_case(6, 7, 10)
    original = KNetL2Loss(**AUX)
    mmdet_like = KNetL2Loss(**AUX, denominator='mmdet')
    assert not original.mines(10, 32) and mmdet_like.mines(10, 32)
    got_original = original(cos, target)
    got_mmdet = mmdet_like(cos, target)
    assert got_original.item() == pytest.approx(_hand_l2(cos, target),
                                                rel=1e-5)
    assert got_mmdet.item() == pytest.approx(_hand_l2(cos, target, 30),
                                             rel=1e-5)
    assert got_original.item() != pytest.approx(got_mmdet.item(), rel=1e-3)
    # 'mmdet' is mmdet's L2Loss (which works in place: give it copies)
    ref = L2Loss(**AUX)(cos.clone(), target.clone())
    assert got_mmdet.item() == pytest.approx(ref.item(), rel=1e-6)


def test_l2_denominators_differ_on_an_ordinary_pair():
    # 3 instances per frame, 2 shared: 2 positives, 7 negatives
    cos, target = _boundary_case(3, 3, 0, seed=1)
    target[0, 0] = target[1, 1] = 1
    assert not KNetL2Loss(**AUX).mines(2, 7)
    assert KNetL2Loss(**AUX, denominator='mmdet').mines(2, 7)
    assert KNetL2Loss(**AUX)(cos, target).item() == pytest.approx(
        _hand_l2(cos, target), rel=1e-5)
    assert KNetL2Loss(**AUX, denominator='mmdet')(
        cos, target).item() == pytest.approx(_hand_l2(cos, target, 6),
                                             rel=1e-5)


def test_l2_leaves_inputs_untouched_and_builds_from_registry():
    cos, target = _boundary_case(4, 5, 2)
    cos.requires_grad_(True)
    before = cos.detach().clone(), target.clone()
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        built = MODELS.build(dict(type='KNetL2Loss', **AUX))
    loss = built(cos * 1, target)
    loss.backward()
    assert torch.equal(cos.detach(), before[0])
    assert torch.equal(target, before[1])
    assert cos.grad is not None and cos.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='denominator'):
        KNetL2Loss(denominator='qdtrack')


def test_build_det_loss_ignores_an_mmseg_default_scope():
    """Bare names build mmdet's loss even when mmseg is the default scope
    (mmseg's DiceLoss has other arguments); an explicit scope is kept."""
    from mmdet.models.losses import DiceLoss as DetDiceLoss
    from mmengine.registry import DefaultScope

    from knet.models.losses import build_det_loss

    cfg = dict(type='DiceLoss', loss_weight=4.0, activate=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        loss = build_det_loss(cfg)
        assert isinstance(loss, DetDiceLoss) and loss.loss_weight == 4.0
        assert isinstance(build_det_loss(dict(type='mmdet.L2Loss')), L2Loss)
    assert cfg['type'] == 'DiceLoss'  # the caller's config is not changed
    assert build_det_loss(None) is None and build_det_loss({}) is None
