# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VIP-Seg (720p) video panoptic dataset and loader (spec §5.4).

Layout under ``data_root`` (the 720p version: short side 720)::

    {split}.txt                  one video folder name per line
    images/<video>/<frame>.jpg
    panomasks/<video>/<frame>.png

``video_id`` is the index of the video in ``{split}.txt`` and ``frame_id``
the index of the frame in the sorted listing (both 0-based); the image and
mask stems must match one to one.

Raw panomask values (16-bit PNG, official VIP-Seg convention): 0 = void,
stuff pixel = ``c + 1`` (``c`` the 0-based class id, <= 124), thing pixel =
``(c + 1) * 100 + k`` (``k`` = instance index from 0). Value 200 is an
annotation error (VIPSeg-Dataset issue 1: it should be 0): it is void here,
as the dataset's maintainers say; the official 720p/panoptic converter
merges it into class 1 "ceiling" instead, so the official GT json / RGB
files differ from this loader on those pixels. Dataset space = the 0-based
class id (0..123, 255 void); every thing segment (also ``k = 0``) is an
instance with id = its raw value (unique in a frame, stable over a video).
"""
from __future__ import annotations

import os
from pathlib import Path

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets import BaseVideoDataset
from mmdet.registry import DATASETS, TRANSFORMS

from ..evaluation.video_io import VIPSEG_NUM_CLASSES, VIPSEG_THING_IDS
from .label_maps import VOID, ModelLabelMap
from .step_loading import check_label_space, fill_targets

#: VIP-Seg's 124 classes in its own (0-based) order.
VIPSEG_CLASSES: tuple[str, ...] = (
    'wall', 'ceiling', 'door', 'stair', 'ladder', 'escalator',
    'playground_slide', 'handrail_or_fence', 'window', 'rail', 'goal',
    'pillar', 'pole', 'floor', 'ground', 'grass', 'sand', 'athletic_field',
    'road', 'path', 'crosswalk', 'building', 'house', 'bridge', 'tower',
    'windmill', 'well_or_well_lid', 'other_construction', 'sky', 'mountain',
    'stone', 'wood', 'ice', 'snowfield', 'grandstand', 'sea', 'river', 'lake',
    'waterfall', 'water', 'billboard_or_bulletin_board', 'sculpture',
    'pipeline', 'flag', 'parasol_or_umbrella', 'cushion_or_carpet', 'tent',
    'roadblock', 'car', 'bus', 'truck', 'bicycle', 'motorcycle',
    'wheeled_machine', 'ship_or_boat', 'raft', 'airplane', 'tyre',
    'traffic_light', 'lamp', 'person', 'cat', 'dog', 'horse', 'cattle',
    'other_animal', 'tree', 'flower', 'other_plant', 'toy', 'ball_net',
    'backboard', 'skateboard', 'bat', 'ball',
    'cupboard_or_showcase_or_storage_rack', 'box',
    'traveling_case_or_trolley_case', 'basket', 'bag_or_package',
    'trash_can', 'cage', 'plate', 'tub_or_bowl_or_pot', 'bottle_or_cup',
    'barrel', 'fishbowl', 'bed', 'pillow', 'table_or_desk', 'chair_or_seat',
    'bench', 'sofa', 'shelf', 'bathtub', 'gun', 'commode', 'roaster',
    'other_machine', 'refrigerator', 'washing_machine', 'microwave_oven',
    'fan', 'curtain', 'textiles', 'clothes', 'painting_or_poster', 'mirror',
    'flower_pot_or_vase', 'clock', 'book', 'tool', 'blackboard', 'tissue',
    'screen_or_television', 'computer', 'printer', 'mobile_phone', 'keyboard',
    'other_electronic_product', 'fruit', 'food', 'instrument', 'train')
assert len(VIPSEG_CLASSES) == VIPSEG_NUM_CLASSES
#: The annotation-error value mapped to void (VIPSeg-Dataset issue 1).
VIPSEG_BAD_VALUE = 200
#: Thing pixels hold ``(class + 1) * 100 + k``.
VIPSEG_THING_DIVISOR = 100


class VIPSegLayoutError(ValueError):
    """The VIP-Seg folder or a panomask does not match the expected layout."""


def _raw_class_lut() -> np.ndarray:
    """Raw panomask value -> dataset class id; 255 void, -1 invalid."""
    size = (VIPSEG_NUM_CLASSES + 1) * VIPSEG_THING_DIVISOR
    lut = np.full(size, -1, np.int64)
    lut[0] = VOID
    stuff = np.setdiff1d(np.arange(VIPSEG_NUM_CLASSES), VIPSEG_THING_IDS)
    lut[stuff + 1] = stuff
    for c in VIPSEG_THING_IDS:
        base = (c + 1) * VIPSEG_THING_DIVISOR
        lut[base:base + VIPSEG_THING_DIVISOR] = c
    lut[VIPSEG_BAD_VALUE] = VOID
    return lut


_RAW_CLASS_LUT = _raw_class_lut()


def decode_vipseg_panomask(raw: np.ndarray,
                           source: str = '<array>') -> dict:
    """Targets of a raw VIP-Seg panomask (dataset space).

    Returns ``sem_seg`` (H,W int64 class ids, 255 void), ``masks`` (N,H,W
    bool), ``labels`` (N, index in ``VIPSEG_THING_IDS`` = model label),
    ``instance_ids`` (N, the raw values) and ``raw_instances`` (N, ``k +
    1``: the eval tools' instance numbers, so 0 stays "no instance").
    Instances are sorted by raw value. ``source`` names the file in errors.
    """
    if raw.ndim != 2:
        raise VIPSegLayoutError(
            f'{source}: a VIP-Seg panomask must be a single-channel (16-bit) '
            f'PNG; got shape {raw.shape}')
    raw = raw.astype(np.int64)
    outside = (raw < 0) | (raw >= _RAW_CLASS_LUT.size)
    sem = _RAW_CLASS_LUT[np.where(outside, 0, raw)]
    bad = outside | (sem < 0)
    if bad.any():
        raise VIPSegLayoutError(
            f'{source}: unknown VIP-Seg value(s) '
            f'{np.unique(raw[bad])[:10].tolist()}; expected 0 (void), '
            f'class+1 for stuff or (class+1)*100+k for things (the raw 720p '
            f'panomasks, not panomasksRGB)')
    # stuff values go up to 124 (> 100), thing values start at 300
    is_thing = (raw > VIPSEG_NUM_CLASSES) & (sem != VOID)
    ids, inverse = np.unique(raw[is_thing], return_inverse=True)
    masks = np.zeros((len(ids), ) + raw.shape, bool)
    rows, cols = np.nonzero(is_thing)
    masks[inverse.ravel(), rows, cols] = True
    to_label = {c: i for i, c in enumerate(VIPSEG_THING_IDS)}
    labels = np.array(
        [to_label[int(i) // VIPSEG_THING_DIVISOR - 1] for i in ids],
        np.int64)
    return dict(sem_seg=sem, masks=masks, labels=labels,
                instance_ids=ids.astype(np.int64),
                raw_instances=ids.astype(np.int64) % VIPSEG_THING_DIVISOR + 1)


def read_vipseg_panomask(path: str | os.PathLike) -> dict:
    """Read and decode a VIP-Seg panomask PNG (errors name the file)."""
    try:
        raw = mmcv.imread(str(path), flag='unchanged', backend='cv2')
    except Exception as err:  # noqa: BLE001  (re-raised with the path)
        raise VIPSegLayoutError(f'{path}: cannot read PNG: {err}') from err
    if raw is None:
        raise VIPSegLayoutError(f'{path}: missing or not an image')
    return decode_vipseg_panomask(raw, source=str(path))


def _sorted_stems(folder: Path, suffix: str) -> dict[str, Path]:
    """``{stem: path}`` of the ``suffix`` files of a folder, sorted."""
    return {p.name[:-len(suffix)]: p for p in sorted(folder.iterdir())
            if p.name.endswith(suffix)}


def list_vipseg_videos(data_root: str | os.PathLike,
                       split: str,
                       with_panoptic: bool = True,
                       img_suffix: str = '.jpg',
                       seg_suffix: str = '.png') -> list[dict]:
    """mmdet video data list of a VIP-Seg split (errors name the file)."""
    root = Path(data_root)
    split_file = root / f'{split}.txt'
    if not split_file.is_file():
        raise VIPSegLayoutError(
            f'{split_file}: split file missing; VIP-Seg expects {split}.txt '
            f'(one video folder name per line), images/<video>/*{img_suffix} '
            f'and panomasks/<video>/*{seg_suffix} under data_root')
    videos = [line.strip() for line in split_file.read_text().splitlines()]
    videos = [v for v in videos if v]
    if not videos:
        raise VIPSegLayoutError(f'{split_file}: lists no video')
    data_list, img_id = [], 0
    for video_id, video in enumerate(videos):
        img_dir = root / 'images' / video
        if not img_dir.is_dir():
            raise VIPSegLayoutError(f'{img_dir}: folder missing (video '
                                    f'"{video}" listed in {split_file})')
        images = _sorted_stems(img_dir, img_suffix)
        if not images:
            raise VIPSegLayoutError(f'{img_dir}: no *{img_suffix} frames')
        masks: dict[str, Path] = {}
        if with_panoptic:
            seg_dir = root / 'panomasks' / video
            if not seg_dir.is_dir():
                raise VIPSegLayoutError(
                    f'{seg_dir}: folder missing (video "{video}" listed in '
                    f'{split_file}); for unlabelled data set '
                    f'with_panoptic=False')
            masks = _sorted_stems(seg_dir, seg_suffix)
            for stem in sorted(set(images) ^ set(masks)):
                missing = (seg_dir / f'{stem}{seg_suffix}' if stem in images
                           else img_dir / f'{stem}{img_suffix}')
                present = images.get(stem) or masks.get(stem)
                raise VIPSegLayoutError(f'{missing}: missing, but {present} '
                                        f'exists (stems must match)')
        frames = []
        for frame_id, stem in enumerate(images):
            info = dict(img_path=str(images[stem]), frame_id=frame_id,
                        video_id=video_id, video_name=video, img_id=img_id,
                        instances=[])
            if with_panoptic:
                info['seg_map_path'] = str(masks[stem])
            frames.append(info)
            img_id += 1
        data_list.append(dict(video_id=video_id, video_name=video,
                              video_length=len(frames), images=frames))
    return data_list


@DATASETS.register_module()
class VIPSegDataset(BaseVideoDataset):
    """VIP-Seg 720p videos as mmdet 3.3's video data list (spec §5.4).

    Args:
        split: name of the split file ``{split}.txt`` under ``data_root``.
        with_panoptic: read ``panomasks`` (``False`` for the test split).
        img_suffix, seg_suffix: file endings of frames and masks.
        Other arguments: ``mmengine.dataset.BaseDataset``.

    Frames without thing instances are not filtered at build time (that
    would read every PNG); the pair pipeline rejects them.
    """

    METAINFO = dict(classes=VIPSEG_CLASSES, thing_ids=VIPSEG_THING_IDS)

    def __init__(self,
                 *args,
                 split: str = 'train',
                 with_panoptic: bool = True,
                 img_suffix: str = '.jpg',
                 seg_suffix: str = '.png',
                 **kwargs) -> None:
        self.split = split
        self.with_panoptic = with_panoptic
        self.img_suffix = img_suffix
        self.seg_suffix = seg_suffix
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        """One entry per video: ``{video_id, video_length, images}``."""
        return list_vipseg_videos(self.data_root, self.split,
                                  self.with_panoptic, self.img_suffix,
                                  self.seg_suffix)

    def filter_data(self) -> list[dict]:
        """Keep every frame (see the class docstring)."""
        return self.data_list


@TRANSFORMS.register_module()
class LoadVIPSegPanopticAnnotations(BaseTransform):
    """VIP-Seg raw panomask -> mmdet fields (value 200 is void).

    Args:
        label_space: ``'model'`` (default; things first, model labels
            ``0..57`` then stuff ``58..123``) or ``'dataset'`` (0-based
            VIP-Seg class ids) for ``gt_seg_map`` / ``gt_panoptic_map``.
        with_panoptic_gt: also write ``gt_panoptic_map`` (int64, class +
            (k + 1) * 1000, void class 255) for the video metrics.

    ``gt_instances_ids`` are the raw values ``(c + 1) * 100 + k``.
    """

    def __init__(self, label_space: str = 'model',
                 with_panoptic_gt: bool = False) -> None:
        self.label_space = check_label_space(label_space)
        self.with_panoptic_gt = with_panoptic_gt
        self.label_map = (ModelLabelMap(VIPSEG_NUM_CLASSES, VIPSEG_THING_IDS)
                          if label_space == 'model' else None)

    def transform(self, results: dict) -> dict:
        """Decode ``results['seg_map_path']`` into the ``gt_*`` fields."""
        targets = read_vipseg_panomask(results['seg_map_path'])
        raw = targets['raw_instances'] if self.with_panoptic_gt else None
        return fill_targets(results, targets, self.label_map, raw)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'label_space={self.label_space!r}, '
                f'with_panoptic_gt={self.with_panoptic_gt})')
