# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Helpers shared by the integration tests: tiny synthetic data and shrunk
toy configs pointed at it."""
import os.path as osp

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'configs', 'toy')


def make_coco(root: str, num_train: int = 8, num_val: int = 4,
              size=(64, 64)) -> str:
    from knet.datasets.synthetic import generate
    generate('coco', root, seed=0, num_train=num_train, num_val=num_val,
             size=size, progress=False)
    return osp.join(root, 'coco')


def toy_det_cfg(name: str, data_root: str, work_dir: str,
                iters: int) -> Config:
    """A toy det config on ``data_root``, ``iters`` iterations, batch 2."""
    cfg = Config.fromfile(osp.join(TOY, name))
    cfg.work_dir = work_dir
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.dataset.data_root = data_root + '/'
        loader.batch_size = 2
        loader.num_workers = 0
        loader.persistent_workers = False
    for key in ('val_evaluator', 'test_evaluator'):
        ev = cfg[key]
        for field in ('ann_file', 'seg_prefix'):
            if field in ev:
                ev[field] = ev[field].replace('data/synthetic/coco',
                                              data_root)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = 1
    cfg.log_processor.window_size = 1
    cfg.param_scheduler = [
        dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
             end=iters)
    ]
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook')
    return cfg
