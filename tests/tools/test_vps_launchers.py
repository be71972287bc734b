# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net launchers: the toy VPS model trained by tools/dist_train.sh
with 2 CPU processes (gloo DDP) from a missing data folder, resumed, then
tested by tools/dist_step_test.sh with the sequences split across ranks."""
import json
import os
import os.path as osp
import random
import re
import subprocess

import cv2
import pytest

from knet.utils.checkpoint_compat import safe_torch_load

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VPS_CFG = 'configs/toy/video_knet_s3_r18_toy-vps.py'
# tiny synthetic STEP data: 2 train / 2 val videos (one per test rank) of
# 3 frames, 64x128 (the train pipeline is shrunk to match below)
NUM_VAL, NUM_FRAMES, HEIGHT, WIDTH = 2, 3, 64, 128


def _options(data: str, iters: int) -> list:
    """--cfg-options: tiny data in ``data``, batch 1, ``iters`` iterations,
    one checkpoint at the end, every iteration logged."""
    opts = [
        f'data_root={data}/', f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters + 1}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1', 'log_processor.window_size=1',
        'param_scheduler=[]', 'synthetic_data.num_train=2',
        f'synthetic_data.num_val={NUM_VAL}',
        f'synthetic_data.num_frames={NUM_FRAMES}',
        f'synthetic_data.size=({HEIGHT},{WIDTH})',
        'train_dataloader.batch_size=1'
    ]
    opts += _small_train_frames()
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return opts


def _small_train_frames() -> list:
    """--cfg-options resizing and cropping the training pairs to the tiny
    frames (the toy's pipeline works on 128x256)."""
    from mmengine.config import Config
    pipeline = Config.fromfile(osp.join(
        REPO, VPS_CFG)).train_dataloader.dataset.pipeline
    outer = [i for i, t in enumerate(pipeline)
             if t['type'] == 'TransformBroadcaster']
    assert len(outer) == 1, f'{VPS_CFG}: train pipeline changed, update me'
    key = f'train_dataloader.dataset.pipeline.{outer[0]}.transforms'
    inner = {t['type']: i
             for i, t in enumerate(pipeline[outer[0]]['transforms'])}
    return [f'{key}.{inner["RandomResize"]}.scale=({WIDTH},{HEIGHT})',
            f'{key}.{inner["RandomCrop"]}.crop_size=({WIDTH},{HEIGHT})']


def _run(cmd: list, port: int, timeout: int = 600) -> str:
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(port))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _train_losses(ckpt: str) -> list:
    """``train/loss`` of every iteration so far (the checkpoint's message
    hub keeps the history across resumes)."""
    hub = safe_torch_load(ckpt, map_location='cpu')['message_hub']
    return list(hub['log_scalars']['train/loss'].data[0])


@pytest.mark.dist
@pytest.mark.slow
def test_dist_vps_train_resume_and_step_test_on_cpu(tmp_path):
    data = str(tmp_path / 'fresh' / 'step')  # missing: generated at start
    work = str(tmp_path / 'work')
    port = random.randint(20000, 40000)
    log = _run(['bash', 'tools/dist_train.sh', VPS_CFG, '2', '--work-dir',
                work, '--cfg-options', *_options(data, 2)], port)
    # the two ranks: one generates under the lock, the other waits
    assert log.count(f'{data} generated') == 1, log[-3000:]
    assert log.count(f'{data} complete') == 1, log[-3000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'CPUDistributedDataParallel' in log
    ckpt2 = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt2)
    assert not [f for f in os.listdir(work) if f.endswith('.tmp')]
    # joint training: losses of the key frame, of the reference frame
    # (``_ref``) and of the association embedding
    keys = set(re.findall(r'\s(\w+): [-\d.]+',
                          log.split('Iter(train) [1/2]')[1].split('\n')[0]))
    assert {'loss_track', 'loss_track_aux', 's2_loss_mask',
            's2_loss_mask_ref'} <= keys, sorted(keys)
    losses2 = _train_losses(ckpt2)
    assert len(losses2) == 2

    # resume: iteration 3 continues from the state saved at iteration 2
    log = _run(['bash', 'tools/dist_train.sh', VPS_CFG, '2', '--work-dir',
                work, '--resume', ckpt2, '--cfg-options',
                *_options(data, 4)], port + 1)
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    assert log.count(f'{data} generated') == 0
    ckpt4 = osp.join(work, 'iter_4.pth')
    state = safe_torch_load(ckpt4, map_location='cpu')
    assert state['meta']['iter'] == 4
    # AdamW's step counters went on from 2 (a fresh optimizer would say 2)
    steps = {int(s['step']) for s in state['optimizer']['state'].values()}
    assert max(steps) == 4, steps
    # the loss history of iterations 1-2 came back with the message hub
    losses4 = _train_losses(ckpt4)
    assert len(losses4) == 4
    assert losses4[:2] == pytest.approx(losses2, rel=1e-6)
    assert all(v == v and abs(v) < 1e6 for v in losses4)

    # distributed video test: one val sequence per rank, each in order;
    # every frame's files and the scores of the whole split
    out = str(tmp_path / 'out')
    log = _run(['bash', 'tools/dist_step_test.sh', VPS_CFG, ckpt4, '2',
                '--show-dir', out, '--work-dir', str(tmp_path / 'test'),
                '--cfg-options', *_options(data, 4)], port + 2)
    val = sorted(f for f in os.listdir(osp.join(data, 'video_sequence',
                                                 'val'))
                 if f.endswith('_leftImg8bit.png'))
    frames = [tuple(int(x) for x in f.split('_')[:2]) for f in val]
    assert len(frames) == NUM_VAL * NUM_FRAMES
    assert len({seq for seq, _ in frames}) == NUM_VAL
    for seq, frame in frames:
        files = [osp.join(out, 'final', f'{seq:04d}', f'{frame:06d}.png')]
        files += [osp.join(out, 'panoptic', str(seq),
                           f'{seq:06d}_{frame:06d}_{kind}.png')
                  for kind in ('cat', 'ins')]
        for path in files:
            img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            assert img is not None, f'{path} missing'
            assert img.shape[:2] == (HEIGHT, WIDTH), path
    markers = os.listdir(osp.join(out, '.done'))
    assert len(markers) == NUM_VAL
    # each rank ran one 3-frame sequence in order (rank 0 logs its own
    # iterations); the writer gathered the frames of both ranks
    assert f'Iter(test) [{NUM_FRAMES}/{NUM_FRAMES}]' in log, log[-3000:]
    assert f'Iter(test) [{len(frames)}/' not in log
    assert f'vps_files/frames_written: {len(frames)}' in log, log[-3000:]
    with open(osp.join(out, 'metrics.json')) as f:
        scores = json.load(f)
    for key in ('STQ', 'AQ', 'SQ', 'VPQ'):
        assert 0.0 <= scores[key] <= 1.0, (key, scores[key])
    per_seq = {int(k): v['num_frames']
               for k, v in scores['per_sequence'].items()}
    assert per_seq == {seq: NUM_FRAMES for seq, _ in frames}
