# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The VPS command lines of Video K-Net's README, as written there: each
either runs (launchers checked up to the process they start, with fake
``srun`` / ``python``; the eval scripts on a tiny perfect prediction) or
stops with the corrected command (the ``knet_cityscapes_ste`` typo, the
``dist_train.sh JOB_NAME CONFIG GPUS WORK_DIR`` order)."""
import os
import os.path as osp
import shlex
import stat
import subprocess
import sys

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools'))

CITY = 'configs/det/knet_cityscapes_step/knet_s3_r50_fpn.py'
CITY_TYPO = 'configs/det/knet_cityscapes_ste/knet_s3_r50_fpn.py'
KITTI = ('configs/det/video_knet_kitti_step/video_knet_s3_r50_rpn_1x_kitti_'
         'step_sigmoid_stride2_mask_embed_link_ffn_joint_train.py')
KITTI_SWINB = KITTI.replace('_r50_', '_swinb_')
COCO_INS = 'configs/det/coco/knet_s3_r50_fpn_ms-3x_coco.py'
COCO_PAN = 'configs/det/coco/knet_s3_r50_fpn_ms-3x_coco-panoptic.py'
VIP = ('configs/det/video_knet_vipseg/video_knet_s3_r50_rpn_vipseg_mask_'
       'embed_link_ffn_joint_train.py')

#: README lines `[ENV] sh ./tools/slurm_train.sh $PARTITION JOB CONFIG
#: $WORK_DIR [args]` with PARTITION=part, WORK_DIR=work/run
SLURM_LINES = [
    ('', f'knet_step {CITY} work/run --no-validate'),
    ('GPUS=8', f'video_knet_step {KITTI} work/run --no-validate --load-from '
     '/path_to_knet_step_city_r50'),
    ('GPUS=16 GPUS_PER_NODE=8', f'video_knet_step {KITTI_SWINB} work/run '
     '--no-validate --load-from /path_to_knet_step_city_r50'),
    ('GPUS=8', f'knet_instance {COCO_INS} work/run'),
    ('GPUS=8', f'knet_coco {COCO_PAN} work/run'),
    ('GPUS=8', f'video_knet_vis {VIP} work/run --load-from '
     '/path/knet_coco_pretrained_r50'),
]


def _fake_bin(tmp_path, name):
    """An executable ``name`` that writes its arguments, one per line."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / f'{name}.args'
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir), log


def _sh(tmp_path, line, fake, env=None):
    """Run a README line with ``sh`` from the repository root; ``fake``
    (srun / python) only records its arguments."""
    bin_dir, log = _fake_bin(tmp_path, fake)
    full_env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ['PATH'],
                    PYTHON=sys.executable, OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.run(['sh', '-c', line], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=120)
    called = log.read_text().splitlines() if log.exists() else None
    return proc, called


def _train_args(argv, monkeypatch):
    """tools/train.py's parsing of ``argv`` (2.x flags translated)."""
    monkeypatch.chdir(REPO)
    monkeypatch.delenv('RANK', raising=False)
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    import train as train_tool
    return train_tool.parse_args(argv)


@pytest.mark.parametrize('env,args', SLURM_LINES)
def test_readme_slurm_train_lines_run(env, args, tmp_path, monkeypatch):
    line = f'{env} sh ./tools/slurm_train.sh part {args}'.strip()
    proc, called = _sh(tmp_path, line, 'srun')
    assert proc.returncode == 0, proc.stderr
    job, config, work_dir, *extra = args.split()
    gpus = dict(e.split('=') for e in env.split()).get('GPUS', '8')
    per_node = dict(e.split('=') for e in env.split()).get(
        'GPUS_PER_NODE', '8')
    assert called[:2] == ['-p', 'part']
    assert f'--job-name={job}' in called
    assert f'--ntasks={gpus}' in called
    assert f'--ntasks-per-node={per_node}' in called
    train_argv = called[called.index('./tools/train.py') + 1:]
    assert train_argv == [config, f'--work-dir={work_dir}',
                          '--launcher=slurm', *extra]
    # what every rank's tools/train.py makes of it
    parsed = _train_args(train_argv, monkeypatch)
    assert (parsed.config, parsed.work_dir, parsed.launcher) == (
        config, work_dir, 'slurm')
    options = parsed.cfg_options or {}
    assert ('val_cfg' in options) == ('--no-validate' in extra)
    if '--no-validate' in extra:
        assert options['val_cfg'] is None
        assert options['val_dataloader'] is None
    if '--load-from' in extra:
        assert options['load_from'] == extra[extra.index('--load-from') + 1]


