# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""KITTI-STEP / Cityscapes-STEP datasets: layouts, errors, labels, pairs."""
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmdet.datasets.samplers import TrackImgSampler
from mmdet.registry import DATASETS, TRANSFORMS
from mmengine.registry import DefaultScope

from knet.datasets.cityscapes_step import (list_cityscapes_step,
                                           read_cityscapes_step)
from knet.datasets.kitti_step import (KITTISTEPDataset, STEPLayoutError,
                                      decode_step_panoptic, list_step_videos,
                                      read_step_panoptic,
                                      step_label_inverse_lut, step_label_lut)
from knet.datasets.step_pairs import STEPPairFrameSample, fixed_offset
from knet.datasets.synthetic import generate
from knet.datasets.synthetic.classes import (SYNTHETIC_SEMANTIC_CLASSES,
                                             SYNTHETIC_STEP_THING_IDS)
from knet.datasets.synthetic.fileio import encode_png, write_png


@pytest.fixture(scope='module')
def flat_root(tmp_path_factory) -> Path:
    """Tiny synthetic KITTI-STEP in the flattened layout (2 train, 1 val)."""
    out = tmp_path_factory.mktemp('step')
    return generate('step', out, seed=0, progress=False, num_train=2,
                    num_val=1, num_frames=3, size=(32, 48))


def to_official(flat: Path, dst: Path) -> Path:
    """Copy a flattened split tree into the official KITTI-STEP layout."""
    for split_dir in (flat / 'video_sequence').iterdir():
        for file in split_dir.iterdir():
            seq, frame, kind = file.stem.split('_')
            top = 'images' if kind == 'leftImg8bit' else 'panoptic_maps'
            target = (dst / top / split_dir.name / f'{int(seq):04d}' /
                      f'{frame}.png')
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
    return dst


def flat_copy(flat: Path, dst: Path) -> Path:
    shutil.copytree(flat / 'video_sequence', dst / 'video_sequence')
    return dst


# --------------------------------------------------------------------------
# label mapping and decoding
# --------------------------------------------------------------------------
def test_label_lut_matches_spec_table():
    # spec §2.4: 0..10 -> 2..12, 11 -> 0, 12 -> 13, 13 -> 1, 14..18 -> 14..18
    expected = list(range(2, 13)) + [0, 13, 1] + list(range(14, 19))
    lut = step_label_lut()
    assert lut[:19].tolist() == expected
    assert lut[255] == 255
    inverse = step_label_inverse_lut()
    # spec §10.1: trainId -> model label -> trainId is the identity
    assert inverse[lut[np.arange(19)]].tolist() == list(range(19))
    assert inverse[255] == 255
    assert sorted(lut[:19].tolist()) == list(range(19))


def test_label_lut_rejects_bad_thing_ids():
    with pytest.raises(ValueError, match='thing_ids'):
        step_label_lut(19, (11, 19))


def hand_label() -> np.ndarray:
    """4x5 STEP label: road, person 3, car 300, car crowd, rider, void."""
    rgb = np.zeros((4, 5, 3), np.uint8)  # road (class 0, instance 0)
    rgb[0, 0:2] = (11, 0, 3)  # person, instance 3
    rgb[1, 0:3] = (13, 1, 44)  # car, instance 1*256+44 = 300
    rgb[2, 4] = (13, 0, 0)  # car crowd region (instance 0)
    rgb[3, 0] = (13, 0, 0)  # second pixel of the same crowd region
    rgb[3, 1] = (12, 0, 7)  # rider: stuff here, instance ignored
    rgb[3, 4] = (255, 0, 0)  # void
    return rgb


