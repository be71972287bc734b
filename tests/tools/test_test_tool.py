# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""tools/test.py (and mmdet's / mmseg's own test.py, i.e. ``mim test``)
refuse a checkpoint of another model, evaluate it only with
--allow-partial, load Runner checkpoints strictly, and paint every test
image into exactly the --show-dir folder."""
import glob
import importlib.util
import os
import os.path as osp
import runpy
import sys
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAN_CFG = osp.join(REPO, 'configs/toy/knet_s3_r18_fpn_toy-panoptic.py')
SEM_CFG = osp.join(REPO, 'configs/toy/knet_s3_fcn_r18_toy-semantic.py')
NUM_VAL = 3


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(
        f'knet_tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_model(config: str):
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return MODELS.build(cfg.model), cfg


def _loader_opts(data_root: str) -> dict:
    opts = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts.update({
            f'{loader}.dataset.data_root': f'{data_root}/',
            f'{loader}.batch_size': 2,
            f'{loader}.num_workers': 0,
            f'{loader}.persistent_workers': False
        })
    return opts


def _cli(opts: dict) -> list:
    """``--cfg-options`` arguments for ``opts``."""
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from knet.datasets.synthetic import generate
    root = tmp_path_factory.mktemp('data')
    coco = generate('coco', str(root), seed=0, num_train=2, num_val=NUM_VAL,
                    size=(64, 64), progress=False)
    ade = generate('ade', str(root), seed=0, num_train=2, num_val=NUM_VAL,
                   size=(64, 64), progress=False)
    coco, ade = str(coco), str(ade)
    pan_opts = _loader_opts(coco)
    for ev in ('val_evaluator', 'test_evaluator'):
        pan_opts[f'{ev}.ann_file'] = f'{coco}/annotations/panoptic_val.json'
        pan_opts[f'{ev}.seg_prefix'] = f'{coco}/annotations/panoptic_val/'
    return dict(
        coco=coco, ade=ade, pan_opts=pan_opts, sem_opts=_loader_opts(ade),
        val_names=dict(
            pan=sorted(os.listdir(osp.join(coco, 'val'))),
            sem=sorted(os.listdir(osp.join(ade, 'images', 'validation')))))


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Random-weight checkpoints as ``{'meta', 'state_dict'}`` files, and
    the key sets of both models."""
    folder = tmp_path_factory.mktemp('ckpt')
    out = {}
    for name, config in (('pan', PAN_CFG), ('sem', SEM_CFG)):
        model, cfg = _build_model(config)
        out[name] = str(folder / f'{name}.pth')
        out[name + '_keys'] = set(model.state_dict())
        meta = dict(dataset_meta=dict(cfg.train_dataloader.dataset.metainfo))
        torch.save({'meta': meta, 'state_dict': model.state_dict()},
                   out[name])
    return out


def _counts(ckpt_keys: set, model_keys: set) -> tuple:
    """(missing, unexpected) key counts, ignoring BN step counters."""
    model_keys = {k for k in model_keys if k in ckpt_keys
                  or not k.endswith('num_batches_tracked')}
    return len(model_keys - ckpt_keys), len(ckpt_keys - model_keys)


def _run_script(path: str, argv: list) -> None:
    """Run ``path`` as ``python path *argv`` in this process (an
    exception here is a non-zero exit status there)."""
    old = sys.argv
    sys.argv = [path, *argv]
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
    finally:
        sys.argv = old


def test_other_task_checkpoint_stops_test_tool(data, checkpoints, tmp_path,
                                               capsys):
    # as a command: one "error:" line naming the file, exit status 1
    argv = [PAN_CFG, checkpoints['sem'], '--work-dir', str(tmp_path / 'w'),
            *_cli(data['pan_opts'])]
    script = osp.join(REPO, 'tools', 'test.py')
    with mock.patch.object(sys, 'argv', [script, *argv]), \
            pytest.raises(SystemExit) as exit_info:
        runpy.run_path(script, run_name='__main__')
    assert exit_info.value.code == 1
    missing, unexpected = _counts(checkpoints['sem_keys'],
                                  checkpoints['pan_keys'])
    assert missing > 100 and unexpected > 50  # sanity of the fixture
    err = capsys.readouterr().err
    assert 'error: checkpoint' in err and 'Traceback' not in err
    assert f'checkpoint {checkpoints["sem"]} does not match the model ' \
        f'of {PAN_CFG}' in err
    assert f'missing in checkpoint ({missing})' in err
    assert f'unexpected in checkpoint ({unexpected})' in err
    assert '--allow-partial' in err
    # nothing was evaluated
    assert not glob.glob(str(tmp_path / 'w' / '*' / '*.json'))


def test_mis_shaped_checkpoint_is_refused(data, checkpoints, tmp_path):
    from knet.utils.checkpoint_convert import CheckpointMismatchError
    ckpt = torch.load(checkpoints['sem'], weights_only=False)
    key = 'decode_head.kernel_generate_head.conv_seg.weight'
    ckpt['state_dict'][key] = torch.zeros(5, 64, 1, 1)
    path = str(tmp_path / 'shape.pth')
    torch.save(ckpt, path)
    tool = _load_tool('test')
    with pytest.raises(CheckpointMismatchError) as info:
        tool.main([
            SEM_CFG, path, '--work-dir', str(tmp_path / 'w'),
            *_cli(data['sem_opts'])
        ])
    msg = str(info.value)
    assert 'shape mismatch (1)' in msg and key in msg
    assert 'checkpoint (5, 64, 1, 1) vs model (11, 64, 1, 1)' in msg
    assert 'missing in checkpoint' not in msg


