# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""COCO instance + COCO panoptic writer (one image set, both annotation types).

Layout under ``root`` (= ``<out>/coco``)::

    {train,val}/000000.png ...                  RGB images
    annotations/instances_{train,val}.json      things only; compressed RLE
                                                (uncompressed RLE for crowd, as COCO)
    annotations/panoptic_{train,val}.json       things first, then stuff
    annotations/panoptic_{train,val}/000000.png id = R + 256 G + 256^2 B, 0 = VOID
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import category_id, class_colour
from ..fileio import mask_bbox, rle_compressed, rle_uncompressed, write_json, write_png
from ..scene import SceneConfig, render_image
from .common import id2rgb, progress, sample_rng

SPLITS = ('train', 'val')


def _info(split: str) -> dict:
    """Static COCO ``info`` block (no dates, so files stay byte-identical)."""
    return {'description': f'knet synthetic shapes, split {split}', 'version': '1.0',
            'url': '', 'contributor': 'knet.datasets.synthetic', 'year': 2024,
            'date_created': ''}


def write_coco(root: Path, seed: int, cfg: SceneConfig, num_train: int, num_val: int,
               show_progress: bool = True) -> None:
    """Render the image scenes and write images, instance json and panoptic json + PNGs."""
    root = Path(root)
    instance_cats = [{'id': category_id(n), 'name': n, 'supercategory': 'shape'}
                     for n in cfg.thing_classes]
    panoptic_cats = ([{'id': category_id(n), 'name': n, 'supercategory': 'shape', 'isthing': 1,
                       'color': list(class_colour(n))} for n in cfg.thing_classes]
                     + [{'id': category_id(n), 'name': n, 'supercategory': 'stuff', 'isthing': 0,
                         'color': list(class_colour(n))} for n in cfg.stuff_classes])
    licenses = [{'id': 1, 'name': 'Apache-2.0', 'url': ''}]
    for split, num in zip(SPLITS, (num_train, num_val)):
        images, instances, panoptic = [], [], []
        for i in progress(num, f'coco/{split}', show_progress):
            scene = render_image(sample_rng(seed, 'coco', split, i), cfg)
            file_name = f'{i:06d}.png'
            image_id = i + 1
            write_png(root / split / file_name, scene.image)
            images.append({'id': image_id, 'file_name': file_name, 'height': cfg.height,
                           'width': cfg.width, 'license': 1})
            pan = np.zeros((cfg.height, cfg.width), np.int64)
            segments_info = []
            for seg, mask in scene.iter_masks():
                cat = category_id(seg.name)
                bbox, area = mask_bbox(mask), int(mask.sum())
                seg_id = cat * 1000 + seg.track_id  # unique within the image; 0 stays VOID
                pan[mask] = seg_id
                segments_info.append({'id': seg_id, 'category_id': cat, 'iscrowd': int(seg.iscrowd),
                                      'bbox': bbox, 'area': area})
                if seg.isthing:
                    rle = rle_uncompressed(mask) if seg.iscrowd else rle_compressed(mask)
                    instances.append({'id': len(instances) + 1, 'image_id': image_id,
                                      'category_id': cat, 'segmentation': rle, 'area': area,
                                      'bbox': bbox, 'iscrowd': int(seg.iscrowd)})
            write_png(root / 'annotations' / f'panoptic_{split}' / file_name, id2rgb(pan))
            panoptic.append({'image_id': image_id, 'file_name': file_name,
                             'segments_info': segments_info})
        write_json(root / 'annotations' / f'instances_{split}.json',
                   {'info': _info(split), 'licenses': licenses, 'images': images,
                    'annotations': instances, 'categories': instance_cats})
        write_json(root / 'annotations' / f'panoptic_{split}.json',
                   {'info': _info(split), 'licenses': licenses, 'images': images,
                    'annotations': panoptic, 'categories': panoptic_cats})
