# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""tools/test_step.py with a tiny fake VPS model (predictions = GT, or GT
with a track switch) on a two-sequence KITTI-STEP folder: written files,
scores of the whole split, resume after a killed run, the launchers'
corrected-command message."""
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModel
from mmengine.structures import PixelData

from knet.evaluation.synthetic import write_step_png

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LENGTHS = (3, 2)  # frames of sequences 0000 and 0001


@MODELS.register_module(force=True)
class FakeStepVPSModel(BaseModel):
    """Returns the packed GT panoptic map as its prediction (contract of
    VideoKNet.predict); ``switch`` renumbers track 1 from frame 1 on."""
    seen: list = []

    def __init__(self, switch: bool = False, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.switch = switch
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='predict'):
        for track in data_samples:
            for frame in track.video_data_samples:
                FakeStepVPSModel.seen.append((frame.video_id,
                                              frame.frame_id))
                pan = frame.gt_panoptic_seg.sem_seg.clone()
                if self.switch and frame.frame_id >= 1:
                    pan[pan // 1000 == 1] += 4000  # track 1 -> 5
                frame.pred_panoptic_seg = PixelData(sem_seg=pan)
        return data_samples


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'knet_tool_test_step', osp.join(REPO, 'tools', 'test_step.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('step')
    data = root / 'kitti'
    rng = np.random.default_rng(0)
    for seq, n in enumerate(LENGTHS):
        for f in range(n):
            cls = np.zeros((8, 12), np.int64)  # road
            cls[:2] = 10  # sky
            cls[-1, :3] = 255  # void
            ins = np.zeros_like(cls)
            cls[3:6, 2 + f:6 + f] = 13  # a moving car, track 1
            ins[3:6, 2 + f:6 + f] = 1
            cls[2:5, 8:10] = 11  # a person, track 2
            ins[2:5, 8:10] = 2
            name = f'val/{seq:04d}/{f:06d}.png'
            write_step_png(str(data / 'panoptic_maps' / name), cls, ins)
            write_step_png(str(data / 'images' / name),
                           rng.integers(0, 255, (8, 12)),
                           rng.integers(0, 255, (8, 12)))
    config = root / 'fake_vps.py'
    config.write_text(f'''
default_scope = 'mmdet'
model = dict(type='FakeStepVPSModel', data_preprocessor=dict(
    type='TrackDataPreprocessor', mean=[0., 0., 0.], std=[1., 1., 1.]))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type='KITTISTEPDataset', data_root={str(data)!r}, split='val',
        test_mode=True,
        pipeline=[
            dict(type='TransformBroadcaster', transforms=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadSTEPPanopticAnnotations',
                     with_panoptic_gt=True)]),
            dict(type='PackVideoSegInputs')]))
test_cfg = dict(type='TestLoop')
test_evaluator = []
''')
    ckpt = root / 'fake.pth'
    torch.save({'state_dict': {'weight': torch.zeros(1)}}, str(ckpt))
    return dict(root=root, data=data, config=str(config), ckpt=str(ckpt),
                tool=_load_tool())


def _run(setup, out, *extra):
    FakeStepVPSModel.seen.clear()
    argv = [setup['config'], setup['ckpt'], '--show-dir', str(out),
            '--work-dir', str(setup['root'] / 'work'), *extra]
    assert setup['tool'].main(argv) == 0
    return list(FakeStepVPSModel.seen)


def _metrics(out):
    with open(osp.join(out, 'metrics.json')) as f:
        return json.load(f)


def test_writes_files_and_scores_the_split(setup, tmp_path):
    out = tmp_path / 'out'
    seen = _run(setup, out)
    assert seen == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert sorted(os.listdir(out / 'final' / '0000')) == [
        '000000.png', '000001.png', '000002.png']
    assert sorted(os.listdir(out / 'panoptic' / '1')) == [
        '000001_000000_cat.png', '000001_000000_ins.png',
        '000001_000001_cat.png', '000001_000001_ins.png']
    assert sorted(os.listdir(out / '.done')) == ['0.json', '1.json']
    res = _metrics(out)
    assert res['STQ'] == pytest.approx(1.0)
    # official KITTI-STEP VPQ: windows of 1..4 frames; a sequence shorter
    # than k adds nothing at k (no 4-frame window here: PQ@4 = 0)
    pq = {k: r['PQ'] for k, r in res['per_window'].items()}
    assert pq == pytest.approx({'1': 1.0, '2': 1.0, '3': 1.0, '4': 0.0})
    assert res['VPQ'] == pytest.approx(0.75)
    assert res['thing_ids'] == [11, 13] and res['protocol'] == 'official'
    assert sorted(res['per_sequence']) == ['0', '1']


def test_resume_after_a_killed_run_processes_only_unfinished(setup,
                                                             tmp_path):
    out = tmp_path / 'out'
    _run(setup, out)
    # killed while writing sequence 1: its marker and last frame missing
    os.remove(out / '.done' / '1.json')
    os.remove(out / 'final' / '0001' / '000001.png')
    seen = _run(setup, out)
    assert seen == [(1, 0), (1, 1)]
    res = _metrics(out)  # still the whole split
    assert sorted(res['per_sequence']) == ['0', '1']
    assert res['STQ'] == pytest.approx(1.0)
    # nothing left: no inference, the scores are recomputed
    assert _run(setup, out) == []
    assert _metrics(out)['per_window']['1']['PQ'] == pytest.approx(1.0)
    # a format that was not written before redoes every sequence
    assert len(_run(setup, out, '--formats', 'step', 'vipseg')) == 5
    assert sorted(os.listdir(out / 'pan_pred' / '0000')) == [
        '000000.png', '000001.png', '000002.png']
    with open(out / 'pred.json') as f:
        videos = json.load(f)['annotations']
    assert [v['video_id'] for v in videos] == ['0000', '0001']


def test_id_switch_lowers_aq(setup, tmp_path):
    out = tmp_path / 'out'
    _run(setup, out, '--cfg-options', 'model.switch=True')
    res = _metrics(out)
    # sequence 0: car tube of 3 frames, tracked 1, 5, 5 -> AQ 5/9;
    # sequence 1: 1, 5 -> 1/2 * 1/2 * 2 = 1/2; persons perfect
    # AQ = (5/9 + 1 + 1/2 + 1) / 4
    assert res['AQ'] == pytest.approx((5 / 9 + 1 + 0.5 + 1) / 4)
    assert res['SQ'] == pytest.approx(1.0)


def test_markers_of_another_checkpoint_stop_the_run(setup, tmp_path):
    out = tmp_path / 'out'
    _run(setup, out, '--no-eval')
    assert not (out / 'metrics.json').exists()
    other = tmp_path / 'other.pth'
    shutil.copy(setup['ckpt'], other)
    with open(other, 'ab') as f:
        f.write(b'0')  # another size
    with pytest.raises(SystemExit, match='another --show-dir'):
        setup['tool'].main([setup['config'], str(other), '--show-dir',
                            str(out), '--work-dir',
                            str(setup['root'] / 'work')])
    # --no-resume redoes everything
    assert len(_run(setup, out, '--no-resume', '--no-eval')) == 5


def test_vipseg_files_and_scores(setup, tmp_path):
    """VIP-Seg: official pan_pred + pred.json with the video names and
    0-based class ids, cat/ins in the stuff-first space the VIP-Seg eval
    tools read (predictions = GT: STQ = 1)."""
    import cv2
    root = tmp_path / 'vip'
    root.mkdir()
    (root / 'val.txt').write_text('vid_b\nvid_a\n')
    for video in ('vid_b', 'vid_a'):
        for f in range(2):
            raw = np.full((6, 8), 1, np.uint16)  # stuff class 0
            raw[:2] = 2  # stuff class 1
            raw[2:5, 1 + f:4 + f] = 300  # thing class 2, instance 0
            raw[5, :2] = 0  # void
            for sub, img in (('panomasks', raw),
                             ('images', np.zeros((6, 8, 3), np.uint8))):
                ext = 'png' if sub == 'panomasks' else 'jpg'
                path = root / sub / video / f'0000{f}.{ext}'
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), img)
    config = tmp_path / 'fake_vip.py'
    config.write_text(f'''
default_scope = 'mmdet'
model = dict(type='FakeStepVPSModel', data_preprocessor=dict(
    type='TrackDataPreprocessor', mean=[0., 0., 0.], std=[1., 1., 1.]))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type='VIPSegDataset', data_root={str(root)!r}, split='val',
        test_mode=True,
        pipeline=[
            dict(type='TransformBroadcaster', transforms=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadVIPSegPanopticAnnotations',
                     with_panoptic_gt=True)]),
            dict(type='PackVideoSegInputs')]))
test_cfg = dict(type='TestLoop')
test_evaluator = []
''')
    out = tmp_path / 'out'
    FakeStepVPSModel.seen.clear()
    assert setup['tool'].main([str(config), setup['ckpt'], '--show-dir',
                               str(out), '--work-dir',
                               str(tmp_path / 'work')]) == 0
    assert sorted(os.listdir(out / 'pan_pred')) == ['vid_a', 'vid_b']
    assert sorted(os.listdir(out / 'panoptic')) == ['0', '1']
    with open(out / 'pred.json') as f:
        videos = json.load(f)['annotations']
    assert [v['video_id'] for v in videos] == ['vid_a', 'vid_b']
    frame = videos[0]['annotations'][1]
    assert frame['file_name'] == '00001.png'
    assert sorted((s['category_id'], s['area'])
                  for s in frame['segments_info']) == [(0, 21), (1, 16),
                                                       (2, 9)]
    res = _metrics(out)
    assert res['STQ'] == pytest.approx(1.0)
    assert res['num_classes'] == 124


@pytest.mark.parametrize('script, argv, expected', [
    ('dist_step_test.sh', ['cfg.py', 'ck.pth', '--show-dir', 'out'],
     'tools/dist_step_test.sh cfg.py ck.pth 1 --show-dir out'),
    ('slurm_test_step.sh', ['part', 'job', 'cfg.py'], 'usage: bash'),
])
def test_launchers_print_the_corrected_command(script, argv, expected):
    proc = subprocess.run(['sh', f'tools/{script}', *argv], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert expected in proc.stderr


TOY_CFG = osp.join(REPO, 'configs/toy/video_knet_s3_r18_toy-vps.py')


def test_toy_video_knet_end_to_end(tmp_path):
    """The toy Video K-Net (random weights) on 2 synthetic STEP videos of 2
    frames: every frame written in the dataset's class ids, scored."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from knet.datasets.synthetic import generate
    from knet.evaluation._utils import read_png
    data = generate('step', str(tmp_path / 'data'), seed=0, num_train=1,
                    num_val=2, num_frames=2, size=(64, 128), progress=False)
    cfg = Config.fromfile(TOY_CFG)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = tmp_path / 'toy.pth'
    torch.save({'state_dict': model.state_dict()}, str(ckpt))
    out = tmp_path / 'out'
    tool = _load_tool()
    assert tool.main([
        TOY_CFG, str(ckpt), '--show-dir', str(out), '--work-dir',
        str(tmp_path / 'work'), '--formats', 'step', 'catins', 'vipseg',
        '--cfg-options', f'data_root={data}/',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]) == 0
    seqs = sorted(os.listdir(out / 'final'))
    assert len(seqs) == 2 and sorted(os.listdir(out / '.done')) == [
        f'{int(s)}.json' for s in seqs]
    for seq in seqs:
        assert sorted(os.listdir(out / 'final' / seq)) == [
            '000000.png', '000001.png']
        rgb = read_png(str(out / 'final' / seq / '000001.png'))
        assert rgb.shape == (64, 128, 3)
        # dataset ids: 11 classes (0..10) or void
        assert set(np.unique(rgb[..., 0]).tolist()) <= set(range(11)) | {
            255}
    res = _metrics(out)
    assert res['num_classes'] == 11 and res['thing_ids'] == [5, 6, 7, 8, 9,
                                                              10]
    for key in ('STQ', 'AQ', 'SQ', 'VPQ'):
        assert 0.0 <= res[key] <= 1.0
    with open(out / 'pred.json') as f:
        assert len(json.load(f)['annotations']) == 2
