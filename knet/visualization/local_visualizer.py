# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""mmdet's DetLocalVisualizer, tolerant of panoptic maps with no segment.

mmdet 3.3 crashes (``np.stack`` of an empty list) when a panoptic
prediction is all VOID, e.g. a young model or an image with nothing
confident; the image is then returned undrawn instead.
"""
from typing import List, Optional

import numpy as np
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer


@VISUALIZERS.register_module()
class KNetDetLocalVisualizer(DetLocalVisualizer):
    """DetLocalVisualizer that draws empty panoptic predictions as-is."""

    def _draw_panoptic_seg(self, image: np.ndarray, panoptic_seg,
                           classes: Optional[List[str]],
                           palette: Optional[List]) -> np.ndarray:
        ids = np.unique(panoptic_seg.sem_seg[0])
        if 'label_names' in panoptic_seg:
            void = panoptic_seg.metainfo.get(
                'ignore_index', len(panoptic_seg.metainfo['label_names']))
        else:
            void = len(classes)
        if not (ids != void).any():
            return image
        return super()._draw_panoptic_seg(image, panoptic_seg, classes,
                                          palette)
