# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""DataLoader workers of K-Net runs die with the training process
(``kill -9``) and are seeded exactly as mmengine seeds them."""
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import worker_init_fn as mmengine_init

import knet  # noqa: F401
from knet.engine import dataloader_workers
from knet.engine.checkpoint_resume import use_knet_checkpoint_hook
from knet.engine.dataloader_workers import (knet_worker_init_fn,
                                            wire_worker_init)
from knet.engine.runner import STARTUP_CHECKS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _draws():
    return (np.random.rand(), random.random(), torch.rand(1).item())


def test_seeding_matches_mmengine(monkeypatch):
    monkeypatch.setattr(dataloader_workers, 'die_with_parent', lambda: True)
    mmengine_init(1, num_workers=2, rank=0, seed=5)
    want = _draws()
    knet_worker_init_fn(1, num_workers=2, seed=5)
    assert _draws() == want


def test_startup_check_wires_loaders_with_workers():
    cfg = Config(dict(
        randomness=dict(seed=7),
        train_dataloader=dict(num_workers=2, dataset=dict(type='X')),
        val_dataloader=dict(num_workers=0, dataset=dict(type='X')),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook'))))
    assert wire_worker_init in STARTUP_CHECKS
    assert use_knet_checkpoint_hook in STARTUP_CHECKS
    wire_worker_init(cfg)
    use_knet_checkpoint_hook(cfg)
    assert cfg.train_dataloader.worker_init_fn == dict(
        type='knet_worker_init_fn', num_workers=2, seed=7,
        diff_rank_seed=False, disable_subprocess_warning=False)
    assert 'worker_init_fn' not in cfg.val_dataloader
    assert cfg.default_hooks.checkpoint.type == 'KNetCheckpointHook'


_SCRIPT = textwrap.dedent('''
    import os, sys, time
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    from torch.utils.data import Dataset
    import knet
    from knet.engine.dataloader_workers import wire_worker_init

    class Busy(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            if i >= 2:  # a worker busy in __getitem__ (no watchdog check)
                open({pids!r} + str(os.getpid()), 'w').close()
                time.sleep(120)
            return torch.zeros(1)

    cfg = Config(dict(randomness=dict(seed=0), train_dataloader=dict(
        batch_size=1, num_workers=2, persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=False))))
    wire_worker_init(cfg)
    loader_cfg = cfg.train_dataloader.to_dict()
    loader_cfg['dataset'] = Busy()
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    for batch in loader:
        pass
''')


def _alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_workers_die_with_killed_parent(tmp_path):
    pids = str(tmp_path / 'pid_')
    script = tmp_path / 'load.py'
    script.write_text(_SCRIPT.format(pids=pids))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    found = []
    while len(found) < 2:
        found = [f for f in os.listdir(tmp_path) if f.startswith('pid_')]
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, 'the workers never started'
        time.sleep(0.1)
    workers = [int(f[4:]) for f in found]
    assert all(_alive(p) for p in workers)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    deadline = time.time() + 3  # torch's own watchdog would need >= 5 s
    while any(_alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.05)
    survivors = [p for p in workers if _alive(p)]
    for pid in survivors:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f'workers {survivors} outlived their parent'


@pytest.mark.parametrize('name', [
    'det/knet/knet_s3_r50_fpn_1x_coco-panoptic.py',
    'seg/knet/knet_s3_upernet_r50-d8_80k_adamw_ade20k.py',
    'toy/knet_s3_r18_fpn_toy-instance.py',
    'toy/knet_s3_fcn_r18_toy-semantic.py'])
def test_knet_configs_get_safe_hook_and_workers(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    assert cfg.runner_type == 'KNetRunner'
    assert cfg.default_hooks.checkpoint.type == 'KNetCheckpointHook'
    wire_worker_init(cfg)
    init = cfg.train_dataloader.worker_init_fn
    assert init.type == 'knet_worker_init_fn'
    assert init.num_workers == cfg.train_dataloader.num_workers