@pytest.mark.parametrize('work_dir', ['work/run', ''])
def test_readme_dist_train_order_prints_the_corrected_command(
        work_dir, tmp_path, monkeypatch):
    # README: sh ./tools/dist_train.sh video_knet_step CONFIG 8 $WORK_DIR
    # --no-validate (an unset $WORK_DIR disappears)
    line = (f'sh ./tools/dist_train.sh video_knet_step {KITTI} 8 {work_dir} '
            '--no-validate')
    proc, called = _sh(tmp_path, line, 'torchrun_never_called')
    assert proc.returncode == 1
    assert 'takes CONFIG GPUS' in proc.stderr
    fixed = proc.stderr.strip().splitlines()[-1].strip()
    expected = ['bash', './tools/dist_train.sh', KITTI, '8']
    expected += ['--work-dir', work_dir] if work_dir else []
    assert shlex.split(fixed) == expected + ['--no-validate']
    # the corrected command runs: torchrun starts tools/train.py with it
    fake_python = tmp_path / 'py'
    fake_python.mkdir()
    bin_dir, log = _fake_bin(fake_python, 'python')
    proc = subprocess.run(
        shlex.split(fixed), cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHON=osp.join(bin_dir, 'python')),
        timeout=120)
    assert proc.returncode == 0, proc.stderr
    called = log.read_text().splitlines()
    assert called[:2] == ['-m', 'torch.distributed.run']
    assert '--nproc_per_node=8' in called
    train_argv = called[called.index('./tools/train.py') + 1:]
    assert train_argv[:3] == [KITTI, '--launcher', 'pytorch']
    parsed = _train_args(train_argv, monkeypatch)
    assert parsed.work_dir == (work_dir or None)
    assert parsed.cfg_options['val_cfg'] is None


def test_dist_train_config_typo_prints_the_corrected_command(tmp_path):
    proc, _ = _sh(tmp_path, f'sh ./tools/dist_train.sh {CITY_TYPO} 8',
                  'torchrun_never_called')
    assert proc.returncode == 1
    assert f'did you mean {CITY}?' in proc.stderr
    assert shlex.split(proc.stderr.strip().splitlines()[-1]) == [
        'bash', './tools/dist_train.sh', CITY, '8']


@pytest.mark.parametrize('tool,extra', [('train', []),
                                        ('test', ['ckpt.pth'])])
