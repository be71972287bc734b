# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Load STEP panoptic targets into mmdet's annotation fields (per frame).

``LoadSTEPPanopticAnnotations`` reads KITTI-STEP RGB panoptic maps
(``seg_map_path``); ``LoadCityscapesSTEPAnnotations`` reads Cityscapes
``labelTrainIds`` (``seg_map_path``) + ``instanceTrainIds``
(``ins_map_path``). Both fill the fields mmdet's transforms and
``PackTrackInputs`` use: ``gt_masks`` (BitmapMasks), ``gt_bboxes`` (boxes
of the masks), ``gt_bboxes_labels`` (index in ``thing_ids``),
``gt_instances_ids``, ``gt_ignore_flags`` and ``gt_seg_map`` (255 void;
``ignore_index`` 255) in model space by default (things first, what the
network trains on; ``label_space='dataset'`` keeps the trainIds), and with
``with_panoptic_gt=True`` ``gt_panoptic_map`` (test pipelines). Put them
inside a ``TransformBroadcaster`` for two-frame samples.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from .cityscapes_step import INSTANCE_DIVISOR as CITYSCAPES_INSTANCE_DIVISOR
from .cityscapes_step import read_cityscapes_step
from .kitti_step import INSTANCE_DIVISOR as STEP_INSTANCE_DIVISOR
from .kitti_step import STEP_THING_IDS, read_step_panoptic
from .label_maps import ModelLabelMap
from .synthetic.classes import STEP_VOID


#: Instance multiplier of ``gt_panoptic_map`` (mmdet's ``INSTANCE_OFFSET``).
PANOPTIC_DIVISOR = 1000
LABEL_SPACES = ('model', 'dataset')


def check_label_space(label_space: str) -> str:
    """``label_space`` itself, or a ValueError saying which values exist."""
    if label_space not in LABEL_SPACES:
        raise ValueError(f'label_space={label_space!r}: use "model" (things '
                         f'first, what the network trains on) or "dataset" '
                         f'(the ids of the files)')
    return label_space


def panoptic_map(sem_seg: np.ndarray, masks: np.ndarray,
                 raw_instances: np.ndarray) -> np.ndarray:
    """``class + raw instance * 1000`` (int64) from a semantic map and the
    disjoint instance masks with their raw instance numbers (0 = crowd)."""
    instance = np.zeros(sem_seg.shape, np.int64)
    if len(masks):
        covered = masks.any(0)
        owner = masks.argmax(0)
        instance[covered] = np.asarray(raw_instances, np.int64)[owner[covered]]
    sem = sem_seg.astype(np.int64)
    # void has no instance: the metrics treat class 255 as void regardless
    return sem + np.where(sem == STEP_VOID, 0, instance) * PANOPTIC_DIVISOR


def fill_targets(results: dict, targets: dict,
                 label_map: ModelLabelMap | None = None,
                 raw_instances: np.ndarray | None = None) -> dict:
    """Write decoded targets into mmdet's ``gt_*`` result fields.

    ``label_map`` converts the semantic map to model space (None: keep the
    dataset ids); ``raw_instances`` (per mask) also writes
    ``gt_panoptic_map`` (not a ``seg_fields`` entry: it stays at the
    original size for the video metrics).
    """
    sem_seg = targets['sem_seg']
    if label_map is not None:
        sem_seg = label_map.to_model(sem_seg)
    height, width = sem_seg.shape
    masks = BitmapMasks(targets['masks'].astype(np.uint8), height, width)
    results['gt_masks'] = masks
    results['gt_bboxes'] = HorizontalBoxes(
        masks.get_bboxes(dst_type='hbox').tensor)
    results['gt_bboxes_labels'] = targets['labels'].astype(np.int64)
    results['gt_instances_ids'] = targets['instance_ids'].astype(np.int64)
    results['gt_ignore_flags'] = np.zeros(len(targets['labels']), bool)
    results['gt_seg_map'] = sem_seg.astype(np.uint8)
    results['ignore_index'] = STEP_VOID
    results.setdefault('seg_fields', []).append('gt_seg_map')
    if raw_instances is not None:
        results['gt_panoptic_map'] = panoptic_map(sem_seg, targets['masks'],
                                                  raw_instances)
    return results


@TRANSFORMS.register_module()
class LoadSTEPPanopticAnnotations(BaseTransform):
    """KITTI-STEP RGB panoptic map -> mmdet fields (crowd kept, spec §5.1).

    Args:
        num_classes: semantic classes (values >= it other than 255 are
            refused, naming the file).
        thing_ids: semantic ids of the thing classes, in label order.
        label_space: ``'model'`` (default): ``gt_seg_map`` in model space
            (things first, :mod:`knet.datasets.label_maps`), what Video
            K-Net trains on; ``'dataset'``: the trainIds of the file.
        with_panoptic_gt: also write ``gt_panoptic_map`` (int64, class +
            raw instance * 1000 in ``label_space``; crowd = instance 0,
            void class 255) for the STQ / VPQ metrics (test pipelines).
    """

    def __init__(self,
                 num_classes: int = 19,
                 thing_ids: Sequence[int] = STEP_THING_IDS,
                 label_space: str = 'model',
                 with_panoptic_gt: bool = False):
        self.num_classes = num_classes
        self.thing_ids = tuple(int(t) for t in thing_ids)
        self.label_space = check_label_space(label_space)
        self.with_panoptic_gt = with_panoptic_gt
        self.label_map = (ModelLabelMap(num_classes, self.thing_ids)
                          if label_space == 'model' else None)

    def raw_instances(self, targets: dict) -> np.ndarray | None:
        """Per-mask instance number of the file (None: no panoptic GT)."""
        if not self.with_panoptic_gt:
            return None
        return targets['instance_ids'] % STEP_INSTANCE_DIVISOR

    def transform(self, results: dict) -> dict:
        """Decode ``results['seg_map_path']`` into the ``gt_*`` fields."""
        targets = read_step_panoptic(results['seg_map_path'],
                                     num_classes=self.num_classes,
                                     thing_ids=self.thing_ids)
        return fill_targets(results, targets, self.label_map,
                            self.raw_instances(targets))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'thing_ids={self.thing_ids}, '
                f'label_space={self.label_space!r}, '
                f'with_panoptic_gt={self.with_panoptic_gt})')


@TRANSFORMS.register_module()
class LoadCityscapesSTEPAnnotations(LoadSTEPPanopticAnnotations):
    """Cityscapes labelTrainIds + instanceTrainIds -> mmdet fields (§5.2).

    In ``gt_panoptic_map`` an instance ``trainId * 1000 + k`` gets the
    number ``k + 1`` (Cityscapes counts instances from 0, and instance 0
    means crowd / no id to the metrics); thing pixels without an instance
    id get 0.
    """

    def raw_instances(self, targets: dict) -> np.ndarray | None:
        """Per-mask ``k + 1`` of ``trainId * 1000 + k`` (None: no GT)."""
        if not self.with_panoptic_gt:
            return None
        return targets['instance_ids'] % CITYSCAPES_INSTANCE_DIVISOR + 1

    def transform(self, results: dict) -> dict:
        """Decode ``seg_map_path`` + ``ins_map_path`` into ``gt_*`` fields."""
        targets = read_cityscapes_step(results['seg_map_path'],
                                       results['ins_map_path'],
                                       self.thing_ids)
        return fill_targets(results, targets, self.label_map,
                            self.raw_instances(targets))
