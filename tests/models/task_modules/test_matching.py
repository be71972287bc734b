# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
import pytest
import torch
from mmdet.models.task_modules.assigners import FocalLossCost
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from knet.models.task_modules import (KNetDiceCost, KNetMaskCost,
                                      MaskHungarianAssigner)

# probabilities (pred_act=False): 2 predictions x 2 pixels, 1 GT
PROBS = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
GT = torch.tensor([[1.0, 0.0]])


def _costs(cost):
    return cost(InstanceData(masks=PROBS), InstanceData(masks=GT))


def test_knet_dice_cost_hand_computed():
    cost = _costs(KNetDiceCost(weight=4.0, eps=1e-3))
    expected = torch.tensor([[-4 * 2 / (1.001 + 1.001)],
                             [-4 * 1 / (0.501 + 1.001)]])
    torch.testing.assert_close(cost, expected)


def test_knet_dice_cost_differs_from_mmdet_eps_placement():
    """mmdet's DiceCost(naive_dice=False) puts eps elsewhere; K-Net's
    formula is kept for exact matching (see match_costs.py)."""
    from mmdet.models.task_modules.assigners import DiceCost
    ours = _costs(KNetDiceCost(eps=1e-3))
    theirs = _costs(DiceCost(naive_dice=False, eps=1e-3)) - 1
    assert not torch.allclose(ours, theirs, rtol=0, atol=1e-7)


def test_knet_mask_cost_is_negative_soft_accuracy():
    cost = _costs(KNetMaskCost(weight=1.0))
    torch.testing.assert_close(cost, torch.tensor([[-1.0], [-0.5]]))
    logits = torch.logit(PROBS.clamp(1e-4, 1 - 1e-4))
    with_act = KNetMaskCost(pred_act=True)(
        InstanceData(masks=logits), InstanceData(masks=GT))
    torch.testing.assert_close(with_act, cost, atol=1e-3, rtol=0)


def _assigner():
    # mmdet's assigner builds its costs in the current default scope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return _build_assigner()


def _build_assigner():
    return MaskHungarianAssigner(match_costs=[
        dict(type='FocalLossCost', weight=2.0),
        dict(type='KNetDiceCost', weight=4.0, pred_act=True),
        dict(type='KNetMaskCost', weight=1.0, pred_act=True)
    ])


def test_assigner_without_gt_makes_everything_background():
    result = _assigner().assign(
        InstanceData(masks=torch.randn(5, 4, 4), scores=torch.randn(5, 3)),
        InstanceData(
            masks=torch.zeros(0, 4, 4), labels=torch.zeros(0).long()))
    assert result.num_gts == 0
    assert result.gt_inds.tolist() == [0] * 5
    assert result.labels.tolist() == [-1] * 5


def test_assigner_skips_class_cost_without_scores():
    # prediction 1 has the better mask, prediction 0 the better class score
    masks = torch.full((2, 1, 4), -6.0)
    masks[0, 0, :2] = 6.0
    masks[1, 0, :3] = 6.0
    gt = InstanceData(
        masks=torch.tensor([[[1.0, 1.0, 1.0, 0.0]]]),
        labels=torch.tensor([1]))
    assigner = _assigner()
    without = assigner.assign(InstanceData(masks=masks), gt)
    assert without.gt_inds.tolist() == [0, 1]
    scores = torch.tensor([[-9.0, 9.0], [9.0, -9.0]])
    with_scores = assigner.assign(InstanceData(masks=masks, scores=scores),
                                  gt)
    assert with_scores.gt_inds.tolist() == [1, 0]
    assert with_scores.labels.tolist() == [1, -1]
    # the cost list is restored after a call without scores
    assert any(isinstance(c, FocalLossCost) for c in assigner.match_costs)


def test_assigner_rejects_empty_cost_list():
    with pytest.raises(AssertionError), \
            DefaultScope.overwrite_default_scope('mmdet'):
        MaskHungarianAssigner(match_costs=[])