def check_hand_decoded(out: dict) -> None:
    rgb = hand_label()
    assert out['sem_seg'].tolist() == rgb[..., 0].astype(int).tolist()
    assert out['instance_ids'].tolist() == [110003, 130000, 130300]
    assert out['labels'].tolist() == [0, 1, 1]
    person, crowd, car = out['masks']
    assert sorted(zip(*np.nonzero(person))) == [(0, 0), (0, 1)]
    assert sorted(zip(*np.nonzero(crowd))) == [(2, 4), (3, 0)]
    assert sorted(zip(*np.nonzero(car))) == [(1, 0), (1, 1), (1, 2)]
    assert out['masks'].dtype == bool


def test_decode_hand_label():
    check_hand_decoded(decode_step_panoptic(hand_label()))


def test_round_trip_through_png_file(tmp_path):
    # encode -> file -> decode; also pins the channel order (R = class)
    path = tmp_path / 'x_panoptic.png'
    write_png(path, hand_label())
    check_hand_decoded(read_step_panoptic(path))


def test_decode_synthetic_labels_with_their_metainfo(flat_root):
    path = flat_root / 'video_sequence/train/000000_000000_panoptic.png'
    out = read_step_panoptic(path, num_classes=len(SYNTHETIC_SEMANTIC_CLASSES),
                             thing_ids=SYNTHETIC_STEP_THING_IDS)
    assert len(out['masks']) > 0
    # every thing pixel is in exactly one mask, stuff/void pixels in none
    is_thing = np.isin(out['sem_seg'], SYNTHETIC_STEP_THING_IDS)
    assert (out['masks'].sum(0) == is_thing).all()
    # with KITTI's defaults the synthetic classes are refused, naming the file
    with pytest.raises(STEPLayoutError, match='000000_000000_panoptic.png'):
        read_step_panoptic(path, num_classes=3, thing_ids=(1, 2))


def test_bad_png_names_file(tmp_path):
    gray = tmp_path / 'gray16.png'
    gray.write_bytes(encode_png(np.zeros((4, 4), np.uint16)))
    with pytest.raises(STEPLayoutError, match='gray16.png.*8-bit RGB'):
        read_step_panoptic(gray)
    bad = hand_label()
    bad[0, 0] = (30, 0, 0)
    with pytest.raises(STEPLayoutError, match=r'bad.png.*\[30\]'):
        write_png(tmp_path / 'bad.png', bad)
        read_step_panoptic(tmp_path / 'bad.png')
    with pytest.raises(STEPLayoutError, match='absent.png'):
        read_step_panoptic(tmp_path / 'absent.png')


# --------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------
def summary(data_list: list) -> list:
    """Layout-independent view: ids, lengths and file bytes."""
    return [(v['video_id'], v['video_length'],
             [(f['frame_id'], f['video_id'], f['img_id'],
               Path(f['img_path']).read_bytes(),
               Path(f['seg_map_path']).read_bytes()) for f in v['images']])
            for v in data_list]


def test_both_layouts_give_same_data_list(flat_root, tmp_path):
    official = to_official(flat_root, tmp_path / 'official')
    for split, seqs in (('train', [0, 1]), ('val', [2])):
        flat = list_step_videos(flat_root, split)
        offi = list_step_videos(official, split)
        assert [v['video_id'] for v in flat] == seqs
        assert [v['video_length'] for v in flat] == [3] * len(seqs)
        assert [f['frame_id'] for f in flat[0]['images']] == [0, 1, 2]
        assert summary(flat) == summary(offi)
        seq = seqs[0]
        assert flat[0]['images'][1]['img_path'].endswith(
            f'video_sequence/{split}/{seq:06d}_000001_leftImg8bit.png')
        assert offi[0]['images'][1]['seg_map_path'].endswith(
            f'panoptic_maps/{split}/{seq:04d}/000001.png')
    train = list_step_videos(flat_root, 'train')
    assert [f['img_id'] for v in train for f in v['images']] == list(range(6))


