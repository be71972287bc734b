# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""``VideoSegDataPreprocessor``: mmdet's ``TrackDataPreprocessor`` that
also pads every frame's ``gt_sem_seg`` to the batch shape.

mmdet 3.3's ``TrackDataPreprocessor`` pads images and (in training)
``gt_instances.masks`` but never ``gt_sem_seg``; ``pad_seg=True`` is
silently ignored on its track branch (video_ecosystem.md §1.1). Video
K-Net builds its stuff targets from ``gt_sem_seg`` at the padded size, so
the map is padded here, bottom/right, with ``seg_pad_value`` (void, 255).
``gt_panoptic_seg`` (the metrics' ground truth) stays at the original size.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from mmdet.models.data_preprocessors import TrackDataPreprocessor
from mmdet.registry import MODELS
from mmengine.structures import PixelData


@MODELS.register_module()
class VideoSegDataPreprocessor(TrackDataPreprocessor):
    """Track data preprocessor for VPS: inputs (N, T, C, H, W), padded
    instance masks and padded ``gt_sem_seg`` on every frame.

    Args:
        pad_mask: pad ``gt_instances.masks`` in training (default True).
        pad_seg: pad ``gt_sem_seg`` of every frame, in training and test
            (default True).
        seg_pad_value: value of the padded ``gt_sem_seg`` pixels (void).
        Other arguments: mmdet's ``TrackDataPreprocessor``.
    """

    def __init__(self,
                 *args,
                 pad_mask: bool = True,
                 pad_seg: bool = True,
                 seg_pad_value: int = 255,
                 **kwargs) -> None:
        super().__init__(*args, pad_mask=pad_mask, pad_seg=pad_seg,
                         seg_pad_value=seg_pad_value, **kwargs)

    def forward(self, data: dict, training: bool = False) -> dict:
        """mmdet's track preprocessing, then pad each frame's seg map."""
        out = super().forward(data, training)
        if self.pad_seg and out['data_samples'] is not None and not (
                self.use_det_processor and training):
            self.pad_track_gt_sem_seg(out['data_samples'])
        return out

    def pad_track_gt_sem_seg(self, data_samples: Sequence) -> None:
        """Pad every frame's ``gt_sem_seg`` to its ``batch_input_shape``."""
        for track_data_sample in data_samples:
            for frame in track_data_sample.video_data_samples:
                if 'gt_sem_seg' not in frame:
                    continue
                seg = frame.gt_sem_seg.sem_seg
                pad_h, pad_w = frame.batch_input_shape
                height, width = seg.shape[-2:]
                if height > pad_h or width > pad_w:
                    raise ValueError(
                        f'VideoSegDataPreprocessor: gt_sem_seg of '
                        f'{frame.metainfo.get("img_path")} is {height}x'
                        f'{width}, larger than the batch {pad_h}x{pad_w}; '
                        f'resize it with the image in the pipeline')
                frame.gt_sem_seg = PixelData(sem_seg=F.pad(
                    seg, (0, pad_w - width, 0, pad_h - height),
                    value=self.seg_pad_value))
