# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Cityscapes-STEP image dataset for Video K-Net pre-training (spec §5.2).

Layout under ``data_root`` (the standard Cityscapes tree)::

    leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png
    gtFine/{split}/{city}/{stem}_gtFine_labelTrainIds.png
    gtFine/{split}/{city}/{stem}_gtFine_instanceTrainIds.png

with ``stem = {city}_{seq:06d}_{frame:06d}``.

``labelTrainIds`` (cityscapesScripts ``csCreateTrainIdLabelImgs``) is the
semantic map (trainIds, 255 void). ``instanceTrainIds`` holds
``trainId * 1000 + k`` on instance pixels and the trainId elsewhere; only
values >= 10000 of the thing trainIds are instances (spec §5.2), so a
thing region without instance id is not an instance here (unlike
KITTI-STEP's crowd pseudo-instance).
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import mmcv
import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from .kitti_step import (CITYSCAPES_TRAINID_CLASSES, STEP_THING_IDS,
                         STEPLayoutError)

_IMAGE_NAME = re.compile(r'^(.+)_(\d{6})_(\d{6})_leftImg8bit\.png$')
#: Smallest ``instanceTrainIds`` value of an instance pixel (spec §5.2).
MIN_INSTANCE_VALUE = 10000
INSTANCE_DIVISOR = 1000


def decode_cityscapes_step(semantic: np.ndarray,
                           instance: np.ndarray,
                           thing_ids: Sequence[int] = STEP_THING_IDS,
                           source: str = '<array>') -> dict:
    """Targets of a labelTrainIds + instanceTrainIds pair (spec §5.2).

    Returns ``sem_seg`` (H,W int64), ``masks`` (N,H,W bool), ``labels``
    (N, index in ``thing_ids``) and ``instance_ids`` (N, the raw
    ``trainId * 1000 + k`` values), sorted by id.
    """
    if semantic.ndim != 2 or instance.shape != semantic.shape:
        raise STEPLayoutError(
            f'{source}: need single-channel labelTrainIds and '
            f'instanceTrainIds maps of one size; got {semantic.shape} and '
            f'{instance.shape}')
    instance = instance.astype(np.int64)
    classes = instance // INSTANCE_DIVISOR
    keep = (instance >= MIN_INSTANCE_VALUE) & np.isin(
        classes, np.asarray(thing_ids, np.int64))
    ids, inverse = np.unique(instance[keep], return_inverse=True)
    masks = np.zeros((len(ids), ) + semantic.shape, bool)
    rows, cols = np.nonzero(keep)
    masks[inverse.ravel(), rows, cols] = True
    to_label = {int(t): i for i, t in enumerate(thing_ids)}
    labels = np.array([to_label[int(i) // INSTANCE_DIVISOR] for i in ids],
                      np.int64)
    return dict(sem_seg=semantic.astype(np.int64), masks=masks,
                labels=labels, instance_ids=ids.astype(np.int64))


def _read_gray(path: str | os.PathLike) -> np.ndarray:
    """A single-channel 8/16-bit PNG as an array; errors name the file."""
    try:
        array = mmcv.imread(str(path), flag='unchanged', backend='cv2')
    except Exception as err:  # noqa: BLE001  (re-raised with the path)
        raise STEPLayoutError(f'{path}: cannot read PNG: {err}') from err
    if array is None or array.ndim != 2:
        raise STEPLayoutError(f'{path}: expected a single-channel PNG')
    return array


def read_cityscapes_step(seg_map_path: str | os.PathLike,
                         ins_map_path: str | os.PathLike,
                         thing_ids: Sequence[int] = STEP_THING_IDS) -> dict:
    """Read and decode one frame's labelTrainIds + instanceTrainIds PNGs."""
    return decode_cityscapes_step(
        _read_gray(seg_map_path), _read_gray(ins_map_path), thing_ids,
        source=str(ins_map_path))


def list_cityscapes_step(data_root: str | os.PathLike,
                         split: str) -> list[dict]:
    """Image data list ``{img_path, seg_map_path, ins_map_path, ...}``."""
    root = Path(data_root)
    image_top = root / 'leftImg8bit' / split
    if not image_top.is_dir():
        raise STEPLayoutError(
            f'{image_top}: folder missing; Cityscapes-STEP expects '
            f'leftImg8bit/{split}/<city>/<city>_<seq>_<frame>_leftImg8bit.png'
            f' and gtFine/{split}/<city>/..._gtFine_{{labelTrainIds,'
            f'instanceTrainIds}}.png under data_root')
    data_list = []
    for city in sorted(image_top.iterdir()):
        if not city.is_dir():
            raise STEPLayoutError(f'{city}: unexpected entry; {image_top} '
                                  f'must hold only city folders')
        for image in sorted(city.iterdir()):
            match = _IMAGE_NAME.match(image.name)
            if not match or match.group(1) != city.name:
                raise STEPLayoutError(
                    f'{image}: unparsable name; expected '
                    f'{city.name}_<seq:06d>_<frame:06d>_leftImg8bit.png')
            stem = image.name[:-len('_leftImg8bit.png')]
            gt = root / 'gtFine' / split / city.name
            seg = gt / f'{stem}_gtFine_labelTrainIds.png'
            ins = gt / f'{stem}_gtFine_instanceTrainIds.png'
            for path, how in (
                    (seg, 'cityscapesScripts csCreateTrainIdLabelImgs'),
                    (ins, 'an instance-trainId converter (spec §5.2)')):
                if not path.is_file():
                    raise STEPLayoutError(f'{path}: missing for {image}; '
                                          f'create it with {how}')
            data_list.append(
                dict(img_path=str(image), seg_map_path=str(seg),
                     ins_map_path=str(ins), img_id=stem,
                     seq_id=int(match.group(2)),
                     frame_id=int(match.group(3)), instances=[]))
    if not data_list:
        raise STEPLayoutError(f'{image_top}: no images found')
    return data_list


@DATASETS.register_module()
class CityscapesSTEPDataset(BaseDetDataset):
    """Cityscapes frames with trainId semantic + thing instance maps (§5.2).

    Args:
        split: ``train``/``val`` folder name.
        Other arguments: ``mmdet.datasets.BaseDetDataset``.

    Frames without a thing instance are rejected in the pipeline (the
    original loader does so at load time), not filtered here.
    """

    METAINFO = dict(classes=CITYSCAPES_TRAINID_CLASSES,
                    thing_ids=STEP_THING_IDS)

    def __init__(self, *args, split: str = 'train', **kwargs) -> None:
        self.split = split
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        """One entry per Cityscapes frame."""
        return list_cityscapes_step(self.data_root, self.split)