def test_dataset_registry_and_track_sampler(flat_root):
    ds = DATASETS.build(
        dict(type='KITTISTEPDataset', data_root=str(flat_root),
             split='train', pipeline=[]))
    assert isinstance(ds, KITTISTEPDataset)
    assert len(ds) == 2 and ds.num_all_imgs == 6
    assert ds.metainfo['thing_ids'] == (11, 13)
    assert ds.metainfo['classes'][11] == 'person'
    sampler = TrackImgSampler(ds, seed=0)
    assert sorted(sampler) == [(v, f) for v in range(2) for f in range(3)]
    sample = ds.prepare_data((1, 2))
    assert sample['key_frame_id'] == 2 and sample['video_id'] == 1
    test = KITTISTEPDataset(data_root=str(flat_root), split='val',
                            test_mode=True, pipeline=[])
    frame = test.prepare_data((0, 1))
    assert frame['frame_id'] == [1] and frame['ori_video_length'] == [3]
    synth = KITTISTEPDataset(
        data_root=str(flat_root), pipeline=[],
        metainfo=dict(classes=SYNTHETIC_SEMANTIC_CLASSES,
                      thing_ids=SYNTHETIC_STEP_THING_IDS))
    assert synth.metainfo['thing_ids'] == SYNTHETIC_STEP_THING_IDS


def test_official_test_split_without_panoptic(flat_root, tmp_path):
    official = to_official(flat_root, tmp_path / 'o')
    shutil.rmtree(official / 'panoptic_maps' / 'val')
    with pytest.raises(STEPLayoutError, match='panoptic_maps/val'):
        list_step_videos(official, 'val')
    videos = list_step_videos(official, 'val', with_panoptic=False)
    assert videos[0]['video_length'] == 3
    assert 'seg_map_path' not in videos[0]['images'][0]


# --------------------------------------------------------------------------
# error messages naming the file
# --------------------------------------------------------------------------
def test_flattened_errors_name_file(flat_root, tmp_path):
    root = flat_copy(flat_root, tmp_path / 'a')
    folder = root / 'video_sequence' / 'train'
    (folder / '000001_000002_panoptic.png').unlink()
    with pytest.raises(STEPLayoutError,
                       match='000001_000002_panoptic.png: missing'):
        list_step_videos(root, 'train')

    root = flat_copy(flat_root, tmp_path / 'b')
    folder = root / 'video_sequence' / 'train'
    for kind in ('leftImg8bit', 'panoptic'):
        (folder / f'000000_000001_{kind}.png').unlink()
    with pytest.raises(STEPLayoutError,
                       match='000000_000001_leftImg8bit.png: missing frame'):
        list_step_videos(root, 'train')

    root = flat_copy(flat_root, tmp_path / 'c')
    folder = root / 'video_sequence' / 'train'
    (folder / '000000_000000_leftImg8bit.png').rename(folder / '0_0_img.png')
    with pytest.raises(STEPLayoutError, match='0_0_img.png: unparsable'):
        list_step_videos(root, 'train')
    (folder / 'notes.txt').write_text('not a frame')  # non-PNG: ignored
    (folder / '0_0_img.png').rename(folder / '000000_000000_leftImg8bit.png')
    (folder / '000000_000000_depth.png').write_bytes(b'')  # DVPS: ignored
    assert len(list_step_videos(root, 'train')) == 2


def test_official_errors_name_file(flat_root, tmp_path):
    root = to_official(flat_root, tmp_path / 'a')
    (root / 'images/train/0001/000000.png').unlink()
    with pytest.raises(STEPLayoutError,
                       match='images/train/0001/000000.png: missing, but'):
        list_step_videos(root, 'train', layout='official')

    root = to_official(flat_root, tmp_path / 'b')
    (root / 'images/train/0000/000002.png').rename(
        root / 'images/train/0000/2.png')
    with pytest.raises(STEPLayoutError, match='0000/2.png: unparsable'):
        list_step_videos(root, 'train')

    root = to_official(flat_root, tmp_path / 'c')
    (root / 'images/train/seq1').mkdir()
    with pytest.raises(STEPLayoutError, match='images/train/seq1: unexpected'):
        list_step_videos(root, 'train')


