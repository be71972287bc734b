# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Smoke test of tools/analysis_tools/benchmark.py on a shrunk K-Net
(ResNet-18, 64x64 input, 1 run, no warm-up); checks the JSON, not times."""
import importlib.util
import json
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
CFG = osp.join(REPO, 'configs', 'det', 'knet',
               'knet_s3_r50_fpn_1x_coco-panoptic.py')
TINY = [
    'model.backbone.depth=18', 'model.neck.in_channels=[64,128,256,512]'
]


def _load_benchmark():
    spec = importlib.util.spec_from_file_location('knet_benchmark', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def bm():
    return _load_benchmark()


@pytest.fixture
def restore_threads():
    """main() sets torch / OpenCV threads; give the other tests theirs."""
    import cv2
    import torch
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


def test_config_resolution_and_weight_stripping(bm):
    m2f = bm.resolve_config(
        'mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py')
    assert osp.isfile(m2f) and '.mim' in m2f
    assert bm.resolve_config(
        'mask2former_r50_8xb2-lsj-50e_coco-panoptic') == m2f
    cfg, path, scope = bm.load_config(m2f)
    assert scope == 'mmdet' and path == m2f
    assert cfg.model.backbone.init_cfg is None
    # the 1024x1024 training pad is dropped unless asked to keep it
    assert not cfg.model.data_preprocessor.get('batch_augments')
    cfg, _, _ = bm.load_config(m2f, keep_batch_augments=True)
    assert cfg.model.data_preprocessor.batch_augments
    node = dict(a=dict(init_cfg=dict(type='Pretrained', checkpoint='x')),
                b=[dict(pretrained='y.pth')], c=dict(init_cfg=dict(
                    type='Normal', std=0.01)))
    assert bm.strip_pretrained(node) == 2
    assert node['a']['init_cfg'] is None and node['b'][0]['pretrained'] is None
    assert node['c']['init_cfg']['type'] == 'Normal'
    with pytest.raises(FileNotFoundError):
        bm.resolve_config('no_such_config_anywhere.py')


def test_synthetic_panoptic_gt_respects_the_split(bm):
    masks, labels, sem = bm.synthetic_panoptic_gt(
        64, 96, 10, 80, 53, seed=0)
    assert masks.shape[1:] == (64, 96) and len(masks) == len(labels) > 0
    assert (labels < 80).all()
    assert masks.sum(0).max() == 1  # things do not overlap
    stuff = sem[masks.sum(0) == 0]
    assert ((stuff >= 80) & (stuff < 133)).all()
    for mask, label in zip(masks, labels):
        assert (sem[mask.astype(bool)] == label).all()


def test_benchmark_smoke_json(bm, tmp_path, restore_threads):
    out = tmp_path / 'sub' / 'bench.json'
    report = bm.main([
        CFG, '--compare', CFG, '--input-size', '64', '64',
        '--fix-test-scale', '--runs', '1', '--warmup', '0', '--threads',
        '1', '--mode', 'all', '--json',
        str(out), '--cfg-options', *TINY, '--compare-cfg-options', *TINY,
        'model.rpn_head.num_proposals=50',
        'model.roi_head.num_proposals=50'
    ])
    assert out.is_file()
    assert not [p for p in out.parent.iterdir() if p.name != 'bench.json']
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(report))
    meta = data['meta']
    assert meta['input_size'] == [64, 64] and meta['runs'] == 1
    assert meta['threads'] == 1 and meta['device'] == 'cpu'
    assert meta['dtype'] == 'fp32'
    assert len(data['models']) == 2
    for model in data['models']:
        assert model['task'] == 'det-panoptic'
        assert model['model_type'] == 'KNet'
        assert model['input_shape'] == [1, 3, 64, 64]
        assert model['params'] > 1e6
        assert model['flops'] is None or model['flops'] > 0
        assert model['flops'] or model['flops_error']
        for phase in ('infer', 'tensor', 'predict', 'train'):
            res = model[phase]
            assert len(res['wall_s']['runs']) == 1
            assert res['wall_s']['median'] > 0
            assert res['cpu_s']['median'] >= 0
            assert res['throughput_img_s'] > 0
            assert res['peak_mem_mb'] is None or res['peak_mem_mb'] >= 0
        assert model['train']['loss'] is not None
    # the second model has 50 thing kernels instead of 100
    assert data['models'][1]['params'] < data['models'][0]['params']
    for key in ('infer_time', 'tensor_time', 'predict_time', 'train_time',
                'params'):
        assert data['ratios'][key] > 0


def test_format_table_lists_every_phase(bm):
    run = dict(median=1.0, mean=1.0, min=1.0, max=1.0, runs=[1.0])
    phase = dict(wall_s=run, cpu_s=run, peak_mem_mb=10.0,
                 throughput_img_s=1.0)
    model = dict(name='a', params_m=1.0, gflops=None, infer=phase,
                 train=phase)
    report = dict(
        meta=dict(device='cpu', input_size=[8, 8], batch_size=1, threads=2,
                  amp=False, runs=1, warmup=0),
        models=[model, dict(model, name='b')],
        ratios=dict(infer_time=1.0, train_time=2.0, params=1.0))
    table = bm.format_table(report)
    assert 'end-to-end inference' in table and 'train step' in table
    assert '2.00x' in table


# --------------------------------------------------------------------------
# VPS mode (Video K-Net online inference)
# --------------------------------------------------------------------------
TOY_VIDEO = osp.join(REPO, 'configs', 'toy', '_base_',
                     'toy_video_knet_model.py')
PLOT = osp.join(REPO, 'tools', 'analysis_tools', 'plot_benchmark.py')


def _load_plot():
    spec = importlib.util.spec_from_file_location('knet_plot_bench', PLOT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_video_centres_bounce_and_shapes_are_drawn(bm):
    video = bm.SyntheticVideo(10, 20, num_shapes=1, seed=0)
    video.start = bm.np.array([[5.0, 5.0]])
    video.velocity = bm.np.array([[2.0, -3.0]])
    # y: 5, 7, 9, then reflected at 9 -> 7; x: 5, 2, -1 -> 1, -4 -> 4
    assert video.centers(1).tolist() == [[7.0, 2.0]]
    assert video.centers(2).tolist() == [[9.0, 1.0]]
    assert video.centers(3).tolist() == [[7.0, 4.0]]
    stream = bm.SyntheticVideo(48, 64, num_shapes=4, seed=3)
    first, second = stream.frame(0), stream.frame(1)
    assert first.shape == (48, 64, 3) and first.dtype == bm.np.uint8
    assert (first != second).any()  # the shapes moved
    # the last shape is drawn on top: its centre pixel has its colour
    cy, cx = stream.centers(5)[-1].astype(int)
    assert stream.frame(5)[cy, cx].tolist() == stream.colors[-1].tolist()


def test_piece_timer_times_and_restores(bm):

    class Thing:

        def work(self, x):
            return x + 1

    thing = Thing()
    timer = bm.PieceTimer('cpu')
    timer.wrap(thing, 'work', 'embed')
    assert thing.work(1) == 2 and thing.work(2) == 3
    totals = timer.take()
    assert totals['embed'] > 0 and totals['tracker'] == 0
    assert timer.take()['embed'] == 0  # take() resets
    timer.restore()
    assert 'work' not in thing.__dict__ and thing.work(1) == 2


def test_vps_mode_smoke_json_and_plot(bm, tmp_path, restore_threads):
    import knet.models.video.video_knet as video_knet
    boxes_fn = video_knet.masks_to_track_boxes
    out = tmp_path / 'vps.json'
    report = bm.main([
        TOY_VIDEO, '--input-size', '64', '96', '--frames', '6', '--warmup',
        '1', '--rss-frame', '3', '--threads', '1', '--json',
        str(out)
    ])
    assert video_knet.masks_to_track_boxes is boxes_fn  # hooks removed
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(report))
    meta, vps = data['meta'], data['vps']
    assert meta['mode'] == 'vps' and meta['frames'] == 6
    assert meta['input_size'] == [64, 96] and meta['threads'] == 1
    assert set(meta['thresholds_lowered']) == set(bm.VPS_LOW_THRESHOLDS)
    assert data['models'][0]['model_type'] == 'VideoKNet'
    rec = vps['per_frame']
    for key in ('video_s', 'image_s', 'link_s', 'embed_s', 'tracker_s',
                'track_boxes_s', 'rss_mb', 'num_things'):
        assert len(rec[key]) == 6, key
    # frame 0 has no previous kernels: no linking; later frames link
    assert rec['link_s'][0] == 0 and all(v > 0 for v in rec['link_s'][1:])
    assert all(v > 0 for v in rec['tracker_s'])  # runs even when empty
    assert sum(rec['num_things']) > 0  # lowered thresholds keep things
    assert all(e > 0 for e, n in zip(rec['embed_s'], rec['num_things']) if n)
    # the image baseline segments exactly like the video model
    assert vps['segments_identical'] is True
    assert vps['timed_frames'] == [2, 6]
    assert len(vps['video_s']['runs']) == len(vps['image_s']['runs']) == 5
    ov = vps['overhead']
    assert ov['fraction'] == pytest.approx(
        ov['pieces_s']['total']['median'] / vps['image_s']['median'])
    mem = vps['memory']
    assert mem['rss_frames'] == [3, 6]
    assert mem['rss_at_mb'] == [rec['rss_mb'][2], rec['rss_mb'][5]]
    assert all(r > 10 for r in rec['rss_mb'])  # MiB of a real process
    assert mem['growth_fraction'] == pytest.approx(
        rec['rss_mb'][5] / rec['rss_mb'][2] - 1)
    low, high = mem['rss_trimmed_at_mb']
    assert low > 10 and high > 10
    assert mem['trimmed_growth_fraction'] == pytest.approx(high / low - 1)
    if mem['peak_rss_mb'] is not None:  # VmHWM >= every VmRSS sample
        assert mem['peak_rss_mb'] >= max(rec['rss_mb']) - 1
    png = tmp_path / 'figs' / 'vps.png'
    _load_plot().main([str(out), '--out', str(png)])
    assert png.stat().st_size > 0
    assert [p.name for p in png.parent.iterdir()] == ['vps.png']


def test_vps_mode_without_baseline_keeps_thresholds(bm, tmp_path,
                                                    restore_threads):
    report = bm.main([
        TOY_VIDEO, '--input-size', '64', '64', '--frames', '3', '--warmup',
        '0', '--threads', '1', '--no-image-baseline', '--keep-thresholds'
    ])
    vps = report['vps']
    assert report['meta']['thresholds_lowered'] == {}
    assert 'image_s' not in vps and 'fraction' not in vps['overhead']
    assert vps['per_frame']['image_s'] == [None] * 3
    # --rss-frame 10 > 3 frames: compared with the last frame itself
    assert vps['memory']['rss_frames'] == [3, 3]
    assert vps['memory']['growth_fraction'] == 0
    assert 'no baseline' in bm.format_vps_table(report)


def test_vps_mode_refuses_image_configs(bm, restore_threads):
    with pytest.raises(ValueError, match='knet_s3_r50_fpn_1x_coco'):
        bm.main([CFG, '--video', '--frames', '1'])
