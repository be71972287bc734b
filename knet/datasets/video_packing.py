# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Pack multi-frame VPS samples: mmdet's ``PackTrackInputs`` + seg maps.

mmdet 3.3's ``PackTrackInputs`` never packs ``gt_seg_map`` and its
``__repr__`` reads an attribute that is never set (video_ecosystem.md
§1.1). :class:`PackVideoSegInputs` adds, per frame, ``gt_sem_seg``
(``PixelData(sem_seg=(1, H, W))`` from ``gt_seg_map``, as transformed) and
``gt_panoptic_seg`` (``PixelData(sem_seg=(1, H, W) int64)`` from
``gt_panoptic_map``, at the original size) and puts the key frame(s)
first, so ``video_data_samples[0]`` is the key frame whatever order the
frame sampler used (a one-frame test sample gets ``key_frames_inds=[0]``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch
from mmdet.datasets.transforms import PackDetInputs, PackTrackInputs
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes
from mmengine.structures import PixelData

def key_first_order(flags: Sequence[bool]) -> list[int]:
    """Frame indices with the key frames first (stable within each group)."""
    flags = np.asarray(flags, bool)
    return np.concatenate([np.flatnonzero(flags),
                           np.flatnonzero(~flags)]).tolist()


def reorder_frames(results: dict, order: list[int]) -> dict:
    """Reorder every per-frame list of ``results`` by ``order``."""
    num = len(order)
    out = dict(results)
    for key, value in results.items():
        if isinstance(value, (list, tuple)) and len(value) == num:
            out[key] = [value[i] for i in order]
    return out


@TRANSFORMS.register_module()
class PackVideoSegInputs(PackTrackInputs):
    """``PackTrackInputs`` that also packs per-frame semantic / panoptic GT.

    Args:
        meta_keys: extra meta keys (added to ``default_meta_keys``).
        default_meta_keys: as in mmdet's ``PackTrackInputs``.

    Per frame ``DetDataSample``: ``gt_instances`` (mmdet's; ``bboxes`` as a
    plain (n, 4) tensor, which mmdet's packer fails to make from box
    objects), ``gt_sem_seg``
    (``sem_seg`` (1, H, W) int64, when ``gt_seg_map`` is present) and
    ``gt_panoptic_seg`` (``sem_seg`` (1, H, W) int64, when
    ``gt_panoptic_map`` is present). Key frames first; the
    ``TrackDataSample`` metainfo gets ``key_frames_inds`` /
    ``ref_frames_inds``.
    """

    def __init__(self,
                 meta_keys: Optional[Sequence[str] | str] = None,
                 default_meta_keys: tuple = (
                     'img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor', 'flip', 'flip_direction', 'frame_id',
                     'video_id', 'video_length', 'ori_video_length',
                     'instances')) -> None:
        if isinstance(meta_keys, list):
            meta_keys = tuple(meta_keys)
        self.default_meta_keys = tuple(default_meta_keys)
        super().__init__(meta_keys=meta_keys,
                         default_meta_keys=tuple(default_meta_keys))

    def transform(self, results: dict) -> dict:
        """Pack images, instances, metainfo and the seg maps of all frames."""
        if 'key_frame_flags' in results:
            order = key_first_order(results['key_frame_flags'])
            results = reorder_frames(results, order)  # flags included
        if 'gt_bboxes' in results:
            # mmdet's PackTrackInputs cannot convert box objects (mmcv's
            # to_tensor); the model reads plain (n, 4) tensors
            results = dict(results)
            results['gt_bboxes'] = [
                boxes.tensor if isinstance(boxes, BaseBoxes) else boxes
                for boxes in results['gt_bboxes']]
        packed = super().transform(results)
        frames = packed['data_samples'].video_data_samples
        if 'key_frame_flags' not in results and len(frames) == 1:
            # frame-level test sample: its one frame is the key frame
            packed['data_samples'].set_metainfo(
                dict(key_frames_inds=[0], ref_frames_inds=[]))
        for key, field in (('gt_seg_map', 'gt_sem_seg'),
                           ('gt_panoptic_map', 'gt_panoptic_seg')):
            maps = results.get(key)
            if maps is None:
                continue
            if len(maps) != len(frames):
                raise ValueError(
                    f'PackVideoSegInputs: "{key}" has {len(maps)} frames but '
                    f'"img_id" has {len(frames)}; load it inside the '
                    f'TransformBroadcaster with the images')
            for frame, seg in zip(frames, maps):
                tensor = torch.from_numpy(
                    np.asarray(seg, np.int64)[None].copy())
                setattr(frame, field, PixelData(sem_seg=tensor))
        return packed

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(meta_keys={self.meta_keys}, '
                f'default_meta_keys={self.default_meta_keys})')


@TRANSFORMS.register_module()
class PackDetInputsWithPanopticGT(PackDetInputs):
    """mmdet's ``PackDetInputs`` that also packs ``gt_panoptic_map`` as
    ``gt_panoptic_seg`` (``sem_seg`` (1, H, W) int64), so the video metrics
    (``VPQMetric`` with ``windows=[1]`` = image PQ) score image datasets
    such as Cityscapes-STEP without a COCO panoptic json."""

    def transform(self, results: dict) -> dict:
        """Pack as ``PackDetInputs``, plus the panoptic ground truth."""
        packed = super().transform(results)
        if 'gt_panoptic_map' in results:
            pan = np.asarray(results['gt_panoptic_map'], np.int64)[None]
            packed['data_samples'].gt_panoptic_seg = PixelData(
                sem_seg=torch.from_numpy(pan.copy()))
        return packed
