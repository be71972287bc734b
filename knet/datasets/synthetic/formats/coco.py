# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""COCO instance + COCO panoptic writer (one image set, both annotations).

Layout under ``root`` (= ``<out>/coco``)::

    {train,val}/000000.png, ...               RGB images
    annotations/instances_{train,val}.json    things only, compressed RLE
                                              (uncompressed for crowd)
    annotations/panoptic_{train,val}.json     things first, then stuff
    annotations/panoptic_{train,val}/*.png    id = R + 256 G + 256^2 B,
                                              0 = VOID

Panoptic segment ids are ``category_id * 1000 + k`` (k = 0 for stuff).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import category_id, class_colour
from ..fileio import (mask_bbox, rle_compressed, rle_uncompressed, write_json,
                      write_png)
from ..scene import SceneConfig, render_image
from .common import id2rgb, progress, sample_rng

SPLITS = ('train', 'val')
LICENSES = [{'id': 1, 'name': 'Apache-2.0', 'url': ''}]


def _info(split: str) -> dict:
    """Static COCO ``info`` block (no dates, so files stay byte-identical)."""
    return {
        'description': f'knet synthetic shapes, split {split}',
        'version': '1.0',
        'url': '',
        'contributor': 'knet.datasets.synthetic',
        'year': 2024,
        'date_created': ''
    }


def _categories(cfg: SceneConfig) -> tuple[list[dict], list[dict]]:
    """Instance categories (things) and panoptic ones (things, then stuff)."""
    instance, panoptic = [], []
    for isthing, names in ((1, cfg.thing_classes), (0, cfg.stuff_classes)):
        for name in names:
            cat = {
                'id': category_id(name),
                'name': name,
                'supercategory': 'shape' if isthing else 'stuff'
            }
            if isthing:
                instance.append(dict(cat))
            panoptic.append(
                dict(cat, isthing=isthing, color=list(class_colour(name))))
    return instance, panoptic


def write_coco(root: Path,
               seed: int,
               cfg: SceneConfig,
               num_train: int,
               num_val: int,
               show_progress: bool = True) -> None:
    """Render image scenes; write images, instance json, panoptic json/PNG."""
    root = Path(root)
    ann_dir = root / 'annotations'
    instance_cats, panoptic_cats = _categories(cfg)
    for split, num in zip(SPLITS, (num_train, num_val)):
        images, instances, panoptic = [], [], []
        for i in progress(num, f'coco/{split}', show_progress):
            scene = render_image(sample_rng(seed, 'coco', split, i), cfg)
            file_name = f'{i:06d}.png'
            image_id = i + 1
            write_png(root / split / file_name, scene.image)
            images.append({
                'id': image_id,
                'file_name': file_name,
                'height': cfg.height,
                'width': cfg.width,
                'license': 1
            })
            pan = np.zeros((cfg.height, cfg.width), np.int64)
            segments_info = []
            for seg, mask in scene.iter_masks():
                cat = category_id(seg.name)
                bbox, area = mask_bbox(mask), int(mask.sum())
                seg_id = cat * 1000 + seg.track_id  # unique; 0 stays VOID
                pan[mask] = seg_id
                segments_info.append({
                    'id': seg_id,
                    'category_id': cat,
                    'iscrowd': int(seg.iscrowd),
                    'bbox': bbox,
                    'area': area
                })
                if not seg.isthing:
                    continue
                rle = (
                    rle_uncompressed(mask)
                    if seg.iscrowd else rle_compressed(mask))
                instances.append({
                    'id': len(instances) + 1,
                    'image_id': image_id,
                    'category_id': cat,
                    'segmentation': rle,
                    'area': area,
                    'bbox': bbox,
                    'iscrowd': int(seg.iscrowd)
                })
            write_png(ann_dir / f'panoptic_{split}' / file_name, id2rgb(pan))
            panoptic.append({
                'image_id': image_id,
                'file_name': file_name,
                'segments_info': segments_info
            })
        common = {'info': _info(split), 'licenses': LICENSES, 'images': images}
        write_json(
            ann_dir / f'instances_{split}.json',
            dict(common, annotations=instances, categories=instance_cats))
        write_json(
            ann_dir / f'panoptic_{split}.json',
            dict(common, annotations=panoptic, categories=panoptic_cats))
