# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""A small panoptic K-Net trains on generated COCO-panoptic data through
mmengine's Runner on CPU: the loss goes down, a checkpoint is written and
training resumes from it."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from .toy_utils import make_coco, toy_det_cfg


class _LossRecorder:
    """Collects the total loss of every training iteration."""

    def __init__(self):
        self.losses = []

    def __call__(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss']))


def _run(cfg, record=None):
    runner = Runner.from_cfg(cfg)
    if record is not None:
        from mmengine.hooks import Hook

        class Rec(Hook):
            def after_train_iter(self, runner, batch_idx, data_batch=None,
                                 outputs=None):
                record(runner, batch_idx, data_batch, outputs)

        runner.register_hook(Rec(), priority='LOWEST')
    runner.train()
    return runner


@pytest.mark.slow
def test_panoptic_trains_saves_and_resumes(tmp_path):
    data = make_coco(str(tmp_path / 'data'), num_train=4, num_val=2)
    work = str(tmp_path / 'work')
    cfg = toy_det_cfg('knet_s3_r18_fpn_toy-panoptic.py', data, work, 30)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=False)
    cfg.optim_wrapper.optimizer.lr = 1e-3
    cfg.randomness = dict(seed=0, deterministic=False)
    rec = _LossRecorder()
    runner = _run(cfg, rec)
    assert len(rec.losses) == 30
    assert all(torch.isfinite(torch.tensor(rec.losses)))
    first, last = sum(rec.losses[:5]) / 5, sum(rec.losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    ckpt = osp.join(work, 'iter_30.pth')
    assert osp.isfile(ckpt)
    assert not glob.glob(osp.join(work, '.*.tmp'))
    assert runner.iter == 30
    saved = torch.load(ckpt, weights_only=False)
    assert saved['meta']['iter'] == 30
    assert 'message_hub' in saved and 'optimizer' in saved

    # resume from the checkpoint and go on to iteration 34
    cfg2 = toy_det_cfg('knet_s3_r18_fpn_toy-panoptic.py', data, work, 34)
    cfg2.resume = True
    cfg2.load_from = ckpt
    rec2 = _LossRecorder()
    runner2 = _run(cfg2, rec2)
    assert len(rec2.losses) == 4  # iterations 31..34 only
    assert runner2.iter == 34
    assert osp.isfile(osp.join(work, 'iter_34.pth'))
