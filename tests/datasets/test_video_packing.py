# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VPS samples end to end: the synthetic STEP data through the dataset-base
pipelines, PackVideoSegInputs and VideoSegDataPreprocessor (contract
/ video_design.md 'Data samples'); dataset base configs build."""
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

import knet  # noqa: F401  (registers the modules)
from knet.datasets.synthetic import generate
from knet.datasets.synthetic.fileio import write_png
from knet.evaluation._utils import read_png

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / 'configs/toy/_base_/synthetic_step_vps.py'
# synthetic STEP: file ids stuff 0..4, things 5..10 -> model things 0..5,
# stuff 6..10 (hand table of label_maps' rule)
TO_MODEL = {0: 6, 1: 7, 2: 8, 3: 9, 4: 10, 5: 0, 6: 1, 7: 2, 8: 3, 9: 4,
            10: 5, 255: 255}


@pytest.fixture(scope='module')
def step_root(tmp_path_factory) -> Path:
    """Synthetic STEP data (2 train / 1 val video of 4 frames, 128x256)
    plus a copy whose train video 0 repeats its frame 0 four times."""
    out = tmp_path_factory.mktemp('vps')
    root = generate('step', out, seed=0, progress=False, num_train=2,
                    num_val=1, num_frames=4, size=(128, 256))
    still = out / 'still'
    shutil.copytree(root / 'video_sequence', still / 'video_sequence')
    train = still / 'video_sequence' / 'train'
    for frame in range(1, 4):
        for kind in ('leftImg8bit', 'panoptic'):
            shutil.copyfile(train / f'000000_000000_{kind}.png',
                            train / f'000000_{frame:06d}_{kind}.png')
    return root


def build(cfg: dict, root: Path, **overrides):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dict(cfg, data_root=str(root), **overrides))


def preprocessor(**kwargs):
    return MODELS.build(dict(type='VideoSegDataPreprocessor',
                             mean=[0, 0, 0], std=[1, 1, 1], **kwargs))


def still_samples(dataset, count: int) -> list:
    """``count`` packed pairs of train video 0 (dropped / rejected pairs
    skipped; ``dataset[...]`` would refetch from another video instead)."""
    out = []
    for i in range(count * 10):
        sample = dataset.prepare_data((0, i % 4))
        if sample is not None:
            assert sample['data_samples'][0].video_id == 0
            out.append(sample)
        if len(out) == count:
            return out
    raise AssertionError('too few valid pairs in video 0')


def test_train_pair_shapes_padding_and_key_first(step_root):
    cfg = Config.fromfile(str(TOY))
    ds = build(cfg.train_dataloader.dataset, step_root)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    samples = []
    for video, frame in ((0, 2), (1, 1)):
        s = ds.prepare_data((video, frame))
        while s is None:  # fixed pair dropped / no shared instance
            frame = (frame + 1) % 4
            s = ds.prepare_data((video, frame))
        samples.append((frame, s))
    raw_segs = [[f.gt_sem_seg.sem_seg.clone() for f in s['data_samples']]
                for _, s in samples]
    batch = pseudo_collate([s for _, s in samples])
    out = preprocessor(pad_size_divisor=40)(batch, training=True)
    inputs = out['inputs']
    assert inputs.dim() == 5 and inputs.shape[:3] == (2, 2, 3)
    height, width = inputs.shape[-2:]
    assert height % 40 == 0 and width % 40 == 0
    for (frame, _), track, segs in zip(samples, out['data_samples'],
                                       raw_segs):
        assert track.key_frames_inds == [0] and track.ref_frames_inds == [1]
        key, ref = track.video_data_samples
        assert key.frame_id == frame and ref.frame_id != frame
        assert abs(ref.frame_id - frame) in (1, 2)
        # crop 128x256 (or smaller after a downscale), same on both frames
        assert key.img_shape == ref.img_shape
        assert key.img_shape[0] <= 128 and key.img_shape[1] <= 256
        assert key.flip == ref.flip
        # instance ids shared, model-space labels of the 6 things
        shared = np.intersect1d(key.gt_instances.instances_ids.numpy(),
                                ref.gt_instances.instances_ids.numpy())
        assert shared.size > 0
        for det, seg in zip((key, ref), segs):
            assert det.batch_input_shape == (height, width)
            assert det.gt_instances.labels.max() < 6
            padded = det.gt_sem_seg.sem_seg
            assert padded.shape == (1, height, width)
            h, w = seg.shape[-2:]
            assert torch.equal(padded[:, :h, :w], seg)
            assert (padded[:, h:] == 255).all()
            assert (padded[:, :, w:] == 255).all()
            assert det.gt_instances.masks.masks.shape[1:] == (height, width)
            # thing pixels carry thing labels, the rest stuff or void
            assert set(seg.unique().tolist()) <= set(range(11)) | {255}


def test_same_augmentation_on_both_frames(step_root):
    # a video whose frames are identical: shared random parameters must
    # give identical key and reference samples, whatever was drawn
    cfg = Config.fromfile(str(TOY))
    still = build(cfg.train_dataloader.dataset, step_root.parent / 'still')
    random.seed(1)
    np.random.seed(1)
    shapes, flips = set(), set()
    for sample in still_samples(still, 12):
        key, ref = sample['data_samples'].video_data_samples
        assert torch.equal(sample['inputs'][0], sample['inputs'][1])
        assert torch.equal(key.gt_sem_seg.sem_seg, ref.gt_sem_seg.sem_seg)
        assert (key.gt_instances.masks.masks ==
                ref.gt_instances.masks.masks).all()
        shapes.add(key.img_shape)
        flips.add(key.flip)
    assert len(shapes) > 1 and flips == {True, False}  # randomness used
    # control: without shared parameters the frames differ (checked before
    # packing, which cannot stack frames of different sizes)
    pipeline = [dict(p) for p in cfg.train_pipeline[:2]]
    pipeline[1]['share_random_params'] = False
    unshared = build(cfg.train_dataloader.dataset,
                     step_root.parent / 'still', pipeline=pipeline)
    differ = 0
    for frame in range(3):
        pair = unshared.prepare_data((0, frame))
        if pair is not None:
            a, b = pair['img']
            differ += a.shape != b.shape or not (a == b).all()
    assert differ > 0


def test_test_frame_has_panoptic_gt_at_original_size(step_root):
    cfg = Config.fromfile(str(TOY))
    ds = build(cfg.val_dataloader.dataset, step_root)
    sample = ds[(0, 2)]
    frame = sample['data_samples'][0]
    assert sample['inputs'].shape == (1, 3, 128, 256)
    assert frame.frame_id == 2 and frame.ori_shape == (128, 256)
    assert sample['data_samples'].key_frames_inds == [0]
    pan = frame.gt_panoptic_seg.sem_seg
    assert pan.dtype == torch.int64 and pan.shape == (1, 128, 256)
    # hand decoding of the PNG: model class + (G*256+B) * 1000 on things
    rgb = read_png(frame.img_path.replace('leftImg8bit', 'panoptic'))
    cls = np.vectorize(TO_MODEL.get)(rgb[..., 0].astype(int))
    ins = rgb[..., 1].astype(np.int64) * 256 + rgb[..., 2]
    expected = cls + np.where(cls < 6, ins, 0) * 1000
    assert (pan[0].numpy() == expected).all()
    assert (expected >= 1000).any()  # the frame has thing instances
    # preprocessing at test time: (N, T=1, C, H, W), panoptic GT not padded
    out = preprocessor(pad_size_divisor=96)(pseudo_collate([sample]))
    assert out['inputs'].shape == (1, 1, 3, 192, 288)
    det = out['data_samples'][0][0]
    assert det.gt_panoptic_seg.sem_seg.shape == (1, 128, 256)
    assert det.gt_sem_seg.sem_seg.shape == (1, 192, 288)
    # the config's evaluators score a perfect prediction 1.0
    det.pred_panoptic_seg = det.gt_panoptic_seg.clone()
    for metric_cfg in cfg.val_evaluator:
        metric = METRICS.build(metric_cfg)
        metric.process({}, [out['data_samples'][0].to_dict()])
        result = metric.compute_metrics(metric.results)
        # one frame: only the 1-frame window of VPQ has data
        key = 'STQ' if 'STQ' in result else 'VPQ@1'
        assert result[key] == pytest.approx(1.0)


def test_pack_puts_key_frame_first():
    pack = TRANSFORMS.build(dict(type='PackVideoSegInputs'))
    results = dict(
        img=[np.zeros((2, 3, 3), np.uint8), np.ones((2, 3, 3), np.uint8)],
        img_id=[7, 8], frame_id=[3, 5],
        gt_seg_map=[np.full((2, 3), 1, np.uint8),
                    np.full((2, 3), 2, np.uint8)],
        key_frame_flags=[False, True])
    packed = pack(results)
    track = packed['data_samples']
    assert track.key_frames_inds == [0] and track.ref_frames_inds == [1]
    assert [f.frame_id for f in track] == [5, 3]
    assert packed['inputs'][0].max() == 1 and packed['inputs'][1].max() == 0
    assert track[0].gt_sem_seg.sem_seg.unique().tolist() == [2]
    assert 'default_meta_keys' in repr(pack)
    with pytest.raises(ValueError, match='gt_seg_map.*1 frames'):
        pack(dict(results, gt_seg_map=[results['gt_seg_map'][0]]))


def test_kitti_step_and_cityscapes_bases_build(step_root, tmp_path):
    cfg = Config.fromfile(
        str(REPO / 'configs/det/_base_/datasets/kitti_step_vps.py'))
    train = build(cfg.train_dataloader.dataset, step_root)
    assert train.num_all_imgs == 8 and train.metainfo['thing_ids'] == (11,
                                                                       13)
    assert cfg.train_dataloader.sampler.type == 'TrackImgSampler'
    val = build(cfg.val_dataloader.dataset, step_root)
    frame = val[(0, 0)]['data_samples'][0]
    # synthetic ids 0..10 read with KITTI's 19 classes are all stuff there:
    # trainIds 0..10 -> model 2..12 (things 11, 13 come first), no instance
    values = set(frame.gt_panoptic_seg.sem_seg.unique().tolist())
    assert values and values <= set(range(2, 13)) | {255}
    assert [m['type'] for m in cfg.val_evaluator] == ['STQMetric',
                                                      'VPQMetric']
    assert tuple(cfg.val_evaluator[0]['thing_ids']) == (0, 1)

    cs = Config.fromfile(
        str(REPO / 'configs/det/_base_/datasets/cityscapes_step.py'))
    stem = 'aachen_000000_000019'
    semantic = np.zeros((4, 6), np.uint8)
    semantic[:2, :2] = 13
    instance = semantic.astype(np.uint16)
    instance[:2, :2] = 13000
    for split in ('train', 'val'):
        write_png(tmp_path / 'leftImg8bit' / split / 'aachen' /
                  f'{stem}_leftImg8bit.png', np.zeros((4, 6, 3), np.uint8))
        gt = tmp_path / 'gtFine' / split / 'aachen'
        write_png(gt / f'{stem}_gtFine_labelTrainIds.png', semantic)
        write_png(gt / f'{stem}_gtFine_instanceTrainIds.png', instance)
    assert len(build(cs.train_dataloader.dataset, tmp_path)) == 1
    sample = build(cs.val_dataloader.dataset, tmp_path)[0]
    det = sample['data_samples']
    # car k=0 -> model class 1, instance number k+1; road -> model 2
    assert det.gt_panoptic_seg.sem_seg[0, :2, :2].unique().tolist() == [1001]
    assert det.gt_panoptic_seg.sem_seg[0, 3, 5] == 2
    assert det.gt_sem_seg.sem_seg[0, 3, 5] == 2
    metric = METRICS.build(cs.val_evaluator)
    det.pred_panoptic_seg = det.gt_panoptic_seg.clone()
    metric.process({}, [det.to_dict()])
    assert metric.compute_metrics(metric.results)['VPQ'] == pytest.approx(1)


def test_missing_video_data_names_its_dataset_md_section(tmp_path):
    from knet.datasets.data_checks import find_data_problems, format_problems
    for base, section in (('kitti_step_vps.py', 'KITTI-STEP'),
                          ('vipseg_vps.py', 'VIP-Seg'),
                          ('cityscapes_step.py', 'Cityscapes-STEP')):
        cfg = Config.fromfile(str(REPO / 'configs/det/_base_/datasets' /
                                  base))
        cfg.test_dataloader.dataset.data_root = str(tmp_path / 'absent')
        problems = find_data_problems(cfg)
        assert [p.section for p in problems] == [section], base
        assert f"'{section}'" in format_problems(problems)
