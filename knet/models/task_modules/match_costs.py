# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net's Dice and mask-accuracy match costs for mmdet's Hungarian assigner.

mmdet's ``DiceCost(naive_dice=False)`` computes ``1 - (2a+eps)/(b+c+eps)``;
K-Net's cost is ``-2a/((b+eps)+(c+eps))``. The constant does not change the
matching, but the eps placement can flip near-ties, so the released models
are matched with K-Net's exact formula here.
"""
from typing import Optional, Union

import torch
from mmdet.models.task_modules.assigners.match_cost import (BaseMatchCost,
                                                            DiceCost)
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor


@TASK_UTILS.register_module()
class KNetDiceCost(DiceCost):
    """Dice cost ``-2<p,t> / ((|p|^2 + eps) + (|t|^2 + eps))`` (K-Net).

    Args:
        weight (float): Cost weight. Defaults to 1.
        pred_act (bool): Apply sigmoid to the mask logits. Defaults to False.
        eps (float): Defaults to 1e-3.
    """

    def __init__(self,
                 weight: Union[float, int] = 1.,
                 pred_act: bool = False,
                 eps: float = 1e-3) -> None:
        super().__init__(
            pred_act=pred_act, eps=eps, naive_dice=False, weight=weight)

    def _binary_mask_dice_loss(self, mask_preds: Tensor,
                               gt_masks: Tensor) -> Tensor:
        mask_preds = mask_preds.flatten(1)
        gt_masks = gt_masks.flatten(1).float()
        numerator = 2 * mask_preds @ gt_masks.T
        denominator = (mask_preds.pow(2).sum(1)[:, None] + self.eps) + (
            gt_masks.pow(2).sum(1)[None, :] + self.eps)
        return -numerator / denominator


@TASK_UTILS.register_module()
class KNetMaskCost(BaseMatchCost):
    """Negative soft pixel accuracy between predicted and GT masks.

    ``cost[n, m] = -(<p_n, t_m> + <1 - p_n, 1 - t_m>) / (h * w)``.

    Args:
        weight (float): Cost weight. Defaults to 1.
        pred_act (bool): Apply sigmoid to the mask logits. Defaults to False.
    """

    def __init__(self,
                 weight: Union[float, int] = 1.,
                 pred_act: bool = False) -> None:
        super().__init__(weight=weight)
        self.pred_act = pred_act

    def __call__(self,
                 pred_instances: InstanceData,
                 gt_instances: InstanceData,
                 img_meta: Optional[dict] = None,
                 **kwargs) -> Tensor:
        pred = pred_instances.masks
        if self.pred_act:
            pred = pred.sigmoid()
        pred = pred.flatten(1)
        target = gt_instances.masks.flatten(1).to(pred.dtype)
        num_pixels = pred.shape[1]
        pos = pred @ target.T
        neg = (1 - pred) @ (1 - target).T
        return -(pos + neg) / num_pixels * self.weight
