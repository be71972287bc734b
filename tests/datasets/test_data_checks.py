# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Start-up data check: synthetic data generated when missing (one process
under a lock), half-written folders regenerated, missing / malformed real
data reported with the resolved path and the DATASET.md section."""
import hashlib
import json
import os.path as osp
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mmengine.config import Config

from knet.datasets import data_paths
from knet.datasets.annotation_check import annotation_problem
from knet.datasets.data_checks import (AnnotationFileError, MissingDataError,
                                       check_data)
from knet.datasets.synthetic import generate, unit_lock
from knet.engine.runner import STARTUP_CHECKS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAN_CFG = osp.join(REPO, 'configs/toy/knet_s3_r18_fpn_toy-panoptic.py')
SEM_CFG = osp.join(REPO, 'configs/toy/knet_s3_fcn_r18_toy-semantic.py')
COCO_PAN_CFG = osp.join(REPO,
                        'configs/det/knet/knet_s3_r50_fpn_1x_coco-panoptic.py')
ADE_CFG = osp.join(REPO,
                   'configs/seg/knet/knet_s3_fcn_r50-d8_80k_adamw_ade20k.py')
CLI = osp.join(REPO, 'tools/generate_synthetic_data.py')
TINY = dict(num_train=3, num_val=2, size=(64, 64))


def _point(cfg: Config, root: str, panoptic: bool = True) -> Config:
    """Point every loader (and the COCO evaluators) at ``root``."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root + '/'
    if panoptic:
        for ev in ('val_evaluator', 'test_evaluator'):
            cfg[ev].ann_file = root + '/annotations/panoptic_val.json'
            cfg[ev].seg_prefix = root + '/annotations/panoptic_val/'
    return cfg


def _toy(root: str, **marker) -> Config:
    cfg = _point(Config.fromfile(PAN_CFG), root)
    cfg.synthetic_data.update(marker)
    return cfg


def _digest(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob('*')) if p.is_file()
    }


def test_check_is_registered_by_import_knet():
    assert check_data in STARTUP_CHECKS


def test_missing_synthetic_data_is_generated_like_the_cli(tmp_path):
    root = tmp_path / 'a' / 'coco'
    check_data(_toy(str(root), **TINY))
    meta = json.loads((root / 'meta.json').read_text())
    assert meta['params']['num_train'] == 3 and meta['params']['size'] == [
        64, 64
    ]
    assert len(list((root / 'train').iterdir())) == 3
    ann = json.loads((root / 'annotations/panoptic_val.json').read_text())
    assert len(ann['images']) == 2
    # same bytes as the up-front generator with the same parameters
    generate('panoptic', tmp_path / 'b', 0, progress=False, **TINY)
    assert _digest(root) == _digest(tmp_path / 'b' / 'coco')
    assert not [p for p in (tmp_path / 'a').iterdir()
                if p.name.startswith('.coco.partial')]


def test_complete_folder_with_other_parameters_is_kept(tmp_path):
    generate('panoptic', tmp_path, 0, progress=False, **TINY)
    before = (tmp_path / 'coco/meta.json').stat().st_mtime_ns
    check_data(_toy(str(tmp_path / 'coco'), num_train=5))
    assert (tmp_path / 'coco/meta.json').stat().st_mtime_ns == before


def test_half_written_folder_is_regenerated(tmp_path):
    root = tmp_path / 'coco'
    (root / 'train').mkdir(parents=True)
    (root / 'train' / '000000.png').write_bytes(b'\x89PNG truncated')
    (root / 'annotations').mkdir()
    check_data(_toy(str(root), **TINY))
    assert (root / 'meta.json').is_file()
    assert len(list((root / 'train').iterdir())) == 3


def test_foreign_folder_is_never_overwritten(tmp_path):
    root = tmp_path / 'coco'
    root.mkdir()
    (root / 'train2017').mkdir()
    (root / 'precious.txt').write_text('x')
    with pytest.raises(FileExistsError, match='synthetic_data'):
        check_data(_toy(str(root), **TINY))
    assert (root / 'precious.txt').read_text() == 'x'
    assert not (root / 'meta.json').exists()


def test_semantic_toy_generates_ade(tmp_path):
    cfg = _point(Config.fromfile(SEM_CFG), str(tmp_path / 'ade'),
                 panoptic=False)
    cfg.synthetic_data.update(num_train=2, num_val=1, size=(64, 64))
    check_data(cfg)
    assert len(list((tmp_path / 'ade/images/training').iterdir())) == 2
    assert len(list((tmp_path / 'ade/annotations/validation').iterdir())) == 1


def _cli(out: Path) -> subprocess.Popen:
    cmd = [sys.executable, CLI, '--out', str(out), '--tasks', 'ade',
           '--num-train', '40', '--num-val', '2', '--size', '64', '64',
           '--if-missing', '--quiet']
    return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_second_process_waits_for_the_lock(tmp_path):
    with unit_lock(tmp_path, 'ade'):
        proc = _cli(tmp_path)
        time.sleep(3)
        assert proc.poll() is None, proc.communicate()
        assert not (tmp_path / 'ade').exists()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert '[generated] ade' in out
    assert (tmp_path / 'ade/meta.json').is_file()


