#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Write the COCO panoptic test-dev image info: the images of
``image_info_test-dev2017.json`` with the panoptic ``categories`` of
``panoptic_val2017.json`` (mmdet's CocoPanopticDataset needs both).

    python -u tools/gen_panoptic_test_info.py \
        [--image-info data/coco/annotations/image_info_test-dev2017.json] \
        [--categories data/coco/annotations/panoptic_val2017.json] \
        [--out data/coco/annotations/panoptic_image_info_test-dev2017.json]
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
from typing import List, Optional

ANN_DIR = 'data/coco/annotations'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='COCO panoptic test-dev image info for submission')
    parser.add_argument(
        '--image-info',
        default=osp.join(ANN_DIR, 'image_info_test-dev2017.json'),
        help='COCO test-dev image info (from image_info_test2017.zip)')
    parser.add_argument(
        '--categories',
        default=osp.join(ANN_DIR, 'panoptic_val2017.json'),
        help='a COCO panoptic json whose "categories" are copied '
        '(panoptic_val2017.json or panoptic_train2017.json)')
    parser.add_argument(
        '--out',
        default=osp.join(ANN_DIR, 'panoptic_image_info_test-dev2017.json'),
        help='output json')
    return parser.parse_args(argv)


def _load(path: str, what: str, hint: str) -> dict:
    """Read a json file or stop with a message that says where to get it."""
    if not osp.isfile(path):
        raise SystemExit(f'gen_panoptic_test_info: {what} not found: {path}\n'
                         f'  {hint}')
    with open(path, encoding='utf-8') as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise SystemExit(f'gen_panoptic_test_info: {path} is not valid '
                             f'json ({err})') from err


def build_test_info(image_info: dict, panoptic: dict) -> dict:
    """The image info with the panoptic categories (no annotations)."""
    categories = panoptic.get('categories')
    if not categories or not all('isthing' in c for c in categories):
        raise SystemExit('gen_panoptic_test_info: the --categories file has '
                         'no panoptic categories (each with "isthing"); '
                         'pass panoptic_val2017.json')
    if 'images' not in image_info:
        raise SystemExit('gen_panoptic_test_info: the --image-info file has '
                         'no "images"; pass image_info_test-dev2017.json')
    out = {k: v for k, v in image_info.items() if k != 'annotations'}
    out['categories'] = categories
    return out


def write_json_atomic(data: dict, path: str) -> None:
    """Write to a temporary file next to ``path``, then rename."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp_', suffix='.json', dir=folder)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    image_info = _load(
        args.image_info, 'COCO test-dev image info',
        'download http://images.cocodataset.org/annotations/'
        'image_info_test2017.zip and unzip it into data/coco/ '
        '(or pass --image-info)')
    panoptic = _load(
        args.categories, 'COCO panoptic annotations (for the categories)',
        'download http://images.cocodataset.org/annotations/'
        'panoptic_annotations_trainval2017.zip (see DATASET.md) or pass '
        '--categories')
    info = build_test_info(image_info, panoptic)
    write_json_atomic(info, args.out)
    things = sum(1 for c in info['categories'] if c['isthing'])
    print(f'wrote {args.out}: {len(info["images"])} images, '
          f'{len(info["categories"])} categories ({things} things, '
          f'{len(info["categories"]) - things} stuff)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
