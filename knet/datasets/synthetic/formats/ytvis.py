# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""YouTube-VIS-style video instance segmentation writer (two json flavours).

Layout under ``root`` (= ``<out>/ytvis``), as in spec §5.5::

    {train,valid}/JPEGImages/<video>/{frame:05d}.png    RGB frames (PNG)
    annotations/{train,valid}.json                      official format
    annotations/youtube_vis_2019_{train,valid}.json     CocoVID format

The official format has one annotation per track with per-frame lists
``segmentations`` (uncompressed RLE), ``bboxes`` and ``areas`` (None where the
track is absent). The CocoVID copy (what mmtrack's ``youtubevis2coco.py``
writes, and what mmdet's ``YouTubeVISDataset`` reads) has one annotation per
frame with a global 1-based ``instance_id`` equal to the official track id.
Unlike the real data, ``valid`` is annotated, so that mmdet's
``YouTubeVISMetric`` evaluates locally. Things only, no crowd.
"""
from __future__ import annotations

from pathlib import Path

from ..classes import category_id
from ..fileio import mask_bbox, rle_uncompressed, write_json, write_png
from ..scene import SceneConfig, render_video
from .common import progress, sample_rng

SPLITS = ('train', 'valid')
LICENSES = [{'id': 1, 'name': 'Apache-2.0', 'url': ''}]


def _video(root: Path, split: str, name: str, video_id: int, frames: list,
           tracks: list[dict], images: list[dict], anns: list[dict]) -> dict:
    """Write one clip's frames; append its tracks / images / annotations."""
    length = len(frames)
    height, width = frames[0].image.shape[:2]
    file_names = [f'{name}/{t:05d}.png' for t in range(length)]
    per_track: dict[int, dict] = {}
    for t, scene in enumerate(frames):
        write_png(root / split / 'JPEGImages' / file_names[t], scene.image)
        image_id = len(images) + 1
        images.append({
            'id': image_id,
            'video_id': video_id,
            'frame_id': t,
            'file_name': file_names[t],
            'height': height,
            'width': width
        })
        for seg, mask in scene.iter_masks():
            if not seg.isthing:
                continue
            if seg.track_id not in per_track:
                per_track[seg.track_id] = {
                    'id': len(tracks) + len(per_track) + 1,
                    'video_id': video_id,
                    'category_id': category_id(seg.name),
                    'iscrowd': 0,
                    'segmentations': [None] * length,
                    'bboxes': [None] * length,
                    'areas': [None] * length,
                    'width': width,
                    'height': height,
                    'length': 1
                }
            track = per_track[seg.track_id]
            rle, bbox = rle_uncompressed(mask), mask_bbox(mask)
            area = int(mask.sum())
            track['segmentations'][t] = rle
            track['bboxes'][t] = bbox
            track['areas'][t] = area
            anns.append({
                'id': len(anns) + 1,
                'video_id': video_id,
                'image_id': image_id,
                'category_id': track['category_id'],
                'instance_id': track['id'],
                'bbox': bbox,
                'segmentation': rle,
                'area': area,
                'iscrowd': 0
            })
    tracks.extend(sorted(per_track.values(), key=lambda tr: tr['id']))
    return {
        'id': video_id,
        'width': width,
        'height': height,
        'length': length,
        'file_names': file_names,
        'license': 1,
        'coco_url': '',
        'flickr_url': '',
        'date_captured': ''
    }


def write_ytvis(root: Path,
                seed: int,
                cfg: SceneConfig,
                num_train: int,
                num_val: int,
                num_frames: int,
                show_progress: bool = True) -> None:
    """Render clips; write YouTube-VIS frames and both json flavours."""
    root = Path(root)
    categories = [{
        'id': category_id(n),
        'name': n,
        'supercategory': 'shape'
    } for n in cfg.thing_classes]
    first = 0
    for split, num in zip(SPLITS, (num_train, num_val)):
        videos, tracks, images, anns = [], [], [], []
        for i in progress(num, f'ytvis/{split}', show_progress):
            frames = render_video(
                sample_rng(seed, 'ytvis', split, i), cfg, num_frames)
            videos.append(
                _video(root, split, f'video{first + i:04d}', i + 1, frames,
                       tracks, images, anns))
        first += num
        info = {
            'description': f'knet synthetic YouTube-VIS-style {split}',
            'version': '1.0',
            'year': 2024,
            'contributor': 'knet.datasets.synthetic',
            'date_created': ''
        }
        common = {'info': info, 'licenses': LICENSES, 'categories': categories}
        write_json(root / 'annotations' / f'{split}.json',
                   dict(common, videos=videos, annotations=tracks))
        coco_videos = [{
            'id': v['id'],
            'name': v['file_names'][0].split('/')[0]
        } for v in videos]
        write_json(
            root / 'annotations' / f'youtube_vis_2019_{split}.json',
            dict(common, videos=coco_videos, images=images, annotations=anns))
