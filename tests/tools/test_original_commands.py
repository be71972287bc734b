# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The original K-Net README's commands (mmdet 2.x / mmseg 0.x forms) on
the 3.x stack: --eval / --eval-options / --format-only / data.test.*
translated, the slurm + mim wrappers, gen_panoptic_test_info.py."""
import json
import os
import os.path as osp
import stat
import subprocess
import sys

import pytest
from mmengine.config import Config

from knet.engine.launch import (data_root_options, legacy_eval_options,
                                merge_cfg_options, translate_test_argv,
                                translate_train_argv)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(REPO, 'configs/det/knet')
INSTANCE = osp.join(DET, 'knet_s3_r50_fpn_1x_coco.py')
PANOPTIC = osp.join(DET, 'knet_s3_r50_fpn_1x_coco-panoptic.py')
SEMANTIC = osp.join(REPO, 'configs/seg/knet/'
                    'knet_s3_upernet_r50-d8_80k_adamw_ade20k.py')
sys.path.insert(0, osp.join(REPO, 'tools'))
import gen_panoptic_test_info  # noqa: E402


def _cfg(path):
    return Config.fromfile(path, import_custom_modules=False)


# ------------------------------------------------------------ --eval etc.
def test_eval_pq_on_a_panoptic_config_is_the_default_metric():
    options, notes = legacy_eval_options(_cfg(PANOPTIC), ['pq'])
    assert options == {}
    assert 'CocoPanopticMetric' in notes[0]


def test_eval_segm_selects_the_coco_metric():
    options, _ = legacy_eval_options(_cfg(INSTANCE), ['bbox', 'segm'])
    assert options == {'test_evaluator.metric': ['bbox', 'segm']}
    options, _ = legacy_eval_options(_cfg(SEMANTIC), ['mIoU'])
    assert options == {'test_evaluator.iou_metrics': ['mIoU']}


@pytest.mark.parametrize('path,metric,needs', [
    (INSTANCE, 'pq', 'CocoPanopticMetric'),
    (PANOPTIC, 'segm', 'CocoMetric'),
    (PANOPTIC, 'mIoU', 'IoUMetric'),
])
def test_eval_of_another_task_explains(path, metric, needs):
    with pytest.raises(ValueError) as err:
        legacy_eval_options(_cfg(path), [metric])
    assert f'--eval {metric} needs {needs}' in str(err.value)
    assert 'Drop --eval' in str(err.value)


def test_format_only_and_eval_options():
    options, notes = legacy_eval_options(
        _cfg(PANOPTIC), None, {'jsonfile_prefix': 'out/pan'}, True, 'wd')
    assert options['test_evaluator.outfile_prefix'] == 'out/pan'
    assert options['test_evaluator.format_only'] is True
    assert options['test_dataloader.dataset.pipeline.2.with_seg'] is False
    options, _ = legacy_eval_options(_cfg(PANOPTIC), None, None, True, 'wd')
    assert options['test_evaluator.outfile_prefix'] == osp.join(
        'wd', 'results')
    options, _ = legacy_eval_options(_cfg(SEMANTIC), None, None, True, 'wd')
    assert options['test_evaluator.output_dir'] == osp.join(
        'wd', 'format_results')


def test_data_test_cfg_options_are_translated():
    cfg = _cfg(PANOPTIC)
    # 2.x paths include data_root; 3.x dataset paths are joined to it
    notes = merge_cfg_options(cfg, {
        'data.test.ann_file': 'data/coco/annotations/x.json',
        'data.test.img_prefix': 'data/coco/test2017/',
        'data.val.seg_prefix': '/abs/seg/',
        'data.train.img_prefix': 'elsewhere/train/',
        'data.samples_per_gpu': 4,
        'optimizer.lr': 0.5,
    })
    ds = cfg.test_dataloader.dataset
    assert ds.ann_file == 'annotations/x.json'
    assert ds.data_prefix.img == 'test2017/'
    assert cfg.val_dataloader.dataset.data_prefix.seg == '/abs/seg/'
    assert cfg.train_dataloader.dataset.data_prefix.img == osp.abspath(
        'elsewhere/train/')
    assert cfg.test_evaluator.ann_file == 'data/coco/annotations/x.json'
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert 'data' not in cfg
    assert any('data.test.img_prefix -> test_dataloader.dataset.'
               'data_prefix.img' in n for n in notes)


def test_data_root_override_moves_datasets_and_evaluators():
    cfg = _cfg(PANOPTIC)
    merge_cfg_options(cfg, {'data_root': '/elsewhere/coco/'})
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == '/elsewhere/coco/'
    assert cfg.val_evaluator.ann_file == \
        '/elsewhere/coco/annotations/panoptic_val2017.json'
    assert cfg.test_evaluator.seg_prefix == \
        '/elsewhere/coco/annotations/panoptic_val2017/'
    # explicit per-dataset keys win over the moved ones
    cfg = _cfg(PANOPTIC)
    merge_cfg_options(cfg, {'data_root': '/a/',
                            'val_dataloader.dataset.data_root': '/b/'})
    assert cfg.val_dataloader.dataset.data_root == '/b/'
    assert data_root_options(_cfg(PANOPTIC), 'data/coco/') == {}


def _mmdet_test_parser_accepts(argv):
    """Parse with mmdet 3.x's own tools/test.py (what mim runs)."""
    import mmdet
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                      'test.py')
    if not osp.isfile(script):
        pytest.skip('mmdet has no .mim/tools/test.py')
    import importlib.util
    spec = importlib.util.spec_from_file_location('_mmdet_test', script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    old = sys.argv
    sys.argv = ['test.py'] + argv
    try:
        return module.parse_args()
    finally:
        sys.argv = old


def test_translated_test_args_are_accepted_by_mmdet_3():
    new, notes = translate_test_argv(INSTANCE, [
        '--eval', 'segm', '--format-only', '--eval-options',
        'jsonfile_prefix=work/x', '--cfg-options',
        'data.test.ann_file=data/coco/a.json',
        '--out', 'r.pkl'
    ])
    args = _mmdet_test_parser_accepts([INSTANCE, 'ckpt.pth'] + new)
    assert args.out == 'r.pkl'
    # LoadAnnotations is step 2 of the test pipeline: it loads nothing
    no_gt = {f'test_dataloader.dataset.pipeline.2.{flag}': False
             for flag in ('with_bbox', 'with_label', 'with_mask', 'with_seg')}
    assert args.cfg_options == {
        'test_dataloader.dataset.ann_file': 'a.json',
        'test_evaluator.ann_file': 'data/coco/a.json',
        'test_evaluator.metric': ['segm'],
        'test_evaluator.outfile_prefix': 'work/x',
        'test_evaluator.format_only': True,
        **no_gt
    }
    with pytest.raises(ValueError, match='needs CocoPanopticMetric'):
        translate_test_argv(INSTANCE, ['--eval', 'pq'])


def test_translated_train_args():
    new, notes = translate_train_argv(PANOPTIC, [
        '--resume-from', 'w/latest.pth', '--seed', '3', '--gpus', '8',
        '--amp', '--cfg-options', 'data.train.ann_file=data/coco/t.json'
    ])
    assert new[:3] == ['--amp', '--resume', 'w/latest.pth']
    assert new[3] == '--cfg-options'
    assert set(new[4:]) == {'train_dataloader.dataset.ann_file=t.json',
                            'randomness.seed=3'}
    assert any('--gpus' in n for n in notes)


def test_train_py_accepts_2x_flags(capsys, monkeypatch):
    # what dist_train.sh / slurm_train.sh pass through unchanged
    monkeypatch.delenv('RANK', raising=False)
    import train as train_tool
    args = train_tool.parse_args(
        [PANOPTIC, '--resume-from', 'w/latest.pth', '--no-validate'])
    assert args.resume == 'w/latest.pth'
    assert args.cfg_options['val_cfg'] is None
    assert '--no-validate' in capsys.readouterr().err
    # 3.x command lines are not touched
    assert train_tool.translate_legacy_argv([PANOPTIC, '--amp']) == \
        [PANOPTIC, '--amp']


# ---------------------------------------------------- shell wrappers (fake)
def _fake_bin(tmp_path, name):
    """An executable that writes its arguments, one per line, to a file."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / f'{name}.args'
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir), log


def _run_wrapper(tmp_path, fake, args, shell='bash'):
    bin_dir, log = _fake_bin(tmp_path, fake)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ['PATH'],
               PYTHON=sys.executable, OMP_NUM_THREADS='1')
    proc = subprocess.run([shell] + args, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    called = log.read_text().splitlines() if log.exists() else None
    return proc, called


def test_mim_slurm_test_translates_eval(tmp_path):
    # `sh ./tools/...` as in the original README (dash on Debian/Ubuntu)
    proc, called = _run_wrapper(tmp_path, 'mim', [
        './tools/mim_slurm_test.sh', 'PART', 'mmdet', INSTANCE, 'ck.pth',
        '--eval', 'segm'
    ], shell='sh')
    assert proc.returncode == 0, proc.stderr
    assert called[:3] == ['test', 'mmdet', INSTANCE]
    assert '--eval' not in called
    assert called[-2:] == ['--cfg-options', 'test_evaluator.metric=[segm]']
    assert '[mim_slurm_test] mim test mmdet' in proc.stderr
    # mmdet 3.x's test.py accepts what mim hands on (after the checkpoint)
    rest = called[called.index('--srun-args') + 2:]
    _mmdet_test_parser_accepts([INSTANCE, 'ck.pth'] + rest)


def test_mim_slurm_test_wrong_task_stops_before_mim(tmp_path):
    proc, called = _run_wrapper(tmp_path, 'mim', [
        'tools/mim_slurm_test.sh', 'PART', 'mmdet', INSTANCE, 'ck.pth',
        '--eval', 'pq'
    ])
    assert proc.returncode == 2
    assert called is None
    assert '--eval pq needs CocoPanopticMetric' in proc.stderr


def test_mim_slurm_train_passes_the_work_dir(tmp_path):
    proc, called = _run_wrapper(tmp_path, 'mim', [
        'tools/mim_slurm_train.sh', 'PART', 'mmdet', PANOPTIC, 'work/knet'
    ])
    assert proc.returncode == 0, proc.stderr
    assert called[called.index('--work-dir') + 1] == 'work/knet'
    assert 'work/knet' not in called[:3]


# --------------------------------------------------- gen_panoptic_test_info
def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def test_gen_panoptic_test_info(tmp_path, capsys):
    images = [dict(id=1, file_name='000000000001.jpg', width=64, height=48),
              dict(id=7, file_name='000000000007.jpg', width=32, height=32)]
    cats = [dict(id=1, name='person', isthing=1, supercategory='person'),
            dict(id=184, name='tree-merged', isthing=0,
                 supercategory='plant')]
    info = _write(tmp_path / 'image_info_test-dev2017.json',
                  dict(info={}, images=images, licenses=[],
                       categories=[dict(id=1, name='person')]))
    pan = _write(tmp_path / 'panoptic_val2017.json',
                 dict(images=[], annotations=[], categories=cats))
    out = tmp_path / 'out' / 'panoptic_image_info_test-dev2017.json'
    assert gen_panoptic_test_info.main(
        ['--image-info', info, '--categories', pan, '--out', str(out)]) == 0
    data = json.loads(out.read_text())
    assert data['images'] == images
    assert data['categories'] == cats
    assert 'annotations' not in data
    assert '2 images, 2 categories (1 things, 1 stuff)' in \
        capsys.readouterr().out
    assert os.listdir(out.parent) == [out.name]  # no temp file left


def test_gen_panoptic_test_info_errors(tmp_path):
    with pytest.raises(SystemExit, match='image_info_test2017.zip'):
        gen_panoptic_test_info.main(
            ['--image-info', str(tmp_path / 'missing.json')])
    info = _write(tmp_path / 'info.json', dict(images=[]))
    inst = _write(tmp_path / 'instances.json',
                  dict(categories=[dict(id=1, name='person')]))
    with pytest.raises(SystemExit, match='no panoptic categories'):
        gen_panoptic_test_info.main(['--image-info', info, '--categories',
                                     inst, '--out', str(tmp_path / 'o')])


# ------------------------------------------ test-dev submission, end to end
TOY_PAN = osp.join(REPO, 'configs/toy/knet_s3_r18_fpn_toy-panoptic.py')


@pytest.fixture(scope='module')
def toy_checkpoint(tmp_path_factory):
    """Synthetic COCO panoptic data and a randomly initialised toy model."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from knet.datasets.synthetic import generate
    root = tmp_path_factory.mktemp('testdev')
    generate('coco', str(root), seed=0, num_train=2, num_val=2,
             size=(64, 64), progress=False)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TOY_PAN).model)
    ckpt = str(root / 'toy.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    return str(root / 'coco'), ckpt


def test_readme_test_dev_submission_writes_the_files(toy_checkpoint,
                                                     tmp_path):
    """README: gen_panoptic_test_info.py, then tools/test.py --format-only
    with the 2.x data.test.* / jsonfile_prefix arguments, on images that
    have no annotations."""
    import runpy
    data, ckpt = toy_checkpoint
    ann = osp.join(data, 'annotations')
    with open(osp.join(ann, 'panoptic_val.json')) as f:
        val = json.load(f)
    # COCO's image_info_test-dev2017.json: images only, instance categories
    info = _write(tmp_path / 'image_info_test-dev.json',
                  dict(images=val['images'], categories=[]))
    out_info = str(tmp_path / 'panoptic_image_info_test-dev.json')
    assert gen_panoptic_test_info.main([
        '--image-info', info, '--categories',
        osp.join(ann, 'panoptic_val.json'), '--out', out_info
    ]) == 0
    # test-dev has no panoptic annotations: nothing may read ground truth
    prefix = str(tmp_path / 'sub' / 'panoptic_test-dev')
    test_py = runpy.run_path(osp.join(REPO, 'tools', 'test.py'))
    img_prefix = Config.fromfile(TOY_PAN).test_dataloader.dataset.\
        data_prefix.img
    empty = tmp_path / 'no_panoptic_pngs'
    empty.mkdir()
    (empty / 'other.png').write_bytes(b'')
    argv = [
        TOY_PAN, ckpt, '--work-dir', str(tmp_path / 'work'), '--format-only',
        '--cfg-options', f'data_root={data}/',
        f'data.test.ann_file={out_info}',
        f'data.test.img_prefix={data}/{img_prefix}',
        # no PNG of these images there: loading ground truth would fail
        f'data.test.seg_prefix={empty}/',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        '--eval-options', f'jsonfile_prefix={prefix}'
    ]
    assert test_py['main'](argv) == 0
    with open(prefix + '.panoptic.json') as f:
        sub = json.load(f)
    ids = sorted(a['image_id'] for a in sub['annotations'])
    assert ids == sorted(im['id'] for im in val['images'])
    pngs = os.listdir(prefix + '.panoptic')
    assert sorted(pngs) == sorted(a['file_name'] for a in sub['annotations'])
