# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""KITTI-STEP-style and YouTube-VIS-style files: encoding, tracks, mmdet."""
import json
import re

import mmcv
import numpy as np
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils

from knet.datasets.synthetic import (SYNTHETIC_SEMANTIC_CLASSES,
                                     SYNTHETIC_STEP_THING_IDS,
                                     SYNTHETIC_THING_CLASSES, SceneConfig,
                                     decode_step, encode_step, get_metainfo,
                                     render_video)
from knet.datasets.synthetic.formats.common import sample_rng


def test_step_encode_decode_round_trip():
    """encode_step / decode_step round-trip classes and track ids."""
    cfg = SceneConfig(height=64, width=96)
    frames = render_video(sample_rng(3, 'test', 'rt', 0), cfg, 3)
    classes = cfg.stuff_classes + cfg.thing_classes
    for scene in frames:
        sem, inst = decode_step(encode_step(scene, classes))
        assert np.all(sem[scene.segment_map == 0] == 255)
        for seg, mask in scene.iter_masks():
            assert np.all(sem[mask] == classes.index(seg.name))
            expected = seg.track_id if seg.isthing and not seg.iscrowd else 0
            assert np.all(inst[mask] == expected)
    # high track ids survive the G*256+B split
    label = np.zeros((2, 2, 3), np.uint8)
    label[..., 1], label[..., 2] = 3, 7
    assert decode_step(label)[1][0, 0] == 3 * 256 + 7


def _read_step(folder):
    frames = {}
    for p in sorted(folder.glob('*_panoptic.png')):
        seq, frame = map(
            int,
            re.match(r'(\d{6})_(\d{6})_panoptic\.png', p.name).groups())
        assert (folder / p.name.replace('panoptic', 'leftImg8bit')).exists()
        frames.setdefault(seq, []).append(
            (frame, decode_step(mmcv.imread(str(p), channel_order='rgb'))))
    return frames


def test_step_files_and_track_consistency(synthetic_root):
    """STEP files: layout, ids, void, crowd, stable and smooth tracks."""
    base = synthetic_root / 'step/video_sequence'
    train, val = _read_step(base / 'train'), _read_step(base / 'val')
    assert sorted(train) == [0, 1, 2] and sorted(val) == [3]
    assert get_metainfo('step')['thing_ids'] == SYNTHETIC_STEP_THING_IDS
    thing_ids = set(SYNTHETIC_STEP_THING_IDS)
    saw_void = saw_crowd = saw_multi = False
    for frames in list(train.values()) + list(val.values()):
        assert [f for f, _ in frames] == list(range(6))
        track_class, track_centres = {}, {}
        for _, (sem, inst) in frames:
            assert set(np.unique(sem).tolist()) <= set(
                range(len(SYNTHETIC_SEMANTIC_CLASSES))) | {255}
            saw_void |= bool((sem == 255).any())
            # instance ids only on thing classes; a thing pixel with id 0 is
            # crowd
            assert np.all(np.isin(sem[inst > 0], list(thing_ids)))
            saw_crowd |= bool(
                (np.isin(sem, list(thing_ids)) & (inst == 0)).any())
            assert (inst > 0).any(
            ), 'every frame has a tracked thing (STEP loaders need one)'
            for tid in np.unique(inst[inst > 0]).tolist():
                classes = np.unique(sem[inst == tid]).tolist()
                assert len(classes) == 1
                assert track_class.setdefault(tid, classes[0]) == classes[0]
                ys, xs = np.nonzero(inst == tid)
                track_centres.setdefault(tid, []).append(
                    (ys.mean(), xs.mean()))
        for centres in track_centres.values():
            saw_multi |= len(centres) > 1
            steps = np.linalg.norm(np.diff(np.array(centres), axis=0), axis=1)
            assert np.all(steps < 20), 'tracks move smoothly between frames'
    assert saw_void and saw_crowd and saw_multi


def test_ytvis_official_json(synthetic_root):
    """Official json: per-frame lists with None; CocoVID copy agrees."""
    ann = json.loads(
        (synthetic_root / 'ytvis/annotations/train.json').read_text())
    assert len(ann['videos']) == 3
    lengths = {v['id']: v['length'] for v in ann['videos']}
    for v in ann['videos']:
        for fn in v['file_names']:
            assert (synthetic_root / 'ytvis/train/JPEGImages' / fn).exists()
    saw_none = False
    for a in ann['annotations']:
        t = lengths[a['video_id']]
        assert len(a['segmentations']) == len(a['bboxes']) == len(
            a['areas']) == t
        for seg, box, area in zip(a['segmentations'], a['bboxes'], a['areas']):
            assert (seg is None) == (box is None) == (area is None)
            saw_none |= seg is None
            if seg is not None:
                rle = mask_utils.frPyObjects(seg, *seg['size'])
                assert mask_utils.decode(rle).sum() == area > 0
    assert saw_none
    assert [c['name']
            for c in ann['categories']] == list(SYNTHETIC_THING_CLASSES)
    # the CocoVID json is the same data: global 1-based instance ids = official
    # track ids
    vid = json.loads(
        (synthetic_root /
         'ytvis/annotations/youtube_vis_2019_train.json').read_text())
    tracks = {a['id']: a for a in ann['annotations']}
    assert len(tracks) == len(ann['annotations']) and min(tracks) == 1
    images = {im['id']: im for im in vid['images']}
    per_track = {}
    for a in vid['annotations']:
        track, image = tracks[a['instance_id']], images[a['image_id']]
        assert track['video_id'] == a['video_id'] == image['video_id']
        assert track['segmentations'][image['frame_id']] == a['segmentation']
        assert track['category_id'] == a['category_id']
        per_track[a['instance_id']] = per_track.get(a['instance_id'], 0) + 1
    assert per_track == {
        k: sum(s is not None for s in t['segmentations'])
        for k, t in tracks.items()
    }


