# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""YouTube-VIS-style video instance segmentation writer (official json + CocoVID json).

Layout under ``root`` (= ``<out>/ytvis``), mirroring spec §5.5::

    {train,valid}/JPEGImages/<video>/{frame:05d}.png   RGB frames (PNG despite the folder name)
    annotations/{train,valid}.json                     official YouTube-VIS format: per-track
                                                       lists ``segmentations`` (uncompressed RLE),
                                                       ``bboxes``, ``areas`` with None where absent
    annotations/youtube_vis_2019_{train,valid}.json    the same in the CocoVID format that
                                                       mmdet's ``YouTubeVISDataset`` reads
                                                       (what mmtrack's youtubevis2coco.py writes)

Unlike the real valid split, ``valid`` carries annotations so that mmdet's
``YouTubeVISMetric`` can evaluate locally. Things only (no crowd).
"""
from __future__ import annotations

from pathlib import Path

from ..classes import category_id
from ..fileio import mask_bbox, rle_uncompressed, write_json, write_png
from ..scene import SceneConfig, render_video
from .common import progress, sample_rng

SPLITS = ('train', 'valid')


def write_ytvis(root: Path, seed: int, cfg: SceneConfig, num_train: int, num_val: int,
                num_frames: int, show_progress: bool = True) -> None:
    """Render video clips and write YouTube-VIS frames plus both json flavours."""
    root = Path(root)
    categories = [{'id': category_id(n), 'name': n, 'supercategory': 'shape'}
                  for n in cfg.thing_classes]
    h, w = cfg.height, cfg.width
    first = 0
    for split, num in zip(SPLITS, (num_train, num_val)):
        videos, tracks_json = [], []
        vid_videos, vid_images, vid_anns = [], [], []
        for i in progress(num, f'ytvis/{split}', show_progress):
            name = f'video{first + i:04d}'
            video_id = i + 1
            frames = render_video(sample_rng(seed, 'ytvis', split, i), cfg, num_frames)
            file_names = [f'{name}/{t:05d}.png' for t in range(num_frames)]
            videos.append({'id': video_id, 'width': w, 'height': h, 'length': num_frames,
                           'file_names': file_names, 'license': 1, 'coco_url': '',
                           'flickr_url': '', 'date_captured': ''})
            vid_videos.append({'id': video_id, 'name': name})
            per_track: dict[int, dict] = {}
            for t, scene in enumerate(frames):
                write_png(root / split / 'JPEGImages' / file_names[t], scene.image)
                image_id = len(vid_images) + 1
                vid_images.append({'id': image_id, 'video_id': video_id, 'frame_id': t,
                                   'file_name': file_names[t], 'height': h, 'width': w})
                for seg, mask in scene.iter_masks():
                    if not seg.isthing:
                        continue
                    track = per_track.setdefault(seg.track_id, {
                        'category_id': category_id(seg.name), 'instance_id': None,
                        'segmentations': [None] * num_frames, 'bboxes': [None] * num_frames,
                        'areas': [None] * num_frames})
                    if track['instance_id'] is None:
                        track['instance_id'] = len(tracks_json) + len(per_track)
                    rle, bbox, area = rle_uncompressed(mask), mask_bbox(mask), int(mask.sum())
                    track['segmentations'][t], track['bboxes'][t], track['areas'][t] = rle, bbox, area
                    vid_anns.append({'id': len(vid_anns) + 1, 'video_id': video_id,
                                     'image_id': image_id, 'category_id': track['category_id'],
                                     'instance_id': track['instance_id'], 'bbox': bbox,
                                     'segmentation': rle, 'area': area, 'iscrowd': 0})
            for track_id in sorted(per_track, key=lambda k: per_track[k]['instance_id']):
                track = per_track[track_id]
                tracks_json.append({'id': track['instance_id'], 'video_id': video_id,
                                    'category_id': track['category_id'], 'iscrowd': 0,
                                    'segmentations': track['segmentations'],
                                    'bboxes': track['bboxes'], 'areas': track['areas'],
                                    'width': w, 'height': h, 'length': 1})
        first += num
        info = {'description': f'knet synthetic YouTube-VIS-style {split}', 'version': '1.0',
                'year': 2024, 'contributor': 'knet.datasets.synthetic', 'date_created': ''}
        licenses = [{'id': 1, 'name': 'Apache-2.0', 'url': ''}]
        write_json(root / 'annotations' / f'{split}.json',
                   {'info': info, 'licenses': licenses, 'videos': videos,
                    'annotations': tracks_json, 'categories': categories})
        write_json(root / 'annotations' / f'youtube_vis_2019_{split}.json',
                   {'info': info, 'licenses': licenses, 'videos': vid_videos,
                    'images': vid_images, 'annotations': vid_anns, 'categories': categories})
