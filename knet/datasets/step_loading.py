# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Load STEP panoptic targets into mmdet's annotation fields (per frame).

``LoadSTEPPanopticAnnotations`` reads KITTI-STEP RGB panoptic maps
(``seg_map_path``); ``LoadCityscapesSTEPAnnotations`` reads Cityscapes
``labelTrainIds`` (``seg_map_path``) + ``instanceTrainIds``
(``ins_map_path``). Both fill the fields mmdet's transforms and
``PackTrackInputs`` use: ``gt_masks`` (BitmapMasks), ``gt_bboxes`` (boxes
of the masks), ``gt_bboxes_labels`` (index in ``thing_ids``),
``gt_instances_ids``, ``gt_ignore_flags`` and ``gt_seg_map`` (trainIds,
255 void; ``ignore_index`` 255). Put them inside a
``TransformBroadcaster`` for two-frame samples.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from .cityscapes_step import read_cityscapes_step
from .kitti_step import STEP_THING_IDS, read_step_panoptic
from .synthetic.classes import STEP_VOID


def fill_targets(results: dict, targets: dict) -> dict:
    """Write decoded targets into mmdet's ``gt_*`` result fields."""
    height, width = targets['sem_seg'].shape
    masks = BitmapMasks(targets['masks'].astype(np.uint8), height, width)
    results['gt_masks'] = masks
    results['gt_bboxes'] = HorizontalBoxes(
        masks.get_bboxes(dst_type='hbox').tensor)
    results['gt_bboxes_labels'] = targets['labels'].astype(np.int64)
    results['gt_instances_ids'] = targets['instance_ids'].astype(np.int64)
    results['gt_ignore_flags'] = np.zeros(len(targets['labels']), bool)
    results['gt_seg_map'] = targets['sem_seg'].astype(np.uint8)
    results['ignore_index'] = STEP_VOID
    results.setdefault('seg_fields', []).append('gt_seg_map')
    return results


@TRANSFORMS.register_module()
class LoadSTEPPanopticAnnotations(BaseTransform):
    """KITTI-STEP RGB panoptic map -> mmdet fields (crowd kept, spec §5.1).

    Args:
        num_classes: semantic classes (values >= it other than 255 are
            refused, naming the file).
        thing_ids: semantic ids of the thing classes, in label order.
    """

    def __init__(self,
                 num_classes: int = 19,
                 thing_ids: Sequence[int] = STEP_THING_IDS):
        self.num_classes = num_classes
        self.thing_ids = tuple(int(t) for t in thing_ids)

    def transform(self, results: dict) -> dict:
        """Decode ``results['seg_map_path']`` into the ``gt_*`` fields."""
        return fill_targets(
            results,
            read_step_panoptic(results['seg_map_path'],
                               num_classes=self.num_classes,
                               thing_ids=self.thing_ids))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'thing_ids={self.thing_ids})')


@TRANSFORMS.register_module()
class LoadCityscapesSTEPAnnotations(LoadSTEPPanopticAnnotations):
    """Cityscapes labelTrainIds + instanceTrainIds -> mmdet fields (§5.2)."""

    def transform(self, results: dict) -> dict:
        """Decode ``seg_map_path`` + ``ins_map_path`` into ``gt_*`` fields."""
        return fill_targets(
            results,
            read_cityscapes_step(results['seg_map_path'],
                                 results['ins_map_path'], self.thing_ids))
