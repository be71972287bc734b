# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The synthetic COCO instance / panoptic files work with mmdet's classes."""
import json

import mmcv
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils

from knet.datasets.synthetic import (SYNTHETIC_CLASSES,
                                     SYNTHETIC_STUFF_CLASSES,
                                     SYNTHETIC_THING_CLASSES, category_id,
                                     get_metainfo)

NUM_THINGS = len(SYNTHETIC_THING_CLASSES)


def _rgb2id(png: np.ndarray) -> np.ndarray:
    png = png.astype(np.int64)
    return png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]


def _instance_dataset(root, split='train'):
    from mmdet.datasets import CocoDataset
    init_default_scope('mmdet')
    return CocoDataset(
        data_root=str(root / 'coco'),
        ann_file=f'annotations/instances_{split}.json',
        data_prefix=dict(img=f'{split}/'),
        metainfo=get_metainfo('coco'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs')
        ])


def _panoptic_dataset(root, split='train', test_mode=False):
    from mmdet.datasets import CocoPanopticDataset
    init_default_scope('mmdet')
    return CocoPanopticDataset(
        data_root=str(root / 'coco'),
        ann_file=f'annotations/panoptic_{split}.json',
        data_prefix=dict(
            img=f'{split}/', seg=f'annotations/panoptic_{split}/'),
        metainfo=get_metainfo('panoptic'),
        test_mode=test_mode,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(
                type='LoadPanopticAnnotations',
                with_bbox=True,
                with_mask=True,
                with_seg=True),
            dict(
                type='PackDetInputs',
                meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                           'scale_factor', 'seg_map_path', 'segments_info'))
        ])


def test_metainfo_and_category_ids(synthetic_root):
    """Categories: sparse ids, things then stuff, the exported names."""
    pan = json.loads(
        (synthetic_root / 'coco/annotations/panoptic_train.json').read_text())
    ins = json.loads(
        (synthetic_root / 'coco/annotations/instances_train.json').read_text())
    assert [c['name'] for c in pan['categories']] == list(SYNTHETIC_CLASSES)
    assert [c['isthing'] for c in pan['categories']
            ] == [1] * NUM_THINGS + [0] * len(SYNTHETIC_STUFF_CLASSES)
    assert [c['name']
            for c in ins['categories']] == list(SYNTHETIC_THING_CLASSES)
    ids = [c['id'] for c in pan['categories']]
    assert ids != list(range(len(ids))) and ids != list(range(1, len(ids) + 1))
    meta = get_metainfo('panoptic')
    assert meta['classes'] == meta['thing_classes'] + meta['stuff_classes']
    assert len(meta['palette']) == len(meta['classes'])


def test_json_matches_pngs_and_instances(synthetic_root):
    """Panoptic json matches the PNGs; instance RLEs equal thing segments."""
    ann_dir = synthetic_root / 'coco/annotations'
    pan = json.loads((ann_dir / 'panoptic_train.json').read_text())
    ins = json.loads((ann_dir / 'instances_train.json').read_text())
    by_image = {}
    for a in ins['annotations']:
        by_image.setdefault(a['image_id'], []).append(a)
    n_crowd = n_void = 0
    for ann in pan['annotations']:
        ids = _rgb2id(
            mmcv.imread(
                str(ann_dir / 'panoptic_train' / ann['file_name']),
                channel_order='rgb'))
        n_void += int((ids == 0).any())
        assert set(np.unique(ids)) - {0} == {
            s['id']
            for s in ann['segments_info']
        }
        things = []
        for s in ann['segments_info']:
            mask = ids == s['id']
            assert s['area'] == mask.sum() > 0
            ys, xs = np.nonzero(mask)
            assert s['bbox'] == [
                xs.min(),
                ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1
            ]
            if s['category_id'] <= 100:  # thing ids are < 100, stuff ids 101..
                things.append((s, mask))
        inst = by_image.get(ann['image_id'], [])
        assert len(inst) == len(things)
        for (s, mask), a in zip(things, inst):
            seg = a['segmentation']
            if isinstance(seg['counts'], list):  # uncompressed (crowd)
                seg = mask_utils.frPyObjects(seg, *seg['size'])
            rle = seg
            assert np.array_equal(mask_utils.decode(rle).astype(bool), mask)
            for key in ('category_id', 'iscrowd', 'area', 'bbox'):
                assert a[key] == s[key]
            n_crowd += a['iscrowd']
    assert n_crowd > 0, 'the split should contain crowd things'
    assert n_void > 0, 'the split should contain VOID pixels'


