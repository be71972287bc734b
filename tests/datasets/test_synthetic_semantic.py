# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""ADE20K-style and VSPW-style files load through mmseg."""
import mmcv
import numpy as np
from mmengine.registry import init_default_scope

from knet.datasets.synthetic import SYNTHETIC_SEMANTIC_CLASSES, get_metainfo

K = len(SYNTHETIC_SEMANTIC_CLASSES)


def _seg_dataset(data_root, img_path, seg_path):
    from mmseg.datasets import BaseSegDataset
    init_default_scope('mmseg')
    return BaseSegDataset(
        data_root=str(data_root),
        data_prefix=dict(img_path=img_path, seg_map_path=seg_path),
        img_suffix='.png',
        seg_map_suffix='.png',
        reduce_zero_label=True,
        metainfo=get_metainfo('ade'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ])


def test_ade_dataset_and_pipeline(synthetic_root):
    """BaseSegDataset + LoadAnnotations: labels 0..K-1, raw 0 -> 255."""
    ds = _seg_dataset(synthetic_root / 'ade', 'images/training',
                      'annotations/training')
    assert len(ds) == 8
    assert ds.metainfo['classes'] == SYNTHETIC_SEMANTIC_CLASSES
    seen = set()
    any_void = False
    for idx in range(len(ds)):
        item = ds[idx]
        sample = item['data_samples']
        raw = mmcv.imread(sample.seg_map_path, flag='unchanged')
        assert raw.dtype == np.uint8 and raw.ndim == 2 and raw.max() <= K
        sem = sample.gt_sem_seg.data[0].numpy()
        assert item['inputs'].shape == (3, 128, 128)
        assert np.all(sem[raw == 0] == 255)
        assert np.array_equal(sem[raw > 0], raw[raw > 0].astype(sem.dtype) - 1)
        any_void |= bool((raw == 0).any())
        seen |= set(np.unique(sem).tolist()) - {255}
    assert any_void
    assert seen <= set(
        range(K)) and len(seen) >= K - 3  # most classes occur in 8 images
    val = _seg_dataset(synthetic_root / 'ade', 'images/validation',
                       'annotations/validation')
    assert len(val) == 2


def test_vspw_layout_and_loading(synthetic_root):
    """VSPW: split lists, paired origin / mask frames, mmseg loading."""
    root = synthetic_root / 'vspw'
    train = (root / 'train.txt').read_text().split()
    val = (root / 'val.txt').read_text().split()
    assert len(train) == 2 and len(val) == 1 and not set(train) & set(val)
    for name in train + val:
        origin = sorted(
            p.name for p in (root / 'data' / name / 'origin').iterdir())
        mask = sorted(
            p.name for p in (root / 'data' / name / 'mask').iterdir())
        assert origin == mask and len(origin) == 4
    ds = _seg_dataset(root, f'data/{train[0]}/origin', f'data/{train[0]}/mask')
    assert len(ds) == 4
    sems = [ds[i]['data_samples'].gt_sem_seg.data[0].numpy() for i in range(4)]
    for sem in sems:
        assert set(np.unique(sem).tolist()) <= set(range(K)) | {255}
    # consecutive frames of a video are similar (same scene, small motion)
    agree = np.mean([(a == b).mean() for a, b in zip(sems[:-1], sems[1:])])
    assert agree > 0.7