def test_layout_detection_errors(flat_root, tmp_path):
    with pytest.raises(STEPLayoutError, match='no KITTI-STEP split "train"'):
        list_step_videos(tmp_path, 'train')
    both = to_official(flat_root, flat_copy(flat_root, tmp_path / 'both'))
    with pytest.raises(STEPLayoutError, match='both .* exist'):
        list_step_videos(both, 'train')
    assert summary(list_step_videos(both, 'train', layout='official')) == \
        summary(list_step_videos(both, 'train', layout='flattened'))
    with pytest.raises(STEPLayoutError, match="layout='flat'"):
        list_step_videos(both, 'train', layout='flat')
    with pytest.raises(STEPLayoutError, match='video_sequence/test'):
        list_step_videos(both, 'test', layout='flattened')


# --------------------------------------------------------------------------
# two-frame pairs (spec §2.2)
# --------------------------------------------------------------------------
def video_info(video_id: int, length: int, key: int) -> dict:
    """Hand-built video data-list entry, as the dataset gives it."""
    images = [dict(img_path=f'v{video_id}/{t}.png', frame_id=t,
                   video_id=video_id) for t in range(length)]
    return dict(video_id=video_id, video_length=length, images=images,
                key_frame_id=key)


def ref_of(sampler, video_id: int, length: int, key: int):
    out = sampler(video_info(video_id, length, key))
    if out is None:
        return None
    assert out['frame_id'][0] == key and out['key_frame_flags'] == [
        True, False]
    assert out['video_length'] == [2, 2]
    assert out['ori_video_length'] == [length, length]
    assert out['img_path'] == [f'v{video_id}/{key}.png',
                               f'v{video_id}/{out["frame_id"][1]}.png']
    return out['frame_id'][1]


def test_fixed_pairs_are_fixed_and_drop_edges():
    sampler = TRANSFORMS.build(dict(type='STEPPairFrameSample', seed=3))
    long = [ref_of(sampler, 7, 200, t) for t in range(2, 198)]
    deltas = [r - t for t, r in zip(range(2, 198), long)]
    assert set(deltas) == {-2, -1, 1, 2}
    # fixed: same pairs on a second call and from a fresh instance
    again = STEPPairFrameSample(seed=3)
    assert [ref_of(again, 7, 200, t) for t in range(2, 198)] == long
    other_seed = STEPPairFrameSample(seed=4)
    assert [ref_of(other_seed, 7, 200, t) for t in range(2, 198)] != long
    # a frame keeps its offset whatever the video length; one whose partner
    # is outside the video is dropped (None), never re-drawn
    for t in range(3):
        delta = fixed_offset(3, 7, t)
        expected = t + delta if 0 <= t + delta < 3 else None
        assert ref_of(sampler, 7, 3, t) == expected
    # 3-frame videos: frame 0 drops for offsets -2/-1, frame 1 for -2/+2,
    # frame 2 for +1/+2: about half of 200 videos each
    for t in range(3):
        dropped = sum(ref_of(sampler, v, 3, t) is None for v in range(200))
        assert 70 < dropped < 130, (t, dropped)


def test_redraw_pairs_vary_and_never_drop():
    random.seed(0)
    sampler = STEPPairFrameSample(redraw=True)
    middle = {ref_of(sampler, 0, 5, 2) - 2 for _ in range(200)}
    assert middle == {-2, -1, 1, 2}
    first = {ref_of(sampler, 0, 5, 0) for _ in range(100)}
    assert first == {1, 2}
    last = {ref_of(sampler, 0, 5, 4) for _ in range(100)}
    assert last == {2, 3}
    assert ref_of(sampler, 0, 1, 0) is None  # single-frame video
    with pytest.raises(ValueError, match='non-zero'):
        STEPPairFrameSample(offsets=(0, 1))


