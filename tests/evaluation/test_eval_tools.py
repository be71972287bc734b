# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Command-line tools on generated folders: JSON values and error messages."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from knet.evaluation import (KITTI_STEP, VIPSEG, STQuality,
                             VideoPanopticQuality, pq_compute)
from knet.evaluation.cli import (dstq_step_main, dvpq_step_main,
                                 dvpq_vipseg_main)
from knet.evaluation.synthetic import make_step_video, write_step_png
from knet.evaluation.video_io import VIPSEG_THING_IDS

TOOLS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), 'tools')
SHIFT = 16


def run_tools(commands):
    """Run tool command lines concurrently; return their CompletedProcess."""
    procs = [
        subprocess.Popen([sys.executable, os.path.join(TOOLS, c[0])] + c[1:],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True) for c in commands
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append((p.returncode, stdout, stderr))
    return out


def expected_step(data, windows=(1, 2, 3, 4), settings=KITTI_STEP,
                  protocol='official'):
    """STQ / VPQ computed in-process from the arrays written to disk
    (``videoknet``: GT void removed for STQ, short sequences clipped)."""
    stq = STQuality(settings.num_classes, settings.thing_ids,
                    settings.ignore_label, SHIFT, 2**24)
    vpq = VideoPanopticQuality(settings.num_classes, settings.thing_ids,
                               settings.ignore_label, 2**SHIFT, windows,
                               protocol=protocol)
    for seq, (gc, gi, pc, pi) in data.items():
        for f in range(len(gc)):
            gt = (gc[f] << SHIFT) + gi[f]
            pred = (pc[f] << SHIFT) + pi[f]
            keep = (gc[f] != settings.ignore_label if protocol == 'videoknet'
                    else np.ones(gc[f].shape, bool))
            stq.update_state(gt[keep], pred[keep], seq)
            vpq.update(gt, pred, seq, f)
    return stq.result(), vpq.result()


def test_step_tools_json(step_folders, tmp_path):
    root, data = step_folders
    pred, gt = os.path.join(root, 'pred'), os.path.join(root, 'gt')
    stq_json, vpq_json = str(tmp_path / 'stq.json'), str(tmp_path / 'vpq.json')
    results = run_tools([
        ['eval_dstq_step.py', pred, gt, '--json', stq_json, '--nproc', '2'],
        ['eval_dvpq_step.py', pred, gt, '--json', vpq_json, '--no-progress'],
    ])
    for rc, stdout, stderr in results:
        assert rc == 0, stderr
    assert 'STQ' in results[0][1] and 'VPQ' in results[1][1]
    stq, vpq = expected_step(data)
    got = json.load(open(stq_json))
    assert got['STQ'] == pytest.approx(stq['STQ'], abs=1e-12)
    assert got['AQ'] == pytest.approx(stq['AQ'], abs=1e-12)
    assert got['SQ'] == pytest.approx(stq['IoU'], abs=1e-12)
    assert list(got['per_sequence']) == ['0000', '0001', '0002']
    assert got['per_sequence']['0001']['num_frames'] == 5
    np.testing.assert_allclose(
        [v['STQ'] for v in got['per_sequence'].values()], stq['STQ_per_seq'])
    assert 0.2 < got['STQ'] < 0.9 and got['units'].startswith('fraction')
    # the printed table is in percent
    assert f'{100 * got["STQ"]:.2f}' in results[0][1]
    got = json.load(open(vpq_json))
    for key in ('VPQ', 'VPQ_th', 'VPQ_st'):
        assert got[key] == pytest.approx(vpq[key], abs=1e-12)
    assert sorted(got['per_window']) == ['1', '2', '3', '4']
    for k in '1234':
        for key in ('PQ', 'PQ_th', 'PQ_st'):
            assert got['per_window'][k][key] == pytest.approx(
                vpq['per_window'][k][key], abs=1e-12)
    # the id switches make longer windows worse for things
    assert got['per_window']['4']['PQ_th'] < got['per_window']['1']['PQ_th']
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]


def test_perfect_prediction_scores_one(step_folders, tmp_path):
    root, _ = step_folders
    gt = os.path.join(root, 'gt')
    out = str(tmp_path / 'r.json')
    assert dstq_step_main([gt, gt, '--json', out, '--no-progress']) == 0
    assert json.load(open(out))['STQ'] == pytest.approx(1.0)
    assert dvpq_step_main([gt, gt, '--json', out, '--windows', '1', '3',
                           '--no-progress']) == 0
    res = json.load(open(out))
    assert res['VPQ'] == pytest.approx(1.0)
    assert sorted(res['per_window']) == ['1', '3']


