# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Class names, category ids, palettes and ``metainfo`` of the synthetic data.

Two label orders exist, as in the real datasets the formats imitate:

* panoptic / instance (COCO-style json, YouTube-VIS): **things first, then
  stuff** (``SYNTHETIC_CLASSES``); json category ids are *not* contiguous
  (things 1, 2, 3, 5, 6, 7; stuff 101..105) so ``cat2label`` is exercised.
* semantic id maps (ADE20K-style, KITTI-STEP-style, VSPW-style): **stuff
  first, then things** (``SYNTHETIC_SEMANTIC_CLASSES``), like Cityscapes /
  VIPSeg trainIds. ADE / VSPW store ``index + 1`` (0 = "other", ignored with
  ``reduce_zero_label=True``); STEP stores ``index`` (255 = void).
"""
from __future__ import annotations

from collections.abc import Sequence

# name -> (json category id, base RGB colour). The colour is the centre of the
# class-biased palette the renderer samples around (see ``scene.py``).
THING_LIBRARY: dict[str, tuple[int, tuple[int, int, int]]] = {
    'disk': (1, (220, 40, 40)),  # red
    'square': (2, (235, 205, 35)),  # yellow
    'triangle': (3, (205, 45, 200)),  # magenta
    'ring': (5, (250, 135, 20)),  # orange
    'cross': (6, (30, 225, 215)),  # cyan
    'star': (7, (120, 60, 235)),  # violet
}
STUFF_LIBRARY: dict[str, tuple[int, tuple[int, int, int]]] = {
    'sky': (101, (135, 190, 235)),  # light blue, smooth gradient + clouds
    'wall': (102, (150, 150, 158)),  # grey bricks with dark mortar
    'ground': (103, (160, 120, 80)),  # brown speckle
    'grass': (104, (70, 150, 60)),  # green vertical streaks
    'water': (105, (40, 90, 150)),  # dark blue horizontal waves
}

SYNTHETIC_THING_CLASSES: tuple[str, ...] = tuple(THING_LIBRARY)
SYNTHETIC_STUFF_CLASSES: tuple[str, ...] = tuple(STUFF_LIBRARY)
#: Panoptic / instance order (things first), as CocoPanopticDataset expects.
SYNTHETIC_CLASSES: tuple[str, ...] = (
    SYNTHETIC_THING_CLASSES + SYNTHETIC_STUFF_CLASSES)
#: Semantic-map order (stuff first) of the ADE / STEP / VSPW label maps.
SYNTHETIC_SEMANTIC_CLASSES: tuple[str, ...] = (
    SYNTHETIC_STUFF_CLASSES + SYNTHETIC_THING_CLASSES)
#: STEP R-channel values (semantic ids) of the thing classes (default classes).
SYNTHETIC_STEP_THING_IDS: tuple[int, ...] = tuple(
    range(len(SYNTHETIC_STUFF_CLASSES), len(SYNTHETIC_SEMANTIC_CLASSES)))

SYNTHETIC_THING_PALETTE: list[tuple[int, int, int]] = [
    c for _, c in THING_LIBRARY.values()
]
SYNTHETIC_STUFF_PALETTE: list[tuple[int, int, int]] = [
    c for _, c in STUFF_LIBRARY.values()
]
SYNTHETIC_PALETTE: list[tuple[int, int, int]] = (
    SYNTHETIC_THING_PALETTE + SYNTHETIC_STUFF_PALETTE)
SYNTHETIC_SEMANTIC_PALETTE: list[tuple[int, int, int]] = (
    SYNTHETIC_STUFF_PALETTE + SYNTHETIC_THING_PALETTE)

#: STEP-style void class (R channel) and VSPW 'void' value.
STEP_VOID = 255


def category_id(name: str) -> int:
    """Json category id of a class name (stable whatever subset is used)."""
    if name in THING_LIBRARY:
        return THING_LIBRARY[name][0]
    if name in STUFF_LIBRARY:
        return STUFF_LIBRARY[name][0]
    raise KeyError(f'unknown synthetic class {name!r}')


def class_colour(name: str) -> tuple[int, int, int]:
    """Base RGB colour of a class (palette entry, renderer's mean colour)."""
    return (THING_LIBRARY.get(name) or STUFF_LIBRARY[name])[1]


def check_classes(
        thing_classes: Sequence[str], stuff_classes: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate a class selection against the shape / texture library."""
    things, stuff = tuple(thing_classes), tuple(stuff_classes)
    for name in things:
        if name not in THING_LIBRARY:
            raise ValueError(f'unknown thing class {name!r}; '
                             f'choose from {SYNTHETIC_THING_CLASSES}')
    for name in stuff:
        if name not in STUFF_LIBRARY:
            raise ValueError(f'unknown stuff class {name!r}; '
                             f'choose from {SYNTHETIC_STUFF_CLASSES}')
    if not things or not stuff:
        raise ValueError('need at least one thing class and one stuff class')
    if len(set(things)) != len(things) or len(set(stuff)) != len(stuff):
        raise ValueError('duplicate class names')
    return things, stuff


def get_metainfo(
        task: str,
        thing_classes: Sequence[str] = SYNTHETIC_THING_CLASSES,
        stuff_classes: Sequence[str] = SYNTHETIC_STUFF_CLASSES) -> dict:
    """``metainfo=`` for the mmdet / mmseg dataset reading a task's files.

    ``coco``/``ytvis``: things only; ``panoptic``: things then stuff (+ the
    split lists); ``ade``/``vspw``: semantic order (stuff then things);
    ``step``: semantic order plus ``thing_ids`` (R-channel values of things).
    """
    things, stuff = check_classes(thing_classes, stuff_classes)
    thing_pal = [class_colour(n) for n in things]
    stuff_pal = [class_colour(n) for n in stuff]
    if task in ('coco', 'ytvis'):
        return dict(classes=things, palette=thing_pal)
    if task == 'panoptic':
        return dict(
            classes=things + stuff,
            thing_classes=things,
            stuff_classes=stuff,
            palette=thing_pal + stuff_pal)
    if task in ('ade', 'vspw'):
        return dict(classes=stuff + things, palette=stuff_pal + thing_pal)
    if task == 'step':
        return dict(
            classes=stuff + things,
            thing_classes=things,
            stuff_classes=stuff,
            thing_ids=tuple(range(len(stuff),
                                  len(stuff) + len(things))),
            palette=stuff_pal + thing_pal)
    raise KeyError(f'unknown synthetic task {task!r}')
