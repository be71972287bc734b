# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""KITTI-STEP-style video panoptic writer (Video K-Net's flat ``video_sequence`` layout).

Layout under ``root`` (= ``<out>/step``), as produced for the real data by
Video K-Net's ``scripts/kitti_step_prepare.py`` (spec §5.1)::

    video_sequence/{train,val}/{seq:06d}_{frame:06d}_leftImg8bit.png   RGB frames
    video_sequence/{train,val}/{seq:06d}_{frame:06d}_panoptic.png      R = semantic id
        (SYNTHETIC_SEMANTIC_CLASSES index, 255 = void), G * 256 + B = track id
        (0 = stuff, or a crowd region of a thing class)

Sequence ids are unique across splits (train 0..n-1, val n..n+m-1).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import STEP_VOID
from ..fileio import write_png
from ..scene import Scene, SceneConfig, render_video
from .common import progress, sample_rng

SPLITS = ('train', 'val')


def encode_step(scene: Scene, classes: tuple[str, ...]) -> np.ndarray:
    """STEP panoptic RGB label of a frame: R = class id (255 void), G/B = instance id."""
    semantic = scene.semantic_map(classes, offset=0, void=STEP_VOID)
    instance = np.zeros(semantic.shape, np.int64)
    for seg, mask in scene.iter_masks():
        if seg.isthing and not seg.iscrowd:
            instance[mask] = seg.track_id
    return np.stack([semantic, instance // 256, instance % 256], axis=-1).astype(np.uint8)


def decode_step(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(semantic, instance) maps of a STEP RGB label (inverse of ``encode_step``)."""
    label = label.astype(np.int64)
    return label[..., 0], label[..., 1] * 256 + label[..., 2]


def write_step(root: Path, seed: int, cfg: SceneConfig, num_train: int, num_val: int,
               num_frames: int, show_progress: bool = True) -> None:
    """Render video clips and write KITTI-STEP-style frames + panoptic labels."""
    root = Path(root)
    classes = cfg.stuff_classes + cfg.thing_classes
    first_seq = 0
    for split, num in zip(SPLITS, (num_train, num_val)):
        folder = root / 'video_sequence' / split
        for i in progress(num, f'step/{split}', show_progress):
            seq = first_seq + i
            frames = render_video(sample_rng(seed, 'step', split, i), cfg, num_frames)
            for t, scene in enumerate(frames):
                stem = f'{seq:06d}_{t:06d}'
                write_png(folder / f'{stem}_leftImg8bit.png', scene.image)
                write_png(folder / f'{stem}_panoptic.png', encode_step(scene, classes))
        first_seq += num