def test_coco_instance_dataset_loads(synthetic_root):
    """CocoDataset: sparse cat ids, decoded masks, crowd -> ignored."""
    ds = _instance_dataset(synthetic_root)
    assert ds.cat2label == {
        category_id(n): i
        for i, n in enumerate(SYNTHETIC_THING_CLASSES)
    }
    assert len(ds) == 24
    seen_crowd = False
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        item = ds[idx]
        sample = item['data_samples']
        gt = sample.gt_instances
        n_valid = sum(1 for i in info['instances'] if not i['ignore_flag'])
        assert len(gt) == n_valid and gt.masks.masks.shape[1:] == (128, 128)
        assert gt.masks.masks.sum(axis=(1, 2)).min() > 0
        assert int(gt.labels.max()) < NUM_THINGS
        seen_crowd |= len(sample.ignored_instances) > 0
        assert item['inputs'].shape == (3, 128, 128)
    assert seen_crowd


def test_coco_panoptic_dataset_loads(synthetic_root):
    """CocoPanopticDataset: masks, stuff labels, VOID = 255, crowd."""
    ds = _panoptic_dataset(synthetic_root)
    assert len(ds) == 24
    seen_void = seen_crowd = False
    for idx in range(len(ds)):
        sample = ds[idx]['data_samples']
        ids = _rgb2id(mmcv.imread(sample.seg_map_path, channel_order='rgb'))
        sem = sample.gt_sem_seg.sem_seg[0].numpy()
        gt = sample.gt_instances
        segs = sample.segments_info
        thing_segs = [s for s in segs if s['is_thing']]
        assert len(gt) == len(thing_segs)
        for s, m, label in zip(thing_segs, gt.masks.masks, gt.labels.tolist()):
            assert np.array_equal(m.astype(bool), ids == s['id'])
            assert label == s['category'] < NUM_THINGS
        for s in segs:
            values = np.unique(sem[ids == s['id']])
            assert values.tolist() == [s['category']]
            if s['category'] >= NUM_THINGS:
                assert not s['is_thing']
            elif not s['is_thing']:  # thing class but not a thing: crowd
                seen_crowd = True
        assert np.all(sem[ids == 0] == 255)
        assert set(np.unique(sem).tolist()) <= set(
            range(len(SYNTHETIC_CLASSES))) | {255}
        seen_void |= bool((ids == 0).any())
        assert (sem >= NUM_THINGS).any() and (sem
                                              < len(SYNTHETIC_CLASSES)).any()
    assert seen_void and seen_crowd


def test_panoptic_metric_gt_as_prediction_is_perfect(synthetic_root):
    """CocoPanopticMetric gives the ground truth itself PQ 100."""
    pytest.importorskip('panopticapi')
    from mmdet.evaluation import CocoPanopticMetric
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    ds = _panoptic_dataset(synthetic_root, 'val', test_mode=True)
    metric = CocoPanopticMetric(
        ann_file=str(synthetic_root / 'coco/annotations/panoptic_val.json'),
        seg_prefix=str(synthetic_root / 'coco/annotations/panoptic_val'),
        nproc=1)
    metric.dataset_meta = ds.metainfo
    num_classes = len(SYNTHETIC_CLASSES)
    for idx in range(len(ds)):
        sample = ds[idx]['data_samples']
        ids = _rgb2id(mmcv.imread(sample.seg_map_path, channel_order='rgb'))
        pan = np.full(ids.shape, num_classes, np.int64)
        for k, s in enumerate(sample.segments_info):
            pan[ids == s['id']] = s['category'] + (k + 1) * INSTANCE_OFFSET
        metric.process({}, [
            dict(
                img_id=sample.img_id,
                img_path=sample.img_path,
                ori_shape=sample.ori_shape,
                pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None]))
        ])
    res = metric.evaluate(len(ds))
    assert res['coco_panoptic/PQ'] == pytest.approx(100.0)
    assert res['coco_panoptic/PQ_st'] == pytest.approx(100.0)


def test_instance_metric_gt_as_prediction_is_perfect(synthetic_root):
    """CocoMetric gives the ground truth itself mask / box mAP 1.0."""
    from mmdet.evaluation import CocoMetric
    ds = _instance_dataset(synthetic_root, 'val')
    metric = CocoMetric(
        ann_file=str(synthetic_root / 'coco/annotations/instances_val.json'),
        metric=['bbox', 'segm'])
    metric.dataset_meta = ds.metainfo
    for idx in range(len(ds)):
        sample = ds[idx]['data_samples']
        gt = sample.gt_instances
        pred = dict(
            bboxes=gt.bboxes.tensor,
            labels=gt.labels,
            scores=torch.ones(len(gt)),
            masks=torch.from_numpy(gt.masks.masks.astype(bool)))
        metric.process({}, [
            dict(
                img_id=sample.img_id,
                ori_shape=sample.ori_shape,
                pred_instances=pred)
        ])
    res = metric.evaluate(len(ds))
    assert res['coco/segm_mAP'] == pytest.approx(1.0)
    assert res['coco/bbox_mAP'] == pytest.approx(1.0)
