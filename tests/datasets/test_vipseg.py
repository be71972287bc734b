# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VIP-Seg 720p dataset and loader (spec §5.4): layout, errors naming the
file, raw value 200, instances, label round trips against the eval tools."""
import random
from pathlib import Path

import mmcv
import numpy as np
import pytest
from mmdet.registry import DATASETS, TRANSFORMS
from mmengine.config import Config
from mmengine.registry import DefaultScope

from knet.datasets.label_maps import ModelLabelMap
from knet.datasets.synthetic.fileio import write_png
from knet.datasets.vipseg import (VIPSegLayoutError, decode_vipseg_panomask,
                                  list_vipseg_videos, read_vipseg_panomask)
from knet.evaluation.video_io import VIPSEG_THING_IDS, read_vipseg_gt

REPO = Path(__file__).resolve().parents[2]
PERSON, CAR = 60, 48  # 0-based VIP-Seg thing classes


def hand_mask() -> np.ndarray:
    """3x4 raw panomask: wall, ceiling, two persons (k=0,1), a car, void,
    and the stray value 200."""
    raw = np.full((3, 4), 1, np.uint16)  # wall (class 0) everywhere
    raw[0, 0] = 2  # ceiling (class 1)
    raw[0, 1] = (PERSON + 1) * 100  # person k=0: an instance too
    raw[0, 2] = (PERSON + 1) * 100 + 1  # person k=1
    raw[1, :2] = (CAR + 1) * 100  # car k=0
    raw[2, 0] = 0  # void
    raw[2, 3] = 200  # annotation error -> void
    return raw


def write_video(root: Path, video: str, frames: list, raw=None) -> None:
    for stem in frames:
        mmcv.imwrite(np.full((3, 4, 3), 100, np.uint8),
                     str(root / 'images' / video / f'{stem}.jpg'))
        write_png(root / 'panomasks' / video / f'{stem}.png',
                  hand_mask() if raw is None else raw)


@pytest.fixture
def vip_root(tmp_path) -> Path:
    write_video(tmp_path, 'b_video', ['00000010', '00000002', '00000030'])
    write_video(tmp_path, 'a_video', ['00000001', '00000005'])
    # split order, not alphabetical order, gives video_id
    (tmp_path / 'train.txt').write_text('b_video\na_video\n')
    (tmp_path / 'val.txt').write_text('a_video\n')
    return tmp_path


def test_decode_hand_mask():
    out = decode_vipseg_panomask(hand_mask())
    assert out['sem_seg'].tolist() == [[1, PERSON, PERSON, 0],
                                       [CAR, CAR, 0, 0],
                                       [255, 0, 0, 255]]
    # sorted by raw value: car 4900, person 6100, person 6101
    assert out['instance_ids'].tolist() == [4900, 6100, 6101]
    assert out['labels'].tolist() == [VIPSEG_THING_IDS.index(CAR),
                                      VIPSEG_THING_IDS.index(PERSON),
                                      VIPSEG_THING_IDS.index(PERSON)]
    assert out['raw_instances'].tolist() == [1, 1, 2]
    assert [sorted(zip(*np.nonzero(m))) for m in out['masks']] == [
        [(1, 0), (1, 1)], [(0, 1)], [(0, 2)]]
    # value 200 is void and no instance
    assert not out['masks'][:, 2, 3].any()


def test_data_list_order_and_ids(vip_root):
    videos = list_vipseg_videos(vip_root, 'train')
    assert [v['video_name'] for v in videos] == ['b_video', 'a_video']
    assert [v['video_id'] for v in videos] == [0, 1]
    frames = videos[0]['images']
    assert [Path(f['img_path']).name for f in frames] == [
        '00000002.jpg', '00000010.jpg', '00000030.jpg']
    assert [f['frame_id'] for f in frames] == [0, 1, 2]
    assert [Path(f['seg_map_path']).name for f in frames] == [
        '00000002.png', '00000010.png', '00000030.png']
    assert [f['img_id'] for v in videos for f in v['images']] == list(
        range(5))
    ds = DATASETS.build(dict(type='VIPSegDataset', data_root=str(vip_root),
                             split='val', pipeline=[]))
    assert len(ds) == 1 and ds.num_all_imgs == 2
    assert len(ds.metainfo['classes']) == 124
    assert ds.metainfo['classes'][PERSON] == 'person'
    assert tuple(ds.metainfo['thing_ids']) == VIPSEG_THING_IDS


def test_layout_errors_name_the_file(vip_root):
    with pytest.raises(VIPSegLayoutError, match='test.txt: split file'):
        list_vipseg_videos(vip_root, 'test')
    (vip_root / 'panomasks/a_video/00000005.png').rename(
        vip_root / 'panomasks/a_video/00000006.png')
    with pytest.raises(VIPSegLayoutError,
                       match='a_video/00000005.png: missing, but'):
        list_vipseg_videos(vip_root, 'val')
    # without panoptic maps only the images are listed
    videos = list_vipseg_videos(vip_root, 'val', with_panoptic=False)
    assert 'seg_map_path' not in videos[0]['images'][0]
    (vip_root / 'val.txt').write_text('c_video\n')
    with pytest.raises(VIPSegLayoutError, match='images/c_video: folder'):
        list_vipseg_videos(vip_root, 'val')
    (vip_root / 'val.txt').write_text('\n')
    with pytest.raises(VIPSegLayoutError, match='val.txt: lists no video'):
        list_vipseg_videos(vip_root, 'val')


def test_bad_mask_values_and_channels(tmp_path):
    bad = hand_mask()
    bad[1, 3] = 150  # neither stuff (<= 124) nor a thing value
    write_png(tmp_path / 'bad.png', bad)
    with pytest.raises(VIPSegLayoutError, match=r'bad.png.*\[150\]'):
        read_vipseg_panomask(tmp_path / 'bad.png')
    bad[1, 3] = (1 + 1) * 100  # 'ceiling' is stuff: no thing values
    bad[2, 3] = 3  # a thing class (door) stored as stuff
    write_png(tmp_path / 'bad2.png', bad)
    with pytest.raises(VIPSegLayoutError, match=r'bad2.png.*\[3\]'):
        read_vipseg_panomask(tmp_path / 'bad2.png')
    write_png(tmp_path / 'rgb.png', np.zeros((3, 4, 3), np.uint8))
    with pytest.raises(VIPSegLayoutError, match='rgb.png.*single-channel'):
        read_vipseg_panomask(tmp_path / 'rgb.png')


def test_loader_fields_model_space(tmp_path):
    write_png(tmp_path / 'm.png', hand_mask())
    load = TRANSFORMS.build(dict(type='LoadVIPSegPanopticAnnotations',
                                 with_panoptic_gt=True))
    out = load(dict(seg_map_path=str(tmp_path / 'm.png')))
    person, car = (VIPSEG_THING_IDS.index(PERSON),
                   VIPSEG_THING_IDS.index(CAR))
    wall, ceiling = 58, 59  # first stuff classes in model space
    assert out['gt_seg_map'].tolist() == [[ceiling, person, person, wall],
                                          [car, car, wall, wall],
                                          [255, wall, wall, 255]]
    assert out['gt_instances_ids'].tolist() == [4900, 6100, 6101]
    assert out['gt_bboxes_labels'].tolist() == [car, person, person]
    assert out['gt_panoptic_map'].dtype == np.int64
    assert out['gt_panoptic_map'].tolist() == [
        [ceiling, person + 1000, person + 2000, wall],
        [car + 1000, car + 1000, wall, wall],
        [255, wall, wall, 255]]
    keep = TRANSFORMS.build(dict(type='LoadVIPSegPanopticAnnotations',
                                 label_space='dataset'))
    out = keep(dict(seg_map_path=str(tmp_path / 'm.png')))
    assert out['gt_seg_map'][0].tolist() == [1, PERSON, PERSON, 0]
    assert 'gt_panoptic_map' not in out
    with pytest.raises(ValueError, match='label_space'):
        TRANSFORMS.build(dict(type='LoadVIPSegPanopticAnnotations',
                              label_space='trainid'))


def all_raw_values() -> np.ndarray:
    """Every valid raw value: void, 200, stuff, things with k 0..99."""
    stuff = [c + 1 for c in range(124) if c not in VIPSEG_THING_IDS]
    things = [(c + 1) * 100 + k for c in VIPSEG_THING_IDS for k in range(100)]
    return np.array([0, 200] + stuff + things, np.uint16)


def test_raw_to_model_to_output_agrees_with_eval_tools(tmp_path):
    # spec §10.1: raw -> dataset -> model (loader) -> output class must be
    # what the eval tools read from the same file (stuff first there:
    # model stuff 58..123 -> 0..65, model things 0..57 -> 66..123)
    raw = all_raw_values()
    path = tmp_path / 'all.png'
    write_png(path, raw[None])
    load = TRANSFORMS.build(dict(type='LoadVIPSegPanopticAnnotations',
                                 with_panoptic_gt=True))
    pan = load(dict(seg_map_path=str(path)))['gt_panoptic_map'][0]
    model_cls, model_ins = pan % 1000, pan // 1000
    eval_cls, eval_ins = (a[0] for a in read_vipseg_gt(str(path)))
    is_void = model_cls == 255
    assert is_void.tolist() == (eval_cls == 255).tolist()
    assert is_void[:2].all() and not is_void[2:].any()  # 0 and 200 only
    output = np.where(model_cls < 58, model_cls + 66, model_cls - 58)
    assert output[~is_void].tolist() == eval_cls[~is_void].tolist()
    assert model_ins.tolist() == eval_ins.tolist()
    # and dataset -> model -> dataset is the identity on the same pixels
    lmap = ModelLabelMap(124, VIPSEG_THING_IDS)
    raw = raw.astype(np.int64)  # stuff values reach 124, things >= 300
    dataset_cls = np.where(raw > 124, raw // 100 - 1, raw - 1)
    assert lmap.to_dataset(model_cls)[2:].tolist() == dataset_cls[2:].tolist()


def test_config_builds_and_test_sample(vip_root):
    cfg = Config.fromfile(
        str(REPO / 'configs/det/_base_/datasets/vipseg_vps.py'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        train = DATASETS.build(dict(cfg.train_dataloader.dataset,
                                    data_root=str(vip_root)))
        val = DATASETS.build(dict(cfg.val_dataloader.dataset,
                                  data_root=str(vip_root)))
    assert len(train) == 2 and train.num_all_imgs == 5
    sample = val[(0, 1)]
    frame = sample['data_samples'][0]
    assert frame.frame_id == 1 and frame.video_id == 0
    assert frame.gt_panoptic_seg.sem_seg.shape == (1, 3, 4)
    assert tuple(cfg.val_evaluator[0]['thing_ids']) == tuple(range(58))
    # a training pair: short side 720 (x1..2), crop 736x736, key first
    random.seed(0)
    np.random.seed(0)
    pairs = [train.prepare_data((0, f)) for f in range(3)]
    pair = next(p for p in pairs if p is not None)
    key, ref = pair['data_samples'].video_data_samples
    assert pair['inputs'].shape[:2] == (2, 3)
    height, width = pair['inputs'].shape[-2:]
    assert 720 <= height <= 736 and width == 736
    assert pair['data_samples'].key_frames_inds == [0]
    assert key.gt_sem_seg.sem_seg.shape == (1, height, width)
    ids = set(key.gt_instances.instances_ids.tolist())
    assert ids and ids <= {4900, 6100, 6101}