def test_allow_partial_evaluates_with_a_warning(data, checkpoints,
                                                tmp_path):
    tool = _load_tool('test')
    work = tmp_path / 'w'
    assert tool.main([
        SEM_CFG, checkpoints['pan'], '--allow-partial', '--work-dir',
        str(work), *_cli(data['sem_opts'])
    ]) == 0
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    missing, _ = _counts(checkpoints['pan_keys'], checkpoints['sem_keys'])
    assert f'missing in checkpoint ({missing})' in log
    assert 'Loading only the matching weights' in log
    assert 'mIoU' in log


def test_training_checkpoint_loads_strictly_and_show_dir_det(
        data, checkpoints, tmp_path, monkeypatch):
    """Train 1 iteration from the semantic checkpoint (partial loading,
    summary logged), then test its own checkpoint strictly with
    --show-dir relative to the current directory."""
    from mmengine.runner import Runner

    from knet.engine import KNetRunner
    cfg = Config.fromfile(PAN_CFG)
    cfg.merge_from_dict(data['pan_opts'])
    cfg.work_dir = str(tmp_path / 'train')
    cfg.train_cfg.max_iters = 1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = 1
    cfg.param_scheduler = []
    cfg.load_from = checkpoints['sem']
    runner = Runner.from_cfg(cfg)  # runner_type is honoured
    assert isinstance(runner, KNetRunner)
    runner.train()
    log = open(glob.glob(str(tmp_path / 'train' / '*' / '*.log'))[0]).read()
    missing, unexpected = _counts(checkpoints['sem_keys'],
                                  checkpoints['pan_keys'])
    assert f'missing in checkpoint ({missing})' in log
    assert f'unexpected in checkpoint ({unexpected})' in log
    ckpt = str(tmp_path / 'train' / 'iter_1.pth')

    monkeypatch.chdir(tmp_path)
    tool = _load_tool('test')
    assert tool.main([
        PAN_CFG, ckpt, '--show-dir', 'shown', '--work-dir',
        str(tmp_path / 'test'), *_cli(data['pan_opts'])
    ]) == 0
    assert sorted(os.listdir(tmp_path / 'shown')) == data['val_names']['pan']
    log = open(glob.glob(str(tmp_path / 'test' / '*' / '*.log'))[0]).read()
    assert f'drawing every test image into {tmp_path / "shown"}' in log
    assert 'do not match' not in log and 'missing in checkpoint' not in log


def test_show_dir_seg_draws_every_image(data, checkpoints, tmp_path,
                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    tool = _load_tool('test')
    assert tool.main([
        SEM_CFG, checkpoints['sem'], '--show-dir', 'seg_vis', '--work-dir',
        str(tmp_path / 'w'), *_cli(data['sem_opts'])
    ]) == 0
    assert sorted(os.listdir(tmp_path / 'seg_vis')) == \
        data['val_names']['sem']


def _openmmlab_test_script(package: str) -> str:
    module = __import__(package)
    path = osp.join(osp.dirname(module.__file__), '.mim', 'tools',
                    'test.py')
    if not osp.isfile(path):
        pytest.skip(f'{package} is installed without .mim/tools/test.py')
    return path


def test_mim_test_mmseg_show_dir_and_wrong_checkpoint(data, checkpoints,
                                                      tmp_path, monkeypatch):
    """mmseg's own test.py (``mim test mmseg``) calls Runner.from_cfg and
    puts --show-dir into visualizer.save_dir."""
    from knet.utils.checkpoint_convert import CheckpointMismatchError
    script = _openmmlab_test_script('mmseg')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointMismatchError, match='pan.pth does not'):
        _run_script(script, [
            SEM_CFG, checkpoints['pan'], '--work-dir',
            str(tmp_path / 'w'), *_cli(data['sem_opts'])
        ])
    _run_script(script, [
        SEM_CFG, checkpoints['sem'], '--show-dir', 'mim_vis', '--work-dir',
        str(tmp_path / 'w'), *_cli(data['sem_opts'])
    ])
    assert sorted(os.listdir(tmp_path / 'mim_vis')) == \
        data['val_names']['sem']


def test_mim_test_mmdet_wrong_checkpoint_and_show_dir(data, checkpoints,
                                                      tmp_path, monkeypatch):
    from knet.utils.checkpoint_convert import CheckpointMismatchError
    script = _openmmlab_test_script('mmdet')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointMismatchError, match='sem.pth does not'):
        _run_script(script, [
            PAN_CFG, checkpoints['sem'], '--work-dir', str(tmp_path / 'w'),
            *_cli(data['pan_opts'])
        ])
    _run_script(script, [
        PAN_CFG, checkpoints['pan'], '--show-dir', 'det_vis', '--work-dir',
        str(tmp_path / 'w'), *_cli(data['pan_opts'])
    ])
    assert sorted(os.listdir(tmp_path / 'det_vis')) == \
        data['val_names']['pan']