def _copy_pred(step_folders, tmp_path):
    root, _ = step_folders
    pred = str(tmp_path / 'pred')
    shutil.copytree(os.path.join(root, 'pred'), pred)
    return pred, os.path.join(root, 'gt')


@pytest.mark.parametrize('main', [dstq_step_main, dvpq_step_main])
def test_missing_frame_is_named(step_folders, tmp_path, capsys, main):
    pred, gt = _copy_pred(step_folders, tmp_path)
    os.remove(os.path.join(pred, '0001', '000003.png'))
    assert main([pred, gt, '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'Missing prediction frame' in err
    assert os.path.join('0001', '000003.png') in err


def test_extra_frame_size_and_class_errors(step_folders, tmp_path, capsys):
    pred, gt = _copy_pred(step_folders, tmp_path)
    extra = os.path.join(pred, '0000', '000099.png')
    shutil.copy(os.path.join(pred, '0000', '000000.png'), extra)
    assert dstq_step_main([pred, gt, '--no-progress']) == 1
    assert '000099.png has no ground truth' in capsys.readouterr().err
    os.remove(extra)

    bad = os.path.join(pred, '0002', '000001.png')
    write_step_png(bad, np.zeros((5, 5), int), np.zeros((5, 5), int))
    assert dvpq_step_main([pred, gt, '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'Size mismatch' in err and bad in err

    cls = np.full((20, 28), 40)
    write_step_png(bad, cls, np.zeros_like(cls))
    assert dstq_step_main([pred, gt, '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'Unknown class id(s) [40]' in err and bad in err

    shutil.rmtree(os.path.join(pred, '0002'))
    assert dvpq_step_main([pred, gt, '--no-progress']) == 1
    assert os.path.join(pred, '0002') in capsys.readouterr().err


def test_video_knet_output_root_layout(step_folders, tmp_path):
    """PRED_DIR may be Video K-Net's output root: panoptic/{i}/*_cat|ins."""
    root, data = step_folders
    out = tmp_path / 'out'
    for seq, (_, _, pc, pi) in data.items():
        folder = out / 'panoptic' / str(int(seq))
        folder.mkdir(parents=True)
        for f in range(len(pc)):
            stem = str(folder / f'{int(seq):06d}_{f:06d}')
            Image.fromarray(pc[f].astype(np.uint16)).save(stem + '_cat.png')
            Image.fromarray(pi[f].astype(np.uint16)).save(stem + '_ins.png')
    a, b = str(tmp_path / 'a.json'), str(tmp_path / 'b.json')
    gt = os.path.join(root, 'gt')
    assert dstq_step_main([str(out), gt, '--json', a, '--no-progress']) == 0
    assert dstq_step_main([os.path.join(root, 'pred'), gt, '--json', b,
                           '--no-progress']) == 0
    assert json.load(open(a))['STQ'] == json.load(open(b))['STQ']


def test_subprocess_reports_error_exit_code(step_folders, tmp_path):
    pred, gt = _copy_pred(step_folders, tmp_path)
    os.remove(os.path.join(pred, '0000', '000000.png'))
    (rc, _, err), = run_tools([['eval_dvpq_step.py', pred, gt,
                                '--no-progress']])
    assert rc == 1 and '000000.png' in err and 'Traceback' not in err


# --------------------------------------------------------------------------
# VIP-Seg


def to_vipseg_raw(cls, ins):
    """Eval-space (stuff 0-65, things 66-123, void 255) -> raw panomask."""
    stuff = [c for c in range(124) if c not in VIPSEG_THING_IDS]
    raw = np.zeros(cls.shape, np.uint16)
    for c in np.unique(cls):
        sel = cls == c
        if c == 255:
            continue
        if c < 66:
            raw[sel] = stuff[c] + 1
        else:
            raw[sel] = (VIPSEG_THING_IDS[c - 66] + 1) * 100 + ins[sel] - 1
    return raw


@pytest.fixture(scope='module')
def vipseg_folders(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vipseg'))
    gt_root, pred_root = os.path.join(root, 'VIPSeg'), os.path.join(root,
                                                                    'out')
    videos = ['12_abc', '7_xyz']
    data = {}
    for i, video in enumerate(videos):
        gc, gi, pc, pi = make_step_video(num_frames=4 + i, height=14,
                                         width=18, num_classes=124,
                                         thing_ids=(83, 100), seed=10 + i)
        gi = np.where((gc >= 66) & (gc != 255) & (gi == 0), 9, gi)
        gi = np.where(gc < 66, 0, gi)
        pi = np.where(pc < 66, 0, pi)
        os.makedirs(os.path.join(gt_root, 'panomasks', video))
        os.makedirs(os.path.join(pred_root, 'panoptic', str(i)))
        for f in range(len(gc)):
            Image.fromarray(to_vipseg_raw(gc[f], gi[f])).save(
                os.path.join(gt_root, 'panomasks', video, f'{f:05d}.png'))
            stem = os.path.join(pred_root, 'panoptic', str(i),
                                f'{i:06d}_{f:06d}')
            Image.fromarray(pc[f].astype(np.uint16)).save(stem + '_cat.png')
            Image.fromarray(pi[f].astype(np.uint16)).save(stem + '_ins.png')
        data[video] = (gc, gi, pc, pi)
    with open(os.path.join(gt_root, 'val.txt'), 'w') as f:
        f.write('\n'.join(videos) + '\n')
    return pred_root, gt_root, data


def test_vipseg_tools_json(vipseg_folders, tmp_path):
    """``--protocol videoknet`` keeps the previous numbers (GT void removed,
    windows 1 2 4 6, short videos as one window)."""
    pred, gt, data = vipseg_folders
    stq_json, vpq_json = str(tmp_path / 'stq.json'), str(tmp_path / 'vpq.json')
    results = run_tools([
        ['eval_dstq_vipseg.py', pred, gt, '--json', stq_json, '--protocol',
         'videoknet'],
        ['eval_dvpq_vipseg.py', pred, gt, '--json', vpq_json, '--nproc', '2',
         '--protocol', 'videoknet'],
    ])
    for rc, stdout, stderr in results:
        assert rc == 0, stderr
        assert 'protocol videoknet' in stdout
    stq, vpq = expected_step(data, windows=(1, 2, 4, 6), settings=VIPSEG,
                             protocol='videoknet')
    got = json.load(open(stq_json))
    assert got['STQ'] == pytest.approx(stq['STQ'], abs=1e-12)
    assert list(got['per_sequence']) == ['12_abc', '7_xyz']
    assert 0.1 < got['AQ'] < 1.0
    got = json.load(open(vpq_json))
    assert sorted(got['per_window'], key=int) == ['1', '2', '4', '6']
    assert got['VPQ'] == pytest.approx(vpq['VPQ'], abs=1e-12)
    assert got['settings']['num_classes'] == 124
    assert got['protocol'] == got['settings']['protocol'] == 'videoknet'


def test_vipseg_instance_map_is_used(vipseg_folders, tmp_path, capsys):
    """Merging all track ids (the original script's bug) lowers thing VPQ."""
    pred, gt, _ = vipseg_folders
    merged = str(tmp_path / 'merged')
    shutil.copytree(pred, merged)
    for dirpath, _, files in os.walk(merged):
        for name in files:
            if name.endswith('_ins.png'):
                path = os.path.join(dirpath, name)
                ins = np.array(Image.open(path))
                Image.fromarray((ins > 0).astype(np.uint16)).save(path)
    a, b = str(tmp_path / 'a.json'), str(tmp_path / 'b.json')
    assert dvpq_vipseg_main([pred, gt, '--json', a, '--no-progress']) == 0
    assert dvpq_vipseg_main([merged, gt, '--json', b, '--no-progress']) == 0
    assert json.load(open(b))['VPQ_th'] < json.load(open(a))['VPQ_th']


def test_vipseg_bad_gt_value_is_named(vipseg_folders, tmp_path, capsys):
    pred, gt, _ = vipseg_folders
    bad_root = str(tmp_path / 'VIPSeg')
    shutil.copytree(gt, bad_root)
    path = os.path.join(bad_root, 'panomasks', '7_xyz', '00002.png')
    raw = np.array(Image.open(path))
    raw[0, 0] = 3  # class 2 (door) is a thing: raw 3 is invalid
    Image.fromarray(raw).save(path)
    assert dvpq_vipseg_main([pred, bad_root, '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'Unknown VIP-Seg label value(s) [3]' in err and path in err


# --------------------------------------------------------------------------
# image PQ tool


def test_eval_panoptic_tool(coco_sets, tmp_path):
    paths = coco_sets[0]
    out = str(tmp_path / 'pq.json')
    (rc, stdout, stderr), = run_tools([[
        'eval_panoptic.py', '--gt-json', paths['gt_json'], '--pred-json',
        paths['pred_json'], '--gt-dir', paths['gt_folder'], '--pred-dir',
        paths['pred_folder'], '--json', out, '--nproc', '2'
    ]])
    assert rc == 0, stderr
    ref = pq_compute(paths['gt_json'], paths['pred_json'],
                     paths['gt_folder'], paths['pred_folder'])
    got = json.load(open(out))
    for key in ('All', 'Things', 'Stuff'):
        assert got[key]['pq'] == pytest.approx(ref[key]['pq'], abs=1e-12)
        assert got[key]['n'] == ref[key]['n']
        assert f'{100 * ref[key]["pq"]:.2f}' in stdout
    assert got['per_class']['3']['pq'] == pytest.approx(
        ref['per_class'][3]['pq'])


def test_benchmark_script_runs_and_agrees(tmp_path):
    pytest.importorskip('panopticapi')
    out = str(tmp_path / 'bench.json')
    (rc, stdout, stderr), = run_tools([[
        'benchmark_pq.py', '--num-images', '3', '--height', '40', '--width',
        '50', '--repeats', '1', '--json', out
    ]])
    assert rc == 0, stderr
    res = json.load(open(out))
    assert max(res['max_abs_diff'].values()) <= 1e-9
    assert set(res['speedup']) >= {'knet_single_core', 'knet_default'}
    assert 'single core, in-process' in stdout


# --------------------------------------------------------------------------
# frame pairing, thing-id and window checks


def _renamed_copy(src, dst, rename):
    """Copy a ``{seq}/{frame}.png`` tree, renaming frames with ``rename``."""
    for seq in os.listdir(src):
        os.makedirs(os.path.join(dst, seq))
        for name in os.listdir(os.path.join(src, seq)):
            shutil.copy(os.path.join(src, seq, name),
                        os.path.join(dst, seq, rename(name)))
    return dst


def test_frames_pair_by_number_not_text_order(tmp_path):
    """``0.png .. 11.png`` against ``000000.png ..``: an exact copy of the
    ground truth scores 1 (text order would pair 10.png with frame 2)."""
    data = {'0000': make_step_video(num_frames=12, height=12, width=16,
                                    seed=5)}
    gt = str(tmp_path / 'gt')
    gc, gi, _, _ = data['0000']
    for f in range(12):
        write_step_png(os.path.join(gt, '0000', f'{f:06d}.png'), gc[f],
                       gi[f])
    pred = _renamed_copy(gt, str(tmp_path / 'pred'),
                         lambda n: f'{int(n[:-4])}.png')
    out = str(tmp_path / 'r.json')
    assert dstq_step_main([pred, gt, '--json', out, '--no-progress']) == 0
    assert json.load(open(out))['STQ'] == pytest.approx(1.0)
    assert dvpq_step_main([pred, gt, '--json', out, '--no-progress']) == 0
    assert json.load(open(out))['VPQ'] == pytest.approx(1.0)
    # GT frames named 0.png .. 11.png are ordered by number too
    assert dvpq_step_main([gt, pred, '--json', out, '--no-progress']) == 0
    assert json.load(open(out))['VPQ'] == pytest.approx(1.0)


def test_ambiguous_or_unmatched_frame_names_are_errors(step_folders,
                                                       tmp_path, capsys):
    root, _ = step_folders
    gt = os.path.join(root, 'gt')
    pred = _renamed_copy(gt, str(tmp_path / 'pred'),
                         lambda n: f'{int(n[:-4])}.png')
    dup = os.path.join(pred, '0001', '003.png')
    shutil.copy(os.path.join(pred, '0001', '3.png'), dup)
    assert dstq_step_main([pred, gt, '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'Ambiguous frame names' in err and dup in err
    assert os.path.join(pred, '0001', '3.png') in err
    os.remove(dup)
    os.rename(os.path.join(pred, '0001', '3.png'),
              os.path.join(pred, '0001', '13.png'))
    assert dvpq_step_main([pred, gt, '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'Missing prediction frame' in err
    assert os.path.join(gt, '0001', '000003.png') in err


def test_missing_thing_classes_warn(tmp_path):
    """Default things {11, 13} on data whose things are class 12."""
    gc = np.zeros((3, 8, 8), np.int64)
    gi = np.zeros_like(gc)
    gc[:, 2:5, 2:6], gi[:, 2:5, 2:6] = 12, 1
    for f in range(3):
        write_step_png(str(tmp_path / 'gt' / '0000' / f'{f:06d}.png'),
                       gc[f], gi[f])
    gt = str(tmp_path / 'gt')
    with pytest.warns(UserWarning, match=r'thing classes \[11, 13\]'):
        assert dstq_step_main([gt, gt, '--no-progress']) == 0
    with pytest.warns(UserWarning, match=r'thing classes \[11, 13\]'):
        assert dvpq_step_main([gt, gt, '--no-progress', '--windows',
                               '1']) == 0


@pytest.mark.parametrize('windows', [['0'], ['-2', '1'], ['1', '1']])
def test_bad_windows_stop_with_message(step_folders, capsys, windows):
    root, _ = step_folders
    gt = os.path.join(root, 'gt')
    with pytest.raises(SystemExit) as exc:
        dvpq_step_main([gt, gt, '--windows'] + windows)
    assert exc.value.code == 2
    assert '--windows' in capsys.readouterr().err
