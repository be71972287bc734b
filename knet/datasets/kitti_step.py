# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""KITTI-STEP video panoptic dataset (spec §5.1) as mmdet 3.3 video data.

Two layouts under ``data_root`` are read (``layout='auto'`` picks the one
present for ``split``)::

    official:  images/{split}/{seq:04d}/{frame:06d}.png
               panoptic_maps/{split}/{seq:04d}/{frame:06d}.png
    flattened: video_sequence/{split}/{seq:06d}_{frame:06d}_leftImg8bit.png
               video_sequence/{split}/{seq:06d}_{frame:06d}_panoptic.png

Both give the same data list: one entry per sequence ``{video_id,
video_length, images}``, frames sorted by frame number, each frame
``{img_path, seg_map_path, frame_id, video_id, img_id, instances: []}``
(``seg_map_path`` = the panoptic RGB PNG). Frames must be numbered 0..n-1
without gaps, so ``frame_id`` is both the file's frame number and the index
in the video (mmdet's trackers reset on ``frame_id == 0``).

Panoptic PNG: R = semantic trainId (255 = void), G * 256 + B = instance id
(0 = stuff, or the crowd region of a thing class). :func:`decode_step_panoptic`
keeps a thing class's instance-0 region as one pseudo-instance with id
``trainId * 10000``, as the original does (spec §5.1), instead of going
through ``BaseVideoDataset.parse_data_info``, which would renumber id 0.
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import mmcv
import numpy as np
from mmdet.datasets import BaseVideoDataset
from mmdet.registry import DATASETS

from .label_maps import dataset_to_model_lut, model_to_dataset_lut
from .synthetic.classes import STEP_VOID
from .synthetic.formats.step import decode_step

#: Cityscapes trainId classes of KITTI-STEP / Cityscapes-STEP (spec §5.1).
CITYSCAPES_TRAINID_CLASSES: tuple[str, ...] = (
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
    'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
    'truck', 'bus', 'train', 'motorcycle', 'bicycle')
#: trainIds of the two evaluated/trained thing classes (person, car).
STEP_THING_IDS: tuple[int, ...] = (11, 13)
#: Multiplier of the original's panoptic id ``trainId * 10000 + instance``.
INSTANCE_DIVISOR = 10000

LAYOUTS = ('official', 'flattened')
_OFFICIAL_SEQ = re.compile(r'^(\d{4})$')
_OFFICIAL_FRAME = re.compile(r'^(\d{6})\.png$')
_FLAT_NAME = re.compile(r'^(\d{6})_(\d{6})_(leftImg8bit|panoptic|depth)\.png$')


class STEPLayoutError(ValueError):
    """The KITTI-STEP folder does not match the expected layout."""


# --------------------------------------------------------------------------
# label mapping (spec §2.4) and panoptic decoding (spec §5.1)
# --------------------------------------------------------------------------
def step_label_lut(num_classes: int = 19,
                   thing_ids: Sequence[int] = STEP_THING_IDS,
                   void: int = STEP_VOID) -> np.ndarray:
    """LUT trainId -> model label: things 0..Th-1, then stuff in trainId order.

    Stuff trainId ``i`` becomes ``i - #{thing ids < i} + Th`` (spec §2.4,
    ``label_shift = Th``); ``void`` and unknown values map to ``void``.
    Generic (any ``thing_ids``): see :mod:`knet.datasets.label_maps`.
    """
    return dataset_to_model_lut(num_classes, thing_ids, void)


def step_label_inverse_lut(num_classes: int = 19,
                           thing_ids: Sequence[int] = STEP_THING_IDS,
                           void: int = STEP_VOID) -> np.ndarray:
    """LUT model label -> trainId (inverse of :func:`step_label_lut`)."""
    return model_to_dataset_lut(num_classes, thing_ids, void)


def decode_step_panoptic(label: np.ndarray,
                         num_classes: int = 19,
                         thing_ids: Sequence[int] = STEP_THING_IDS,
                         void: int = STEP_VOID,
                         source: str = '<array>') -> dict:
    """Targets of a STEP RGB label: semantic trainIds + thing instances.

    Returns ``sem_seg`` (H,W int64 trainIds, ``void`` kept), ``masks``
    (N,H,W bool), ``labels`` (N, index in ``thing_ids``) and
    ``instance_ids`` (N, ``trainId * 10000 + instance``; a thing's
    instance-0 crowd region is one instance with id ``trainId * 10000``).
    Instances are sorted by id. ``source`` names the file in errors.
    """
    if label.ndim != 3 or label.shape[2] != 3 or label.dtype != np.uint8:
        raise STEPLayoutError(
            f'{source}: a STEP panoptic map must be an 8-bit RGB PNG '
            f'(R = class, G*256+B = instance); got shape {label.shape}, '
            f'dtype {label.dtype}')
    semantic, instance = decode_step(label)
    bad = (semantic >= num_classes) & (semantic != void)
    if bad.any():
        raise STEPLayoutError(
            f'{source}: class values {np.unique(semantic[bad]).tolist()} '
            f'outside [0, {num_classes}) and not void ({void}); is this a '
            f'STEP panoptic map with {num_classes} classes?')
    is_thing = np.isin(semantic, np.asarray(thing_ids, np.int64))
    if (instance[is_thing] >= INSTANCE_DIVISOR).any():
        raise STEPLayoutError(
            f'{source}: instance ids >= {INSTANCE_DIVISOR} do not fit the '
            f'panoptic id trainId*{INSTANCE_DIVISOR}+instance')
    panoptic = semantic * INSTANCE_DIVISOR + instance
    ids, inverse = np.unique(panoptic[is_thing], return_inverse=True)
    masks = np.zeros((len(ids), ) + semantic.shape, bool)
    rows, cols = np.nonzero(is_thing)
    masks[inverse.ravel(), rows, cols] = True
    to_label = {int(t): i for i, t in enumerate(thing_ids)}
    labels = np.array([to_label[int(i) // INSTANCE_DIVISOR] for i in ids],
                      np.int64)
    return dict(sem_seg=semantic, masks=masks, labels=labels,
                instance_ids=ids.astype(np.int64))


def read_step_panoptic(path: str | os.PathLike, **kwargs) -> dict:
    """Read and decode a STEP panoptic PNG (:func:`decode_step_panoptic`)."""
    try:
        # 'unchanged' keeps 16-bit / 1-channel files recognisable (they are
        # refused below); cv2 decodes BGR, and mmcv only reorders for 'color'.
        label = mmcv.imread(str(path), flag='unchanged', backend='cv2')
    except Exception as err:  # noqa: BLE001  (re-raised with the path)
        raise STEPLayoutError(f'{path}: cannot read PNG: {err}') from err
    if label is None:
        raise STEPLayoutError(f'{path}: missing or not an image')
    if label.ndim == 3 and label.shape[2] == 3:
        label = np.ascontiguousarray(label[..., ::-1])  # BGR -> RGB
    return decode_step_panoptic(label, source=str(path), **kwargs)


# --------------------------------------------------------------------------
# file listing of the two layouts
# --------------------------------------------------------------------------
def detect_layout(data_root: str | os.PathLike, split: str) -> str:
    """``'official'`` or ``'flattened'``: the layout present for ``split``."""
    root = Path(data_root)
    found = [name for name, folder in (
        ('official', root / 'images' / split),
        ('flattened', root / 'video_sequence' / split)) if folder.is_dir()]
    if len(found) == 1:
        return found[0]
    if found:
        raise STEPLayoutError(
            f'{root}: both {root}/images/{split} and '
            f'{root}/video_sequence/{split} exist; set layout="official" or '
            f'layout="flattened" in the dataset config')
    raise STEPLayoutError(
        f'{root}: no KITTI-STEP split "{split}": expected '
        f'{root}/images/{split}/<seq:04d>/<frame:06d>.png (official) or '
        f'{root}/video_sequence/{split}/<seq:06d>_<frame:06d>_leftImg8bit.png '
        f'(flattened); check data_root and split')


def _official_files(root: Path, split: str,
                    with_panoptic: bool) -> dict[int, dict[int, list]]:
    """{seq: {frame: [img, pan]}} of the official layout."""
    frames: dict[int, dict[int, list]] = defaultdict(dict)
    kinds = [('images', 0)] + ([('panoptic_maps', 1)] if with_panoptic else [])
    for kind, slot in kinds:
        top = root / kind / split
        if not top.is_dir():
            raise STEPLayoutError(
                f'{top}: folder missing (official layout needs images/{split} '
                f'and panoptic_maps/{split}); for unlabelled data set '
                f'with_panoptic=False')
        for seq_dir in sorted(top.iterdir()):
            if not _OFFICIAL_SEQ.match(seq_dir.name) or not seq_dir.is_dir():
                raise STEPLayoutError(
                    f'{seq_dir}: unexpected entry; {top} must hold only '
                    f'4-digit sequence folders (e.g. 0001)')
            for file in sorted(seq_dir.iterdir()):
                match = _OFFICIAL_FRAME.match(file.name)
                if not match:
                    raise STEPLayoutError(
                        f'{file}: unparsable name; expected a 6-digit frame '
                        f'number like 000000.png')
                entry = frames[int(seq_dir.name)].setdefault(
                    int(match.group(1)), [None, None])
                entry[slot] = file
    return frames


def _flattened_files(root: Path, split: str,
                     with_panoptic: bool) -> dict[int, dict[int, list]]:
    """{seq: {frame: [img, pan]}} of the flattened (Video K-Net) layout."""
    frames: dict[int, dict[int, list]] = defaultdict(dict)
    top = root / 'video_sequence' / split
    slots = {'leftImg8bit': 0, 'panoptic': 1}
    for file in sorted(top.iterdir()):
        if file.suffix != '.png':
            continue  # e.g. a README or .DS_Store next to the frames
        match = _FLAT_NAME.match(file.name)
        if not match:
            raise STEPLayoutError(
                f'{file}: unparsable name; expected <seq:06d>_<frame:06d>_'
                f'{{leftImg8bit,panoptic,depth}}.png')
        kind = match.group(3)
        if kind == 'depth' or (kind == 'panoptic' and not with_panoptic):
            continue
        entry = frames[int(match.group(1))].setdefault(
            int(match.group(2)), [None, None])
        entry[slots[kind]] = file
    return frames


def _expected_path(root: Path, layout: str, split: str, seq: int, frame: int,
                   panoptic: bool) -> Path:
    """Where a frame's image / panoptic map should be, for error messages."""
    if layout == 'official':
        kind = 'panoptic_maps' if panoptic else 'images'
        return root / kind / split / f'{seq:04d}' / f'{frame:06d}.png'
    suffix = 'panoptic' if panoptic else 'leftImg8bit'
    name = f'{seq:06d}_{frame:06d}_{suffix}.png'
    return root / 'video_sequence' / split / name


def list_step_videos(data_root: str | os.PathLike,
                     split: str,
                     layout: str = 'auto',
                     with_panoptic: bool = True) -> list[dict]:
    """mmdet video data list of a KITTI-STEP split (either layout).

    Raises :class:`STEPLayoutError` naming the file for a frame gap, an
    image without panoptic map (or the reverse), or an unparsable name.
    """
    root = Path(data_root)
    if layout == 'auto':
        layout = detect_layout(root, split)
    elif layout not in LAYOUTS:
        raise STEPLayoutError(f'layout={layout!r}: use "auto", "official" '
                              f'or "flattened"')
    elif layout == 'flattened' and not (root / 'video_sequence' /
                                        split).is_dir():
        raise STEPLayoutError(f'{root}/video_sequence/{split}: folder '
                              f'missing for layout="flattened"')
    lister = _official_files if layout == 'official' else _flattened_files
    files = lister(root, split, with_panoptic)
    if not files:
        raise STEPLayoutError(f'{root}: no frames found for split "{split}" '
                              f'({layout} layout)')
    data_list, img_id = [], 0
    for seq in sorted(files):
        frames = files[seq]
        numbers = sorted(frames)
        for expected, number in enumerate(numbers):
            if number != expected:
                missing = _expected_path(root, layout, split, seq, expected,
                                         False)
                raise STEPLayoutError(
                    f'{missing}: missing frame (sequence {seq} jumps to '
                    f'frame {number}); frames must be numbered 0..n-1')
        images = []
        for number in numbers:
            img, pan = frames[number]
            for path, is_pan in ((img, False), (pan, True)):
                if path is None and (with_panoptic or not is_pan):
                    other = pan if is_pan else img
                    missing = _expected_path(root, layout, split, seq,
                                             number, is_pan)
                    raise STEPLayoutError(f'{missing}: missing, but {other} '
                                          f'exists')
            info = dict(img_path=str(img), frame_id=number, video_id=seq,
                        img_id=img_id, instances=[])
            if with_panoptic:
                info['seg_map_path'] = str(pan)
            images.append(info)
            img_id += 1
        data_list.append(
            dict(video_id=seq, video_length=len(images), images=images))
    return data_list


@DATASETS.register_module()
class KITTISTEPDataset(BaseVideoDataset):
    """KITTI-STEP sequences as mmdet 3.3's video data list (spec §5.1).

    Args:
        split: ``train``/``val``/``test`` folder name.
        layout: ``'auto'`` (the one present), ``'official'`` or
            ``'flattened'``.
        with_panoptic: read panoptic maps (``False`` for the test split).
        Other arguments: ``mmengine.dataset.BaseDataset`` (``data_root``,
        ``pipeline``, ``test_mode``, ``metainfo`` ...). For other label sets
        (e.g. synthetic data) pass ``metainfo=dict(classes=...,
        thing_ids=...)``.

    No frame is filtered at build time (that would read every PNG): pairs
    without a thing instance are rejected in the pipeline, as the original
    loader does (spec §2.2).
    """

    METAINFO = dict(classes=CITYSCAPES_TRAINID_CLASSES,
                    thing_ids=STEP_THING_IDS)

    def __init__(self,
                 *args,
                 split: str = 'train',
                 layout: str = 'auto',
                 with_panoptic: bool = True,
                 **kwargs) -> None:
        self.split = split
        self.layout = layout
        self.with_panoptic = with_panoptic
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        """One entry per sequence: ``{video_id, video_length, images}``."""
        return list_step_videos(self.data_root, self.split, self.layout,
                                self.with_panoptic)

    def filter_data(self) -> list[dict]:
        """Keep every frame (see the class docstring)."""
        return self.data_list