def test_reject_pair_without_shared_instance():
    reject = TRANSFORMS.build(dict(type='RejectPairWithoutSharedInstance'))
    pair = dict(gt_instances_ids=[np.array([110003, 130000]),
                                  np.array([130000])])
    assert reject(pair) is pair
    assert reject(dict(gt_instances_ids=[np.array([110003]),
                                         np.array([130300])])) is None
    assert reject(dict(gt_instances_ids=[np.array([], np.int64),
                                         np.array([1])])) is None
    with pytest.raises(KeyError, match='gt_instances_ids'):
        reject(dict(img_path=['a', 'b']))


def test_pairs_through_dataset_and_broadcaster(flat_root):
    # same random flip on both frames (share_random_params=True)
    pipeline = [
        dict(type='STEPPairFrameSample', redraw=True),
        dict(type='TransformBroadcaster', share_random_params=True,
             transforms=[dict(type='LoadImageFromFile'),
                         dict(type='RandomFlip', prob=0.5)])
    ]
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = KITTISTEPDataset(data_root=str(flat_root), pipeline=pipeline)
    random.seed(1)
    np.random.seed(1)  # mmcv's RandomFlip draws from numpy
    flips = []
    for i in range(20):
        frame = i % 3
        out = ds[(1, frame)]
        assert out['frame_id'][0] == frame and len(out['img']) == 2
        assert out['img'][0].shape == (32, 48, 3)
        assert out['flip'][0] == out['flip'][1]
        flips.append(out['flip'][0])
    assert set(flips) == {True, False}  # both cases were exercised
    assert ds[(0, 0)]['video_id'] == [0, 0]


# --------------------------------------------------------------------------
# Cityscapes-STEP (spec §5.2)
# --------------------------------------------------------------------------
def cs_maps() -> tuple[np.ndarray, np.ndarray]:
    """labelTrainIds + instanceTrainIds: persons, car, id-less car, rider."""
    semantic = np.zeros((3, 4), np.uint8)  # road
    semantic[0, :2] = 11
    semantic[1, :] = 13
    semantic[2, 3] = 12  # rider (thing in Cityscapes, not in STEP's {11,13})
    semantic[2, 0] = 255
    instance = semantic.astype(np.uint16)
    instance[0, 0], instance[0, 1] = 11000, 11001  # two persons
    instance[1, :3] = 13002  # a car; (1, 3) stays 13: car without id
    instance[2, 3] = 12000  # rider instance: not a kept thing class
    return semantic, instance


def write_frame(root: Path, split: str, city: str, seq: int,
                frame: int) -> None:
    stem = f'{city}_{seq:06d}_{frame:06d}'
    semantic, instance = cs_maps()
    write_png(root / 'leftImg8bit' / split / city / f'{stem}_leftImg8bit.png',
              np.zeros((3, 4, 3), np.uint8))
    gt = root / 'gtFine' / split / city
    write_png(gt / f'{stem}_gtFine_labelTrainIds.png', semantic)
    write_png(gt / f'{stem}_gtFine_instanceTrainIds.png', instance)


@pytest.fixture
def cs_root(tmp_path) -> Path:
    write_frame(tmp_path, 'train', 'aachen', 0, 19)
    write_frame(tmp_path, 'train', 'aachen', 1, 19)
    write_frame(tmp_path, 'train', 'bochum', 0, 5)
    return tmp_path


def test_decode_through_png_files(cs_root):
    gt = cs_root / 'gtFine/train/aachen'
    out = read_cityscapes_step(
        gt / 'aachen_000000_000019_gtFine_labelTrainIds.png',
        gt / 'aachen_000000_000019_gtFine_instanceTrainIds.png')
    assert out['instance_ids'].tolist() == [11000, 11001, 13002]
    assert out['labels'].tolist() == [0, 0, 1]
    assert [sorted(zip(*np.nonzero(m))) for m in out['masks']] == [
        [(0, 0)], [(0, 1)], [(1, 0), (1, 1), (1, 2)]]
    assert out['sem_seg'].tolist() == cs_maps()[0].astype(int).tolist()


