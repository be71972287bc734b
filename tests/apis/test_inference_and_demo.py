# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""mmdet's DetInferencer / mmseg's MMSegInferencer work with our configs
and weights, and tools/demo.py draws images, folders and videos."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAN_CFG = osp.join(REPO, 'configs/toy/knet_s3_r18_fpn_toy-panoptic.py')
INS_CFG = osp.join(REPO, 'configs/toy/knet_s3_r18_fpn_toy-instance.py')
SEM_CFG = osp.join(REPO, 'configs/toy/knet_s3_fcn_r18_toy-semantic.py')


def _save_random_checkpoint(config: str, path: str) -> None:
    """Random weights + the dataset meta the Runner would store."""
    cfg = Config.fromfile(config)
    scope = cfg.default_scope
    init_default_scope(scope)
    if scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    meta = dict(cfg.train_dataloader.dataset.metainfo)
    torch.save({'meta': {'dataset_meta': meta},
                'state_dict': model.state_dict()}, path)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('imgs')
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(96, 128), (80, 72)]):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        path = str(folder / f'img{i}.png')
        cv2.imwrite(path, img)
        paths.append(path)
    return str(folder), paths


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('ckpt')
    out = {}
    for name, cfg in (('pan', PAN_CFG), ('ins', INS_CFG), ('sem', SEM_CFG)):
        out[name] = str(folder / f'{name}.pth')
        _save_random_checkpoint(cfg, out[name])
    return out


def test_det_inferencer_panoptic_map_has_input_size(images, checkpoints):
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(
        model=PAN_CFG, weights=checkpoints['pan'], device='cpu',
        show_progress=False)
    _, paths = images
    result = inferencer(paths, return_datasamples=True)
    for path, sample in zip(paths, result['predictions']):
        h, w = cv2.imread(path).shape[:2]
        pan = sample.pred_panoptic_seg.sem_seg
        assert pan.shape == (1, h, w)
        # ids are label + k * 1000; labels are classes or VOID (11)
        assert int((pan % 1000).max()) <= 11


def test_det_inferencer_instances(images, checkpoints):
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(
        model=INS_CFG, weights=checkpoints['ins'], device='cpu',
        show_progress=False)
    result = inferencer(images[1][0], return_datasamples=True)
    inst = result['predictions'][0].pred_instances
    assert inst.masks.shape[1:] == (96, 128)
    assert inst.bboxes.shape == (30, 4)
    assert int(inst.labels.max()) < 6


def test_mmseg_inferencer(images, checkpoints):
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(
        model=SEM_CFG, weights=checkpoints['sem'], device='cpu')
    sample = inferencer(images[1][1], return_datasamples=True)
    assert sample.pred_sem_seg.data.shape == (1, 80, 72)


def _demo(args):
    proc = subprocess.run([sys.executable, 'tools/demo.py', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_demo_folder_and_video(images, checkpoints, tmp_path):
    folder, paths = images
    out = str(tmp_path / 'pan')
    stdout = _demo([folder, PAN_CFG, checkpoints['pan'], '--out', out])
    assert 'img0.png:' in stdout and 'segments' in stdout
    drawn = sorted(os.listdir(osp.join(out, 'vis')))
    assert drawn == ['img0.png', 'img1.png']
    vis = cv2.imread(osp.join(out, 'vis', 'img0.png'))
    assert vis.shape[:2] == (96, 128)
    # raw predictions: mmdet's json + the COCO-panoptic RGB-id PNG
    assert sorted(os.listdir(osp.join(out, 'preds'))) == [
        'img0.json', 'img0_panoptic_seg.png', 'img1.json',
        'img1_panoptic_seg.png'
    ]
    pan = cv2.imread(osp.join(out, 'preds', 'img1_panoptic_seg.png'))
    assert pan.shape[:2] == (80, 72)
    assert f'raw predictions written to {osp.join(out, "preds")}' in stdout

    video = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 5,
                             (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    out_v = str(tmp_path / 'sem')
    stdout = _demo([video, SEM_CFG, checkpoints['sem'], '--out', out_v])
    assert len(os.listdir(osp.join(out_v, 'vis'))) == 3
    assert '000002.png:' in stdout
    preds = sorted(os.listdir(osp.join(out_v, 'pred')))
    assert preds == ['000000.png', '000001.png', '000002.png']
    seg = cv2.imread(osp.join(out_v, 'pred', '000002.png'),
                     cv2.IMREAD_UNCHANGED)
    assert seg.shape == (48, 64) and seg.dtype == np.uint8
    assert int(seg.max()) < 11  # class indices of the 11-class toy


def test_demo_refuses_checkpoint_of_another_model(images, checkpoints,
                                                  tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'knet_demo_tool', osp.join(REPO, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    folder, _ = images
    args = [folder, PAN_CFG, checkpoints['sem'], '--out', str(tmp_path)]
    assert demo.main(args) == 1  # the exit status of tools/demo.py
    err = capsys.readouterr().err
    assert f'error: checkpoint {checkpoints["sem"]} does not match' in err
    assert 'missing in checkpoint (' in err
    assert not osp.exists(osp.join(tmp_path, 'vis'))
    # --allow-partial runs it anyway
    assert demo.main([*args, '--allow-partial']) == 0
    assert sorted(os.listdir(osp.join(tmp_path, 'vis'))) == \
        ['img0.png', 'img1.png']


def test_checked_inferencer_refuses_other_model(checkpoints):
    from knet.engine.checkpoint_match import build_checked_inferencer
    from knet.utils.checkpoint_convert import CheckpointMismatchError
    with pytest.raises(CheckpointMismatchError, match='unexpected in '
                       r'checkpoint \(\d+\)'):
        build_checked_inferencer(SEM_CFG, checkpoints['ins'])
    inferencer = build_checked_inferencer(SEM_CFG, checkpoints['sem'])
    assert inferencer.model.dataset_meta['classes'][0] == 'sky'


def test_demo_rejects_missing_input(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/demo.py', 'nope.png', PAN_CFG, 'x.pth',
         '--out', str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and 'input not found: nope.png' in proc.stderr
