# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VSPW-style video semantic segmentation writer (official VSPW layout).

Layout under ``root`` (= ``<out>/vspw``)::

    data/<video>/origin/{frame:08d}.png   RGB frames
    data/<video>/mask/{frame:08d}.png     uint8 label maps
    train.txt, val.txt                    one video name per line
    label_num_dic_final.json              class name -> mask value

Mask value ``k`` is class ``k - 1`` of ``SYNTHETIC_SEMANTIC_CLASSES``; 0 =
"others" (VOID, ignored with ``reduce_zero_label=True``). Video names
``video<NNNN>`` are unique across splits (train first).
"""
from __future__ import annotations

from pathlib import Path

from ..fileio import atomic_write_bytes, write_json, write_png
from ..scene import SceneConfig, render_video
from .common import progress, sample_rng

SPLITS = ('train', 'val')


def write_vspw(root: Path,
               seed: int,
               cfg: SceneConfig,
               num_train: int,
               num_val: int,
               num_frames: int,
               show_progress: bool = True) -> None:
    """Render clips; write VSPW-style origin / mask folders and split lists."""
    root = Path(root)
    classes = cfg.stuff_classes + cfg.thing_classes
    first = 0
    for split, num in zip(SPLITS, (num_train, num_val)):
        names = []
        for i in progress(num, f'vspw/{split}', show_progress):
            name = f'video{first + i:04d}'
            names.append(name)
            rng = sample_rng(seed, 'vspw', split, i)
            for t, scene in enumerate(render_video(rng, cfg, num_frames)):
                video = root / 'data' / name
                write_png(video / 'origin' / f'{t:08d}.png', scene.image)
                write_png(video / 'mask' / f'{t:08d}.png',
                          scene.semantic_map(classes, offset=1, void=0))
        text = ''.join(f'{n}\n' for n in names)
        atomic_write_bytes(root / f'{split}.txt', text.encode())
        first += num
    labels = {name: i + 1 for i, name in enumerate(classes)}
    write_json(root / 'label_num_dic_final.json', dict(labels, others=0))