def test_data_list_and_registry(cs_root):
    ds = DATASETS.build(dict(type='CityscapesSTEPDataset',
                             data_root=str(cs_root), pipeline=[]))
    assert len(ds) == 3
    stems = [d['img_id'] for d in ds.load_data_list()]
    assert stems == ['aachen_000000_000019', 'aachen_000001_000019',
                     'bochum_000000_000005']
    info = ds.get_data_info(2)
    assert (info['seq_id'], info['frame_id']) == (0, 5)
    assert info['ins_map_path'].endswith(
        'gtFine/train/bochum/bochum_000000_000005_gtFine_instanceTrainIds.png')
    assert ds.metainfo['thing_ids'] == (11, 13)


def test_errors_name_file(cs_root):
    (cs_root / 'gtFine/train/bochum/'
     'bochum_000000_000005_gtFine_instanceTrainIds.png').unlink()
    with pytest.raises(STEPLayoutError,
                       match='bochum_000000_000005_gtFine_instanceTrainIds'
                       '.png: missing'):
        list_cityscapes_step(cs_root, 'train')
    (cs_root / 'leftImg8bit/train/bochum').rename(cs_root / 'x')
    bad = cs_root / 'leftImg8bit/train/aachen/aachen_0_0_leftImg8bit.png'
    bad.write_bytes(b'')
    with pytest.raises(STEPLayoutError, match='aachen_0_0_leftImg8bit.png: '
                       'unparsable'):
        list_cityscapes_step(cs_root, 'train')
    with pytest.raises(STEPLayoutError, match='leftImg8bit/val: folder'):
        list_cityscapes_step(cs_root, 'val')
    rgb = cs_root / 'rgb.png'
    write_png(rgb, np.zeros((3, 4, 3), np.uint8))
    with pytest.raises(STEPLayoutError, match='rgb.png: expected a single'):
        read_cityscapes_step(rgb, rgb)


# --------------------------------------------------------------------------
# loading into mmdet fields
# --------------------------------------------------------------------------
def test_load_step_annotations_fields(tmp_path):
    path = tmp_path / 'f_panoptic.png'
    write_png(path, hand_label())
    load = TRANSFORMS.build(dict(type='LoadSTEPPanopticAnnotations'))
    out = load(dict(seg_map_path=str(path)))
    # order = sorted ids: person 110003, car crowd 130000, car 130300
    assert out['gt_instances_ids'].tolist() == [110003, 130000, 130300]
    assert out['gt_bboxes_labels'].tolist() == [0, 1, 1]
    assert out['gt_bboxes'].tensor.tolist() == [[0, 0, 2, 1], [0, 2, 5, 4],
                                                [0, 1, 3, 2]]
    assert out['gt_masks'].masks.shape == (3, 4, 5)
    assert out['gt_seg_map'].dtype == np.uint8
    assert out['gt_seg_map'][3, 4] == 255 and out['ignore_index'] == 255
    assert out['seg_fields'] == ['gt_seg_map']
    assert not out['gt_ignore_flags'].any()
    # default: model space (person 0, car 1, road 0 -> 2, rider 12 -> 13)
    assert out['gt_seg_map'].tolist() == [[0, 0, 2, 2, 2], [1, 1, 1, 2, 2],
                                          [2, 2, 2, 2, 1], [1, 13, 2, 2, 255]]
    assert 'gt_panoptic_map' not in out


