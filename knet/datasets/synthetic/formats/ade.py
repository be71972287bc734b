# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""ADE20K-style semantic segmentation writer.

Layout under ``root`` (= ``<out>/ade``)::

    images/{training,validation}/000000.png        RGB images
    annotations/{training,validation}/000000.png   uint8 label maps

Label value ``k`` is class ``k - 1`` of ``SYNTHETIC_SEMANTIC_CLASSES`` (stuff,
then things); 0 = "other" (VOID), ignored with ``reduce_zero_label=True``.
"""
from __future__ import annotations

from pathlib import Path

from ..fileio import write_png
from ..scene import SceneConfig, render_image
from .common import progress, sample_rng

SPLITS = (('train', 'training'), ('val', 'validation'))


def write_ade(root: Path,
              seed: int,
              cfg: SceneConfig,
              num_train: int,
              num_val: int,
              show_progress: bool = True) -> None:
    """Render image scenes and write ADE20K-style image / label-map folders."""
    root = Path(root)
    classes = cfg.stuff_classes + cfg.thing_classes
    for (split, folder), num in zip(SPLITS, (num_train, num_val)):
        for i in progress(num, f'ade/{folder}', show_progress):
            scene = render_image(sample_rng(seed, 'ade', split, i), cfg)
            write_png(root / 'images' / folder / f'{i:06d}.png', scene.image)
            write_png(root / 'annotations' / folder / f'{i:06d}.png',
                      scene.semantic_map(classes, offset=1, void=0))
