# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net's two-frame training pairs (spec §2.2) for mmdet pipelines.

``STEPPairFrameSample`` replaces ``UniformRefFrameSample`` at the head of a
VPS train pipeline: it turns a video data-list entry (with ``key_frame_id``
from ``TrackImgSampler``) into the key frame and one reference frame at an
offset in ``offsets`` (default {-2, -1, 1, 2}). Two modes:

* ``redraw=False`` (the original's fixed pairs): the offset of a frame is a
  pure function of ``(seed, video_id, frame_id)``, so it is the same in
  every epoch and on every rank, like the original's list drawn once at
  build time. A frame whose partner does not exist is dropped (``None``;
  mmengine then refetches a random other sample, so an epoch keeps
  ``#frames`` samples where the original had ``#valid frames``).
* ``redraw=True``: the offset is re-drawn at every call (so every epoch),
  among the offsets whose partner exists, so no frame is dropped.

``RejectPairWithoutSharedInstance`` goes **after** the
``TransformBroadcaster(share_random_params=True)`` that loads and augments
both frames alike, and returns ``None`` when the two frames share no
instance id (the original's ``check_id_match``; a frame without thing
instances shares none). Rejecting inside the broadcaster would break its
collate (video_ecosystem.md §1.1).
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import BaseFrameSample
from mmdet.registry import TRANSFORMS

#: Reference offsets of the original for KITTI-STEP and VIPSeg (spec §2.2).
DEFAULT_OFFSETS: tuple[int, ...] = (-2, -1, 1, 2)


def fixed_offset(seed: int, video_id: int, frame_id: int,
                 offsets: Sequence[int] = DEFAULT_OFFSETS) -> int:
    """The fixed reference offset of a frame: same for every epoch and rank."""
    rng = np.random.default_rng([int(seed), int(video_id), int(frame_id)])
    return int(offsets[int(rng.integers(len(offsets)))])


@TRANSFORMS.register_module()
class STEPPairFrameSample(BaseFrameSample):
    """Key frame + one reference frame at an offset (fixed or re-drawn).

    Args:
        offsets: candidate ``ref - key`` frame offsets (non-zero).
        redraw: ``False`` = the original's fixed pairs (edge frames whose
            partner is missing are dropped); ``True`` = re-draw each call
            among the offsets that exist.
        seed: seed of the fixed pairs (ignored when ``redraw=True``; the
            re-draw uses Python's ``random``, seeded per worker by
            mmengine).
        collect_video_keys: as in ``BaseFrameSample``.

    Output (dict of 2-element lists, key first): the frames' data-list
    fields plus ``key_frame_flags=[True, False]``.
    """

    def __init__(self,
                 offsets: Sequence[int] = DEFAULT_OFFSETS,
                 redraw: bool = False,
                 seed: int = 0,
                 collect_video_keys: Sequence[str] = ('video_id',
                                                      'video_length')):
        super().__init__(collect_video_keys=list(collect_video_keys))
        offsets = [int(o) for o in offsets]
        if not offsets or 0 in offsets:
            raise ValueError(f'offsets={offsets}: need non-zero offsets, '
                             f'e.g. {list(DEFAULT_OFFSETS)}')
        self.offsets = offsets
        self.redraw = redraw
        self.seed = seed

    def reference(self, video_id: int, key: int,
                  length: int) -> Optional[int]:
        """Reference frame index of ``key``, or ``None`` if it is dropped."""
        if self.redraw:
            valid = [o for o in self.offsets if 0 <= key + o < length]
            return key + random.choice(valid) if valid else None
        ref = key + fixed_offset(self.seed, video_id, key, self.offsets)
        return ref if 0 <= ref < length else None

    def transform(self, video_infos: dict) -> Optional[dict]:
        """Key/ref frames of one video entry (``None`` = dropped frame)."""
        length = video_infos['video_length']
        key = video_infos.get('key_frame_id')
        if key is None:
            key = random.randrange(length)
        ref = self.reference(video_infos['video_id'], key, length)
        if ref is None:
            return None
        results = self.prepare_data(video_infos, [key, ref])
        results['key_frame_flags'] = [True, False]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(offsets={self.offsets}, '
                f'redraw={self.redraw}, seed={self.seed})')


@TRANSFORMS.register_module()
class RejectPairWithoutSharedInstance(BaseTransform):
    """``None`` unless key and reference frame share an instance id.

    Args:
        key: per-frame instance-id field (a list over frames, as the
            broadcaster leaves it).
    """

    def __init__(self, key: str = 'gt_instances_ids'):
        self.key = key

    def transform(self, results: dict) -> Optional[dict]:
        """Pass the pair through, or reject it (``None``)."""
        if self.key not in results:
            raise KeyError(f'RejectPairWithoutSharedInstance: no "{self.key}" '
                           f'in the results; put it after the transform that '
                           f'loads the instance ids')
        first, *others = [np.asarray(ids).ravel() for ids in results[self.key]]
        shared = first
        for ids in others:
            shared = np.intersect1d(shared, ids)
        return results if shared.size else None

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(key={self.key!r})'