def test_two_processes_at_once_generate_once(tmp_path):
    procs = [_cli(tmp_path), _cli(tmp_path)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    stdout = ''.join(o for o, _ in outs)
    assert stdout.count('[generated] ade') == 1, stdout
    assert stdout.count('[skipped] ade') == 1, stdout
    generate('ade', tmp_path / 'ref', 0, progress=False, num_train=40,
             num_val=2, size=(64, 64))
    assert _digest(tmp_path / 'ade') == _digest(tmp_path / 'ref' / 'ade')


def test_missing_coco_names_paths_and_section(tmp_path):
    root = tmp_path / 'nowhere' / 'coco'
    cfg = _point(Config.fromfile(COCO_PAN_CFG), str(root))
    with pytest.raises(MissingDataError) as info:
        check_data(cfg)
    msg = str(info.value)
    assert f'{root}/: folder not found' in msg
    assert 'train_dataloader.dataset.data_root' in msg
    assert "DATASET.md, section 'COCO'" in msg
    # paths below the missing folder (the evaluator's) are not repeated
    assert 'val_evaluator' not in msg and len(msg.splitlines()) == 4


def test_incomplete_coco_lists_each_missing_path(tmp_path):
    root = tmp_path / 'coco'
    (root / 'train2017').mkdir(parents=True)
    (root / 'annotations').mkdir()
    cfg = _point(Config.fromfile(COCO_PAN_CFG), str(root))
    with pytest.raises(MissingDataError) as info:
        check_data(cfg)
    msg = str(info.value)
    assert f'{root}/train2017/: empty folder' in msg
    assert (f'{root}/annotations/panoptic_train2017.json: file not found'
            in msg)
    assert f'{root}/val2017/: folder not found' in msg
    assert f'{root}/annotations/panoptic_val2017.json' in msg


def test_a_test_run_does_not_need_the_train_split(tmp_path):
    cfg = _point(Config.fromfile(COCO_PAN_CFG), str(tmp_path / 'coco'))
    (tmp_path / 'coco').mkdir()
    cfg.load_from = str(tmp_path / 'model.pth')
    with pytest.raises(MissingDataError) as info:
        check_data(cfg)
    assert 'val2017' in str(info.value)
    assert 'train2017' not in str(info.value)


def test_missing_ade_points_to_its_section(tmp_path):
    cfg = Config.fromfile(ADE_CFG)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(tmp_path / 'ADEChallengeData2016')
    with pytest.raises(MissingDataError, match="section 'ADE20K'"):
        check_data(cfg)


def test_relative_data_paths_resolve_against_the_repository(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data_paths.REPO_ROOT == Path(REPO).resolve()
    expected = osp.join(str(data_paths.REPO_ROOT), 'data/coco/')
    assert data_paths.resolve_data_path('data/coco/') == expected
    assert data_paths.resolve_data_path('other/x') == 'other/x'
    # a working directory with its own data/ keeps working-directory paths
    (tmp_path / 'data').mkdir()
    assert data_paths.resolve_data_path('data/coco/') == 'data/coco/'


def test_missing_relative_path_is_printed_resolved(tmp_path, monkeypatch):
    repo_data = osp.join(str(data_paths.REPO_ROOT), 'data')
    if osp.isdir(osp.join(repo_data, 'coco')):
        pytest.skip('this checkout has data/coco')
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(COCO_PAN_CFG)
    with pytest.raises(MissingDataError) as info:
        check_data(cfg)
    msg = str(info.value)
    assert f'{repo_data}/coco/: folder not found' in msg
    assert 'has no data/ folder' in msg
    assert cfg.train_dataloader.dataset.data_root == repo_data + '/coco/'


def test_annotation_problems_name_the_defect(tmp_path, monkeypatch):
    def write(name, text):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    good = json.dumps(dict(images=[dict(id=1)], categories=[dict(id=1)]))
    assert annotation_problem(write('good.json', good), coco=True) is None
    msg = annotation_problem(write('cut.json', good[:24]), coco=True)
    assert msg == ('not valid JSON: Expecting property name enclosed in '
                   'double quotes (line 1, column 25, byte 24 of 24): '
                   'truncated or malformed')
    assert annotation_problem(
        write('nocat.json', '{"images": [{"id": 1}]}'),
        coco=True) == "no 'categories' list (not a COCO-format annotation " \
        'file?)'
    assert annotation_problem(
        write('noimg.json', '{"images": [], "categories": [{"id": 1}]}'),
        coco=True) == "'images' is empty"
    assert annotation_problem(write('empty.json', ''), coco=True).startswith(
        'empty file')
    # big files: only the truncation check
    from knet.datasets import annotation_check
    monkeypatch.setattr(annotation_check, 'FULL_PARSE_LIMIT', 10)
    assert annotation_problem(write('big.json', good), coco=True) is None
    assert 'truncated' in annotation_problem(
        write('bigcut.json', good[:-1]), coco=True)


def test_truncated_synthetic_annotation_is_reported_by_name(tmp_path):
    generate('panoptic', tmp_path, 0, progress=False, **TINY)
    ann = tmp_path / 'coco/annotations/panoptic_val.json'
    ann.write_bytes(ann.read_bytes()[:100])
    with pytest.raises(AnnotationFileError) as info:
        check_data(_toy(str(tmp_path / 'coco'), **TINY))
    msg = str(info.value)
    assert f'{ann}: not valid JSON' in msg
    assert "section 'Built-in synthetic data'" in msg
    assert 'regenerated' in msg


@pytest.mark.parametrize('path', [
    PAN_CFG, SEM_CFG,
    osp.join(REPO, 'configs/toy/knet_s3_r18_fpn_toy-instance.py')
])
def test_toy_configs_ask_for_the_quickstart_data(path):
    """Same task unit, seed and parameters as tools/quickstart.py and the
    CLI defaults: data made by either is never made again."""
    from knet.datasets.synthetic import task_dir
    spec = dict(Config.fromfile(path).synthetic_data)
    task, seed = spec.pop('task'), spec.pop('seed')
    assert seed == 0 and spec == {}  # quickstart: generate(task, root)
    root = Config.fromfile(path).train_dataloader.dataset.data_root
    assert Path(root) == task_dir(task, 'data/synthetic')
