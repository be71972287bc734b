# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The README's custom-dataset example (18 classes, COCO format) trains by
config alone."""
import json
import os
import os.path as osp
import shutil

from mmengine.config import Config
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EXAMPLE = osp.join(REPO, 'configs/examples/knet_s3_r50_fpn_1x_custom-18cls.py')


def _make_18_class_coco(root: str) -> None:
    """Synthetic COCO images relabelled into 18 categories with sparse ids."""
    from knet.datasets.synthetic import generate
    src = generate('coco', osp.join(root, 'src'), seed=1, num_train=4,
                   num_val=2, size=(64, 64), progress=False)
    os.makedirs(osp.join(root, 'annotations'))
    os.makedirs(osp.join(root, 'images'))
    cats = [dict(id=10 + 3 * i, name=f'c{i:02d}') for i in range(18)]
    for split, out in (('train', 'train'), ('val', 'val')):
        with open(osp.join(src, 'annotations', f'instances_{split}.json')) as f:
            data = json.load(f)
        for img in data['images']:
            name = f'{split}_{img["file_name"]}'
            shutil.copy(osp.join(src, split, img['file_name']),
                        osp.join(root, 'images', name))
            img['file_name'] = name
        for i, ann in enumerate(data['annotations']):
            ann['category_id'] = cats[(ann['category_id'] * 7 + i) % 18]['id']
        data['categories'] = cats
        with open(osp.join(root, 'annotations', f'{out}.json'), 'w') as f:
            json.dump(data, f)


def test_eighteen_class_example_trains(tmp_path):
    root = str(tmp_path / 'my_coco')
    _make_18_class_coco(root)
    cfg = Config.fromfile(EXAMPLE)
    # the example as written, only pointed at the temporary data and shrunk
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root + '/'
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
        cfg[key].batch_size = 2
    cfg.val_evaluator.ann_file = osp.join(root, 'annotations/val.json')
    cfg.test_evaluator = cfg.val_evaluator
    cfg.model.backbone.update(depth=18, init_cfg=None)
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2,
                         val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2,
                                        by_epoch=False)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler')
    cfg.train_dataloader.pop('batch_sampler', None)
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset.metainfo['classes']) == 18
    runner.train()
    model = runner.model
    assert model.roi_head.mask_head[2].fc_cls.out_features == 18
    assert model.rpn_head.conv_seg.out_channels == 18
    assert osp.isfile(osp.join(cfg.work_dir, 'iter_2.pth'))
    metrics = runner.val_loop.evaluator.metrics[0]
    assert len(metrics.dataset_meta['classes']) == 18
