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