def test_config_typo_in_train_and_test_py(tool, extra, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    module = __import__(tool)
    with pytest.raises(SystemExit) as exc:
        module.parse_args([CITY_TYPO, *extra, '--work-dir', 'w'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f'did you mean {CITY}?' in err
    assert shlex.join(['python', f'tools/{tool}.py', CITY, *extra,
                       '--work-dir', 'w']) in err


def test_config_typo_outside_the_repository_names_the_repo_config(
        tmp_path, monkeypatch):
    from knet.engine.launch import suggest_config_path
    monkeypatch.chdir(tmp_path)  # no configs/ here: the repo's are searched
    assert suggest_config_path(CITY_TYPO) == osp.join(REPO, CITY)
    assert suggest_config_path('no/such/thing_at_all.txt') is None


def _named_configs(text):
    """Existing config paths (relative to the repository) in ``text``."""
    return {tok for tok in text.replace("'", ' ').split()
            if tok.endswith('.py') and osp.isfile(osp.join(REPO, tok))}


def test_readme_dist_step_test_typo_line(tmp_path):
    """``sh ./tools/dist_step_test.sh configs/det/knet_cityscapes_ste/...
    $MODEL_DIR`` (typo in an image config, no GPU count; the script belongs
    to the VPS test tool) stops with a command naming an existing config:
    the Cityscapes-STEP one, or the KITTI-STEP video config that tests
    VPS."""
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    proc, _ = _sh(tmp_path, f'sh ./tools/dist_step_test.sh {CITY_TYPO} '
                  f'{ckpt}', 'torchrun_never_called')
    assert proc.returncode != 0
    assert _named_configs(proc.stderr) & {CITY, KITTI}, proc.stderr


def test_readme_dist_step_test_vipseg_line(tmp_path):
    """``sh ./tools/dist_step_test.sh VIP_CONFIG $MODEL_DIR`` (no GPU count)
    either starts tools/test_step.py on that config and checkpoint (a fake
    python records it) or stops with a command naming the config."""
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    fake = tmp_path / 'py'
    fake.mkdir()
    bin_dir, log = _fake_bin(fake, 'python')
    proc = subprocess.run(
        ['sh', '-c', f'sh ./tools/dist_step_test.sh {VIP} {ckpt}'], cwd=REPO,
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHON=osp.join(bin_dir, 'python')))
    if proc.returncode == 0:
        called = log.read_text().splitlines()
        script = [a for a in called if a.endswith('test_step.py')]
        assert script, called
        rest = called[called.index(script[0]) + 1:]
        assert rest[:2] == [VIP, str(ckpt)]
    else:
        assert VIP in _named_configs(proc.stderr), proc.stderr


def test_mim_train_takes_the_2x_flags_of_the_readme(tmp_path):
    """``mim train mmdet CFG`` through tools/mim_slurm_train.sh: the 2.x
    flags become options that mmdet 3.x's own train.py accepts."""
    proc, called = _sh(
        tmp_path, f'sh ./tools/mim_slurm_train.sh part mmdet {KITTI} '
        'work/run --no-validate --load-from /ckpt.pth', 'mim')
    assert proc.returncode == 0, proc.stderr
    assert called[:3] == ['train', 'mmdet', KITTI]
    rest = called[called.index('--srun-args') + 2:]
    import mmdet
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                      'train.py')
    if not osp.isfile(script):
        pytest.skip('mmdet has no .mim/tools/train.py')
    import importlib.util
    spec = importlib.util.spec_from_file_location('_mmdet_train', script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    old = sys.argv
    sys.argv = ['train.py', KITTI] + rest
    try:
        args = module.parse_args()
    finally:
        sys.argv = old
    assert args.cfg_options['load_from'] == '/ckpt.pth'
    assert args.cfg_options['val_cfg'] is None


# ------------------------------------------------------------ eval scripts
def _step_png(path, cls, inst):
    import cv2
    rgb = np.stack([cls, inst // 256, inst % 256], -1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[..., ::-1])  # cv2 writes BGR


def _tiny_step(root):
    """One 4-frame KITTI-STEP sequence (the longest default VPQ window):
    road (0) and a car (13, id 1) moving right; identical folders
    result_path/ and gt_path/."""
    for folder in ('result_path', 'gt_path'):
        for frame in range(4):
            cls = np.zeros((8, 8), np.int64)
            inst = np.zeros((8, 8), np.int64)
            cls[2:5, frame:frame + 3] = 13
            inst[2:5, frame:frame + 3] = 1
            _step_png(root / folder / '0000' / f'{frame:06d}.png', cls, inst)


@pytest.mark.parametrize('script,metric', [('eval_dstq_step.py', 'STQ'),
                                           ('eval_dvpq_step.py', 'VPQ')])
def test_readme_eval_step_lines_run(script, metric, tmp_path):
    # README: python tools/eval_dstq_step.py result_path gt_path
    _tiny_step(tmp_path)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', script), 'result_path',
         'gt_path', '--json', 'out.json'], cwd=tmp_path,
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json
    with open(tmp_path / 'out.json') as f:
        result = json.load(f)
    assert result[metric] == pytest.approx(1.0)


def _tiny_vipseg(root):
    """VIP-Seg root (panomasks/<video>/*.png, val.txt) with one 8-frame
    video (the longest default VPQ window): wall (class 0, stuff, raw 1) and a thing of class 2 (the first
    thing id, raw (2+1)*100+0); the prediction in the "stuff first"
    space: stuff 0 -> 0, thing class 2 -> 66, instance k+1 = 1."""
    import cv2
    gt = root / 'gt_path'
    (gt / 'panomasks' / 'vid').mkdir(parents=True)
    (gt / 'val.txt').write_text('vid\n')
    for frame in range(8):
        raw = np.ones((8, 12), np.uint16)
        raw[1:4, frame:frame + 3] = 300
        cv2.imwrite(str(gt / 'panomasks' / 'vid' / f'{frame:05d}.png'), raw)
        cls = np.where(raw == 300, 66, 0)
        inst = (raw == 300).astype(np.int64)
        _step_png(root / 'result_path' / 'vid' / f'{frame:05d}.png', cls,
                  inst)


@pytest.mark.parametrize('script,metric', [('eval_dstq_vipseg.py', 'STQ'),
                                           ('eval_dvpq_vipseg.py', 'VPQ')])
def test_readme_eval_vipseg_lines_run(script, metric, tmp_path):
    # README: python tools/eval_dstq_vipseg.py result_path gt_path
    _tiny_vipseg(tmp_path)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', script), 'result_path',
         'gt_path', '--json', 'out.json'], cwd=tmp_path,
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json
    with open(tmp_path / 'out.json') as f:
        result = json.load(f)
    assert result[metric] == pytest.approx(1.0)
