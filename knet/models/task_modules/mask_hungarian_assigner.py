# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""mmdet's Hungarian assigner, skipping class costs when there are no scores.

K-Net's first matchings (the kernel head and update stage 0) have no class
prediction yet; their configs still list the class cost, which the original
skipped in that case. Everything else is mmdet's ``HungarianAssigner``.
"""
from typing import Optional

from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.assigners import HungarianAssigner
from mmdet.models.task_modules.assigners.match_cost import (
    ClassificationCost, FocalLossCost)
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData


def _needs_scores(cost) -> bool:
    if isinstance(cost, FocalLossCost):
        return not cost.binary_input
    return isinstance(cost, ClassificationCost)


@TASK_UTILS.register_module()
class MaskHungarianAssigner(HungarianAssigner):
    """Hungarian mask assignment; class costs apply only when scores exist."""

    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               img_meta: Optional[dict] = None,
               **kwargs) -> AssignResult:
        if 'scores' in pred_instances:
            return super().assign(pred_instances, gt_instances, img_meta)
        all_costs = self.match_costs
        self.match_costs = [c for c in all_costs if not _needs_scores(c)]
        try:
            return super().assign(pred_instances, gt_instances, img_meta)
        finally:
            self.match_costs = all_costs
