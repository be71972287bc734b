# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""KITTI-STEP-style video panoptic writer (Video K-Net's flat layout).

Layout under ``root`` (= ``<out>/step``), as Video K-Net's
``scripts/kitti_step_prepare.py`` lays out the real data (spec §5.1)::

    video_sequence/{train,val}/{seq:06d}_{frame:06d}_leftImg8bit.png
    video_sequence/{train,val}/{seq:06d}_{frame:06d}_panoptic.png

Panoptic PNG: R = semantic id (index in ``SYNTHETIC_SEMANTIC_CLASSES``, stuff
first; 255 = void), G * 256 + B = track id (0 = stuff, or a crowd region of
a thing class). Sequence ids are unique across splits (train 0..n-1, then
val).
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
    """STEP RGB label of a frame: R = class id (255 void), G/B = track id."""
    semantic = scene.semantic_map(classes, offset=0, void=STEP_VOID)
    instance = np.zeros(semantic.shape, np.int64)
    for seg, mask in scene.iter_masks():
        if seg.isthing and not seg.iscrowd:
            instance[mask] = seg.track_id
    rgb = np.stack([semantic, instance // 256, instance % 256], axis=-1)
    return rgb.astype(np.uint8)


def decode_step(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(semantic, instance) maps of a STEP RGB label (``encode_step``^-1)."""
    label = label.astype(np.int64)
    return label[..., 0], label[..., 1] * 256 + label[..., 2]


def write_step(root: Path,
               seed: int,
               cfg: SceneConfig,
               num_train: int,
               num_val: int,
               num_frames: int,
               show_progress: bool = True) -> None:
    """Render clips; write KITTI-STEP-style frames and panoptic labels."""
    root = Path(root)
    classes = cfg.stuff_classes + cfg.thing_classes
    first_seq = 0
    for split, num in zip(SPLITS, (num_train, num_val)):
        folder = root / 'video_sequence' / split
        for i in progress(num, f'step/{split}', show_progress):
            seq = first_seq + i
            frames = render_video(
                sample_rng(seed, 'step', split, i), cfg, num_frames)
            for t, scene in enumerate(frames):
                stem = f'{seq:06d}_{t:06d}'
                write_png(folder / f'{stem}_leftImg8bit.png', scene.image)
                write_png(folder / f'{stem}_panoptic.png',
                          encode_step(scene, classes))
        first_seq += num