def test_ytvis_loads_in_mmdet(synthetic_root):
    """YouTubeVISDataset reads the CocoVID json; pipeline yields ids."""
    from mmdet.datasets import YouTubeVISDataset
    init_default_scope('mmdet')
    ds = YouTubeVISDataset(
        dataset_version='2019',
        data_root=str(synthetic_root / 'ytvis'),
        ann_file='annotations/youtube_vis_2019_train.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        metainfo=get_metainfo('ytvis'),
        pipeline=[
            dict(
                type='UniformRefFrameSample',
                num_ref_imgs=1,
                frame_range=2,
                filter_key_img=True),
            dict(
                type='TransformBroadcaster',
                share_random_params=True,
                transforms=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadTrackAnnotations', with_mask=True)
                ]),
            dict(type='PackTrackInputs')
        ])
    assert len(ds) == 3 and ds.metainfo['classes'] == SYNTHETIC_THING_CLASSES
    official = json.loads(
        (synthetic_root / 'ytvis/annotations/train.json').read_text())
    n_tracks = {v['id']: 0 for v in official['videos']}
    for a in official['annotations']:
        n_tracks[a['video_id']] += 1
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        assert info['video_length'] == 6
        ids = {
            i['instance_id']
            for img in info['images']
            for i in img['instances']
        }
        assert len(ids) == n_tracks[info['video_id']]
        item = ds[idx]
        sample = item['data_samples']
        assert item['inputs'].shape[0] == 2  # key + reference frame
        for frame in sample:
            gt = frame.gt_instances
            assert gt.masks.masks.shape[1:] == (128, 128)
            assert len(gt.instances_ids) == len(gt) and set(
                gt.instances_ids.tolist()) <= ids
            assert gt.masks.masks.sum(axis=(1, 2)).min() > 0
    valid = YouTubeVISDataset(
        dataset_version='2019',
        data_root=str(synthetic_root / 'ytvis'),
        ann_file='annotations/youtube_vis_2019_valid.json',
        data_prefix=dict(img_path='valid/JPEGImages'),
        metainfo=get_metainfo('ytvis'),
        test_mode=True,
        pipeline=[])
    assert len(valid) == 2
    assert all(valid.get_data_info(i)['video_length'] == 6 for i in range(2))


def test_classes_per_video_restricts_thing_classes():
    """``classes_per_video=k``: every clip's things use at most k classes
    (so most things share their class with another one), and the default
    draws from all classes; out-of-range values and image tasks refuse."""
    import pytest

    from knet.datasets.synthetic import resolve_params

    def classes_and_crowding(cpv):
        cfg = SceneConfig(height=64, width=128, classes_per_video=cpv)
        per_clip, shared, total = [], 0, 0
        for i in range(12):
            clip = render_video(sample_rng(0, 'step', 'train', i), cfg, 4)
            names = set()
            for scene in clip:
                things = [s.name for s in scene.segments if s.isthing]
                names.update(things)
                plain = [s.name for s in scene.segments
                         if s.isthing and not s.iscrowd]
                total += len(plain)
                shared += sum(plain.count(n) > 1 for n in plain)
            per_clip.append(len(names))
        return per_clip, shared / max(total, 1)

    restricted, shared_two = classes_and_crowding(2)
    default, shared_all = classes_and_crowding(0)
    assert max(restricted) <= 2
    assert max(default) > 2
    assert shared_two > shared_all
    with pytest.raises(ValueError, match='classes_per_video'):
        SceneConfig(classes_per_video=len(SYNTHETIC_THING_CLASSES) + 1)
    with pytest.raises(ValueError, match='classes_per_video'):
        resolve_params('step', classes_per_video=-1)
    with pytest.raises(TypeError, match='classes_per_video'):
        resolve_params('coco', classes_per_video=2)
    assert resolve_params('step')['classes_per_video'] == 0
    restricted_params = resolve_params('step', classes_per_video=2)
    assert restricted_params['classes_per_video'] == 2