def test_load_step_annotations_label_space_and_panoptic_gt(tmp_path):
    path = tmp_path / 'f_panoptic.png'
    write_png(path, hand_label())
    keep = TRANSFORMS.build(dict(type='LoadSTEPPanopticAnnotations',
                                 label_space='dataset'))
    out = keep(dict(seg_map_path=str(path)))
    assert out['gt_seg_map'].tolist() == hand_label()[..., 0].tolist()
    load = TRANSFORMS.build(dict(type='LoadSTEPPanopticAnnotations',
                                 with_panoptic_gt=True))
    pan = load(dict(seg_map_path=str(path)))['gt_panoptic_map']
    # model class + raw instance * 1000; crowd = instance 0; the rider's
    # instance value is dropped (stuff here); void stays 255
    assert pan.dtype == np.int64
    assert pan.tolist() == [[3000, 3000, 2, 2, 2],
                            [300001, 300001, 300001, 2, 2],
                            [2, 2, 2, 2, 1], [1, 13, 2, 2, 255]]
    with pytest.raises(ValueError, match='label_space'):
        TRANSFORMS.build(dict(type='LoadSTEPPanopticAnnotations',
                              label_space='trainId'))


def test_load_cityscapes_annotations_fields(cs_root):
    gt = cs_root / 'gtFine/train/aachen'
    load = TRANSFORMS.build(dict(type='LoadCityscapesSTEPAnnotations'))
    out = load(dict(
        seg_map_path=str(gt / 'aachen_000000_000019_gtFine_labelTrainIds.png'),
        ins_map_path=str(
            gt / 'aachen_000000_000019_gtFine_instanceTrainIds.png')))
    assert out['gt_instances_ids'].tolist() == [11000, 11001, 13002]
    assert out['gt_bboxes'].tensor.tolist() == [[0, 0, 1, 1], [1, 0, 2, 1],
                                                [0, 1, 3, 2]]
    # model space; panoptic GT numbers Cityscapes instance k as k + 1
    load = TRANSFORMS.build(dict(type='LoadCityscapesSTEPAnnotations',
                                 with_panoptic_gt=True))
    out = load(dict(
        seg_map_path=str(gt / 'aachen_000000_000019_gtFine_labelTrainIds.png'),
        ins_map_path=str(
            gt / 'aachen_000000_000019_gtFine_instanceTrainIds.png')))
    assert out['gt_seg_map'].tolist() == [[0, 0, 2, 2], [1, 1, 1, 1],
                                          [255, 2, 2, 13]]
    assert out['gt_panoptic_map'].tolist() == [[1000, 2000, 2, 2],
                                               [3001, 3001, 3001, 1],
                                               [255, 2, 2, 13]]


def test_two_frame_training_pipeline(flat_root):
    loader = dict(type='LoadSTEPPanopticAnnotations',
                  num_classes=len(SYNTHETIC_SEMANTIC_CLASSES),
                  thing_ids=SYNTHETIC_STEP_THING_IDS)
    pipeline = [
        dict(type='STEPPairFrameSample', redraw=True),
        dict(type='TransformBroadcaster', share_random_params=True,
             transforms=[dict(type='LoadImageFromFile'), loader,
                         dict(type='RandomFlip', prob=0.5)]),
        dict(type='RejectPairWithoutSharedInstance'),
    ]
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = KITTISTEPDataset(
            data_root=str(flat_root), pipeline=pipeline,
            metainfo=dict(classes=SYNTHETIC_SEMANTIC_CLASSES,
                          thing_ids=SYNTHETIC_STEP_THING_IDS))
    random.seed(0)
    np.random.seed(0)
    kept = 0
    for frame in range(3):
        out = ds.prepare_data((0, frame))
        if out is None:
            continue
        kept += 1
        key_ids, ref_ids = out['gt_instances_ids']
        assert np.intersect1d(key_ids, ref_ids).size > 0
        assert out['gt_seg_map'][0].shape == (32, 48)
        # one flip decision for both frames
        assert out['flip'][0] == out['flip'][1]
    assert kept > 0
