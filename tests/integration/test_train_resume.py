# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""A small panoptic K-Net trains on generated COCO-panoptic data through
mmengine's Runner on CPU: the loss goes down, a checkpoint is written and
training resumes from it."""
import glob
import os
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
    # a real K-Net Runner checkpoint loads with the safe, allow-listed
    # loader and needs nothing outside the allow-list
    from knet.utils.checkpoint_compat import (checkpoint_safe_globals,
                                              safe_torch_load)
    allowed = {item[1] if isinstance(item, tuple) else
               f'{item.__module__}.{item.__qualname__}'
               for item in checkpoint_safe_globals()}
    needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(ckpt))
    assert needed <= allowed, needed - allowed
    saved = safe_torch_load(ckpt, map_location='cpu')
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


def _toy_test_cfg(tmp_path) -> str:
    """A toy panoptic config on tiny generated data, dumped to a file."""
    data = make_coco(str(tmp_path / 'data'), num_train=2, num_val=2)
    cfg = toy_det_cfg('knet_s3_r18_fpn_toy-panoptic.py', data,
                      str(tmp_path / 'work'), 1)
    path = str(tmp_path / 'toy_cfg.py')
    cfg.dump(path)
    return path


@pytest.mark.slow
def test_test_tool_refuses_crafted_and_broken_checkpoints(tmp_path):
    import importlib.util

    from knet.utils.checkpoint_compat import (CorruptCheckpointError,
                                              UnsafeCheckpointError)

    from .toy_utils import REPO
    spec = importlib.util.spec_from_file_location(
        'knet_test_tool', osp.join(REPO, 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = _toy_test_cfg(tmp_path)
    marker = str(tmp_path / 'PWNED')

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}', )

    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'x': Payload()}}, evil)
    empty = str(tmp_path / 'empty.pth')
    open(empty, 'wb').close()
    for ckpt, error, words in (
            (evil, UnsafeCheckpointError, ('system', '--unsafe-load')),
            (empty, CorruptCheckpointError, ('empty', ))):
        with pytest.raises(error) as err:
            tool.main([cfg, ckpt, '--work-dir', str(tmp_path / 'test_work')])
        msg = str(err.value)
        assert ckpt in msg and all(w in msg for w in words), msg
        assert not osp.exists(marker)
