# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Launchers: 2-process CPU training with torchrun (gloo), resume,
distributed evaluation equal to a single-process one, --amp on CPU, and
usage errors instead of stack traces."""
import json
import os
import os.path as osp
import random
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAN_CFG = 'configs/toy/knet_s3_r18_fpn_toy-panoptic.py'


# the tiny synthetic data of these tests: what the start-up check generates
# into a missing data_root, and what the tiny_coco fixture writes up front
TINY_DATA = dict(num_train=4, num_val=4, size=(64, 64))


def _data_options(data: str, iters: int):
    opts = [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters + 1}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1', 'log_processor.window_size=1',
        'param_scheduler=[]', 'synthetic_data.num_train=4',
        'synthetic_data.num_val=4', 'synthetic_data.size=(64,64)'
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [
            f'{loader}.dataset.data_root={data}/',
            f'{loader}.batch_size=1', f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False'
        ]
    for ev in ('val_evaluator', 'test_evaluator'):
        opts += [
            f'{ev}.ann_file={data}/annotations/panoptic_val.json',
            f'{ev}.seg_prefix={data}/annotations/panoptic_val/'
        ]
    return opts


def _run(cmd, env=None, timeout=900):
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def tiny_coco(tmp_path_factory):
    from knet.datasets.synthetic import generate
    root = tmp_path_factory.mktemp('data')
    generate('coco', str(root), seed=0, progress=False, **TINY_DATA)
    return str(root / 'coco')


def _metrics(work_dir: str) -> dict:
    """PQ numbers from the newest test run's json log."""
    runs = sorted(d for d in os.listdir(work_dir) if d[:1].isdigit())
    for run in reversed(runs):
        path = osp.join(work_dir, run, f'{run}.json')
        if osp.isfile(path):
            with open(path) as f:
                lines = [json.loads(x) for x in f if 'coco_panoptic/PQ' in x]
            if lines:
                return {k: v for k, v in lines[-1].items()
                        if k.startswith('coco_panoptic/')}
    raise AssertionError(f'no test metrics in {work_dir}')


@pytest.mark.dist
@pytest.mark.slow
def test_dist_train_resume_and_test_on_cpu(tmp_path):
    # no data beforehand: the start-up check of the two ranks generates it
    # once (one rank under the lock, the other waits)
    tiny_coco = str(tmp_path / 'fresh' / 'coco')
    work = str(tmp_path / 'work')
    port = str(random.randint(20000, 40000))
    opts = _data_options(tiny_coco, 2)
    log = _run(['bash', 'tools/dist_train.sh', PAN_CFG, '2', '--work-dir',
                work, '--cfg-options', *opts], env={'PORT': port})
    assert log.count(f'{tiny_coco} generated') == 1, log[-3000:]
    assert log.count(f'{tiny_coco} complete') == 1, log[-3000:]
    assert osp.isfile(osp.join(tiny_coco, 'meta.json'))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)
    assert not [f for f in os.listdir(work) if f.endswith('.tmp')]

    # resume: continues at iteration 3 up to 4
    opts4 = _data_options(tiny_coco, 4)
    log = _run(['bash', 'tools/dist_train.sh', PAN_CFG, '2', '--work-dir',
                work, '--resume', ckpt, '--cfg-options', *opts4],
               env={'PORT': str(int(port) + 1)})
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Iter(train) [3/4]' in log
    assert osp.isfile(osp.join(work, 'iter_4.pth'))

    # distributed test gathers both ranks: equal to a single process
    final = osp.join(work, 'iter_4.pth')
    test_opts = _data_options(tiny_coco, 4)
    dist_dir, single_dir = str(tmp_path / 'dist'), str(tmp_path / 'single')
    _run(['bash', 'tools/dist_test.sh', PAN_CFG, final, '2', '--work-dir',
          dist_dir, '--cfg-options', *test_opts],
         env={'PORT': str(int(port) + 2)})
    _run([sys.executable, 'tools/test.py', PAN_CFG, final, '--work-dir',
          single_dir, '--cfg-options', *test_opts])
    dist_m, single_m = _metrics(dist_dir), _metrics(single_dir)
    assert dist_m and dist_m == pytest.approx(single_m, abs=1e-6)


@pytest.mark.slow
def test_amp_trains_with_finite_losses_on_cpu(tiny_coco, tmp_path):
    work = str(tmp_path / 'amp')
    log = _run([sys.executable, 'tools/train.py', PAN_CFG, '--amp',
                '--work-dir', work, '--cfg-options',
                *_data_options(tiny_coco, 2)])
    assert 'CPUAmpOptimWrapper' in log
    with open(osp.join(work, sorted(
            d for d in os.listdir(work) if d[:1].isdigit())[-1],
            'vis_data', 'scalars.json')) as f:
        losses = [json.loads(x)['loss'] for x in f if '"loss"' in x]
    assert len(losses) == 2
    assert all(v == v and abs(v) < 1e6 for v in losses)


@pytest.mark.parametrize('cmd', [
    ['bash', 'tools/dist_train.sh'],
    ['bash', 'tools/dist_test.sh', 'cfg.py'],
    ['bash', 'tools/slurm_train.sh', 'p', 'job'],
    ['bash', 'tools/mim_slurm_train.sh', 'p', 'mmcv', 'cfg.py', 'w'],
    [sys.executable, 'tools/train.py', 'does/not/exist.py'],
    [sys.executable, 'tools/test.py', PAN_CFG, 'missing.pth'],
])
def test_wrong_arguments_print_usage(cmd):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert 'usage' in proc.stderr.lower() or 'must be' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_mim_train_mmdet_from_another_directory(tiny_coco, tmp_path):
    """`mim train mmdet CFG` finds the plugin through custom_imports alone."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['OMP_NUM_THREADS'] = '1'
    cfg = osp.join(REPO, PAN_CFG)
    proc = subprocess.run(
        [sys.executable, '-m', 'mim', 'train', 'mmdet', cfg, '--work-dir',
         str(tmp_path / 'w'), '--cfg-options', *_data_options(tiny_coco, 1)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert osp.isfile(tmp_path / 'w' / 'iter_1.pth')
