# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video tools against independent statements of the official scorers.

The default protocol must equal ``official_reference`` (deeplab2 STQuality,
``eval_vpq_vspw.py`` / VPSNet VPQ, ``eval_stq_vspw.py`` numbering) on
generated sequences with void, crowd, class and id switches, things on
void, predicted void, videos shorter than the windows and videos without
things; ``--protocol videoknet`` must keep Video K-Net's rules.
"""
import json
import os

import numpy as np
import pytest
from PIL import Image

from knet.evaluation import evaluate_stq, evaluate_vpq, step_sequences
from knet.evaluation.cli import (dstq_step_main, dstq_vipseg_main,
                                 dvpq_step_main, dvpq_vipseg_main)
from knet.evaluation.synthetic import write_step_png
from knet.evaluation.video_eval import KITTI_STEP, VIPSEG, default_windows

from official_reference import (VIPSEG_STUFF, VIPSEG_THINGS, deeplab2_stq,
                                 panopticapi_vpq, step_vpq_frame,
                                 vipseg_stq_inputs, vipseg_vpq_frame)

TOL = 1e-6
H, W = 12, 16


def _boxes(rng, n, num_obj):
    """Moving boxes: per object a list of (y0, y1, x0, x1) per frame."""
    pos = rng.integers(0, [H - 4, W - 5], size=(num_obj, 2))
    vel = rng.integers(-1, 2, size=(num_obj, 2))
    size = rng.integers(3, 6, size=(num_obj, 2))
    out = []
    for o in range(num_obj):
        frames = []
        for f in range(n):
            y, x = np.clip(pos[o] + f * vel[o], 0, [H - 2, W - 2])
            frames.append((y, y + size[o][0], x, x + size[o][1]))
        out.append(frames)
    return out


def _predict(rng, gc, gi, things, stuff, void=255):
    """Prediction from GT: shift, id swap, class switch of one track, a
    thing on void, a false positive, predicted void, a relabelled band."""
    n = len(gc)
    pc = np.roll(gc, 1, axis=2).copy()
    pi = np.roll(gi, 1, axis=2).copy()
    pc[pc == void] = stuff[0]
    pi[np.isin(pc, stuff)] = 0
    half = n // 2
    a, b = (pi[half:] == 1), (pi[half:] == 2)
    pi[half:][a], pi[half:][b] = 2, 1
    if len(things) > 1:  # track 3 switches class after the first third
        sel = pi[n // 3:] == 3
        cls = pc[n // 3:]
        cls[sel] = np.where(cls[sel] == things[0], things[1], things[0])
    void_px = gc == void
    thing_on_void = void_px & (rng.random(gc.shape) < 0.6)
    pc[thing_on_void], pi[thing_on_void] = things[-1], 9
    y, x = rng.integers(0, [H - 3, W - 3])
    pc[1::2, y:y + 3, x:x + 3], pi[1::2, y:y + 3, x:x + 3] = things[0], 20
    pc[:, 0, :3], pi[:, 0, :3] = void, 0  # predicted void
    pc[-1, :2, W // 2:] = stuff[-1]
    pi[-1, :2, W // 2:] = 0
    return pc, pi


def step_video(seed, n, things=(11, 13), with_things=True, crowd=True):
    """KITTI-STEP-like (T, H, W) class / instance maps for GT and pred."""
    rng = np.random.default_rng(seed)
    stuff = [c for c in range(19) if c not in things]
    gc = np.empty((n, H, W), np.int64)
    gi = np.zeros((n, H, W), np.int64)
    bands = rng.choice(stuff, 3)
    gc[:, :H // 3], gc[:, H // 3:2 * H // 3] = bands[0], bands[1]
    gc[:, 2 * H // 3:] = bands[2]
    vy, vx = rng.integers(0, [H - 3, W - 4])
    gc[:, vy:vy + 3, vx:vx + 4] = 255
    if with_things:
        boxes = _boxes(rng, n, 4)
        cls = rng.choice(things, 4)
        for o, frames in enumerate(boxes):
            for f, (y0, y1, x0, x1) in enumerate(frames):
                gc[f, y0:y1, x0:x1] = cls[o]
                gi[f, y0:y1, x0:x1] = 0 if (crowd and o == 3) else o + 1
    pc, pi = _predict(rng, gc, gi, list(things), stuff)
    return gc, gi, pc, pi


def write_step(root, videos):
    for name, (gc, gi, pc, pi) in videos.items():
        for f in range(len(gc)):
            write_step_png(os.path.join(root, 'gt', name, f'{f:06d}.png'),
                           gc[f], gi[f])
            write_step_png(os.path.join(root, 'pred', name, f'{f:06d}.png'),
                           pc[f], pi[f])
    return os.path.join(root, 'pred'), os.path.join(root, 'gt')


STEP_CASES = {  # name: (seed, frames, kwargs)
    '0002': (0, 6, {}),
    '0006': (1, 3, {}),  # shorter than k = 4
    '0007': (2, 5, {'crowd': False}),
    '0008': (3, 4, {'with_things': False}),
}


@pytest.fixture(scope='module')
def step_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('step_protocol'))
    videos = {name: step_video(seed, n, **kw)
              for name, (seed, n, kw) in STEP_CASES.items()}
    pred, gt = write_step(root, videos)
    return pred, gt, videos


def _run(main, argv, tmp_path, name='out.json'):
    out = str(tmp_path / name)
    assert main(list(argv) + ['--json', out, '--no-progress']) == 0
    return json.load(open(out))


def test_step_stq_default_is_deeplab2_on_whole_frames(step_data, tmp_path,
                                                      capsys):
    pred, gt, videos = step_data
    got = _run(dstq_step_main, [pred, gt], tmp_path)
    ref = deeplab2_stq({k: list(zip(*v)) for k, v in videos.items()}, 19,
                       (11, 13), 255)
    for key, ref_key in (('STQ', 'STQ'), ('AQ', 'AQ'), ('SQ', 'IoU')):
        assert abs(got[key] - ref[ref_key]) < TOL
    assert got['protocol'] == 'official'
    assert got['settings']['protocol'] == 'official'
    assert got['settings']['drop_gt_void'] is False
    assert 'protocol official (whole frames)' in capsys.readouterr().out


def _drop_void(frames, void=255):
    return [(gs[gs != void], gi[gs != void], ps[gs != void], pi[gs != void])
            for gs, gi, ps, pi in frames]


def test_step_stq_videoknet_removes_gt_void(step_data, tmp_path, capsys):
    pred, gt, videos = step_data
    got = _run(dstq_step_main, [pred, gt, '--protocol', 'videoknet'],
               tmp_path)
    ref = deeplab2_stq({k: _drop_void(list(zip(*v)))
                        for k, v in videos.items()}, 19, (11, 13), 255)
    assert abs(got['AQ'] - ref['AQ']) < TOL
    assert abs(got['STQ'] - ref['STQ']) < TOL
    assert got['protocol'] == 'videoknet'
    assert 'protocol videoknet (GT void removed)' in capsys.readouterr().out
    # predicted things on GT void count against AQ only officially
    official = _run(dstq_step_main, [pred, gt], tmp_path, 'b.json')
    assert official['AQ'] < got['AQ'] - 1e-4
    # --keep-gt-void turns videoknet's void rule off
    kept = _run(dstq_step_main,
                [pred, gt, '--protocol', 'videoknet', '--keep-gt-void'],
                tmp_path, 'c.json')
    assert kept['STQ'] == pytest.approx(official['STQ'], abs=1e-12)


def _step_vpq_videos(videos):
    return [[step_vpq_frame(gc[f], gi[f], pc[f], pi[f])
             for f in range(len(gc))] for gc, gi, pc, pi in videos.values()]


def test_step_vpq_default_is_official(step_data, tmp_path, capsys):
    pred, gt, videos = step_data
    got = _run(dvpq_step_main, [pred, gt], tmp_path)
    ref = panopticapi_vpq(_step_vpq_videos(videos), (1, 2, 3, 4), (11, 13))
    for key in ('VPQ', 'VPQ_th', 'VPQ_st'):
        assert abs(got[key] - ref[key]) < TOL, key
    for k in (1, 2, 3, 4):
        assert abs(got['per_window'][str(k)]['PQ'] -
                   ref['per_k'][k]['all']) < TOL
    assert got['protocol'] == 'official' and got['windows'] == [1, 2, 3, 4]
    assert 'protocol official' in capsys.readouterr().out


def test_step_vpq_videoknet_scores_short_sequence_as_one_window(
        step_data, tmp_path):
    pred, gt, videos = step_data
    got = _run(dvpq_step_main, [pred, gt, '--protocol', 'videoknet'],
               tmp_path)
    ref = panopticapi_vpq(_step_vpq_videos(videos), (1, 2, 3, 4), (11, 13),
                          clip_short=True)
    for key in ('VPQ', 'VPQ_th', 'VPQ_st'):
        assert abs(got[key] - ref[key]) < TOL, key
    official = _run(dvpq_step_main, [pred, gt], tmp_path, 'b.json')
    assert got['protocol'] == 'videoknet'
    assert got['settings']['clip_short_sequences'] is True
    # only k = 4 differs: sequence 0006 has 3 frames
    assert abs(got['per_window']['4']['PQ'] -
               official['per_window']['4']['PQ']) > 1e-4
    for k in ('1', '2', '3'):
        assert got['per_window'][k]['PQ'] == pytest.approx(
            official['per_window'][k]['PQ'], abs=1e-12)


# --------------------------------------------------------------------------
# VIP-Seg


def vipseg_video(seed, n, first='stuff', with_things=True):
    """Original-order (0..123) GT classes + 0-based thing index k, raw
    panomasks and a prediction. ``first``: what frame 0 holds - 'stuff'
    (normal), 'things' (things on void only, so a thing is numbered 0
    officially) or 'void' (all void; frame 1 has things on void only)."""
    rng = np.random.default_rng(100 + seed)
    things = sorted(rng.choice(VIPSEG_THINGS, 2, replace=False).tolist())
    stuff = rng.choice(VIPSEG_STUFF, 3, replace=False).tolist()
    gc = np.empty((n, H, W), np.int64)
    gk = np.zeros((n, H, W), np.int64)
    gc[:, :H // 2], gc[:, H // 2:] = stuff[0], stuff[1]
    gc[:, H - 3:, W - 5:] = stuff[2]
    vy, vx = rng.integers(0, [H - 3, W - 4])
    gc[:, vy:vy + 3, vx:vx + 4] = 255
    if first in ('things', 'void'):
        gc[0] = 255
    if first == 'void':
        gc[1] = 255
    if with_things:
        boxes = _boxes(rng, n, 3)
        cls = rng.choice(things, 3)
        for o, frames in enumerate(boxes):
            for f, (y0, y1, x0, x1) in enumerate(frames):
                if first == 'void' and f == 0:
                    continue
                gc[f, y0:y1, x0:x1] = cls[o]
                gk[f, y0:y1, x0:x1] = o
    raw = np.where(gc == 255, 0,
                   np.where(np.isin(gc, VIPSEG_THINGS), (gc + 1) * 100 + gk,
                            gc + 1)).astype(np.uint16)
    gi = np.where(np.isin(gc, VIPSEG_THINGS), gk + 1, 0)
    pc, pi = _predict(rng, gc, gi, things, stuff)
    return raw, gc, gi, pc, pi


def to_eval_space(cls):
    """Original class -> Video K-Net's stuff-first evaluation class."""
    lut = np.full(256, 255, np.int64)
    lut[list(VIPSEG_STUFF)] = np.arange(len(VIPSEG_STUFF))
    lut[list(VIPSEG_THINGS)] = len(VIPSEG_STUFF) + np.arange(
        len(VIPSEG_THINGS))
    return lut[cls]


VIP_CASES = {  # video: (seed, frames, kwargs)
    '101_aa': (0, 9, {}),
    '7_bb': (1, 3, {'first': 'things'}),
    '33_cc': (2, 5, {'first': 'void'}),
    '4_dd': (3, 8, {'with_things': False}),
    '5_ee': (4, 7, {'first': 'things'}),
}


@pytest.fixture(scope='module')
def vip_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vip_protocol'))
    gt_root, pred_root = os.path.join(root, 'VIPSeg'), os.path.join(root,
                                                                    'out')
    videos = {}
    for i, (video, (seed, n, kw)) in enumerate(VIP_CASES.items()):
        raw, gc, gi, pc, pi = vipseg_video(seed, n, **kw)
        os.makedirs(os.path.join(gt_root, 'panomasks', video))
        os.makedirs(os.path.join(pred_root, 'panoptic', str(i)))
        for f in range(n):
            num = 30 + 5 * f  # sampled frame numbers, dump uses indices
            Image.fromarray(raw[f]).save(
                os.path.join(gt_root, 'panomasks', video, f'{num:08d}.png'))
            stem = os.path.join(pred_root, 'panoptic', str(i),
                                f'{i:06d}_{f:06d}')
            Image.fromarray(to_eval_space(pc[f]).astype(np.uint16)).save(
                stem + '_cat.png')
            Image.fromarray(pi[f].astype(np.uint16)).save(stem + '_ins.png')
        videos[video] = (raw, gc, gi, pc, pi)
    with open(os.path.join(gt_root, 'val.txt'), 'w') as f:
        f.write('\n'.join(VIP_CASES) + '\n')
    return pred_root, gt_root, videos


def test_vipseg_stq_default_is_eval_stq_vspw(vip_data, tmp_path, capsys):
    pred, gt, videos = vip_data
    got = _run(dstq_vipseg_main, [pred, gt], tmp_path)
    ref = deeplab2_stq(
        {v: vipseg_stq_inputs(raw, pc, pi)
         for v, (raw, _, _, pc, pi) in videos.items()}, 124, VIPSEG_THINGS,
        255)
    for key, ref_key in (('STQ', 'STQ'), ('AQ', 'AQ'), ('SQ', 'IoU')):
        assert abs(got[key] - ref[ref_key]) < TOL, key
    assert got['protocol'] == 'official'
    assert got['settings']['zero_numbered_crowd'] is True
    assert 'protocol official' in capsys.readouterr().out
    # the thing numbered 0 matters: whole frames alone do not give it
    kept = _run(dstq_vipseg_main,
                [pred, gt, '--protocol', 'videoknet', '--keep-gt-void'],
                tmp_path, 'b.json')
    assert abs(kept['AQ'] - got['AQ']) > 1e-4
    assert kept['SQ'] == pytest.approx(got['SQ'], abs=1e-12)


def test_vipseg_stq_videoknet(vip_data, tmp_path):
    pred, gt, videos = vip_data
    got = _run(dstq_vipseg_main, [pred, gt, '--protocol', 'videoknet'],
               tmp_path)
    ref = deeplab2_stq(
        {v: _drop_void(list(zip(gc, gi, pc, pi)))
         for v, (_, gc, gi, pc, pi) in videos.items()}, 124, VIPSEG_THINGS,
        255)
    for key, ref_key in (('STQ', 'STQ'), ('AQ', 'AQ'), ('SQ', 'IoU')):
        assert abs(got[key] - ref[ref_key]) < TOL, key
    assert got['protocol'] == 'videoknet'


def _vip_vpq_videos(videos):
    return [[vipseg_vpq_frame(raw[f], pc[f], pi[f]) for f in range(len(raw))]
            for raw, _, _, pc, pi in videos.values()]


def test_vipseg_vpq_default_is_eval_vpq_vspw(vip_data, tmp_path, capsys):
    pred, gt, videos = vip_data
    got = _run(dvpq_vipseg_main, [pred, gt, '--nproc', '2'], tmp_path)
    ref = panopticapi_vpq(_vip_vpq_videos(videos), (1, 2, 4, 6, 8),
                          VIPSEG_THINGS)
    assert sorted(got['per_window'], key=int) == ['1', '2', '4', '6', '8']
    for key in ('VPQ', 'VPQ_th', 'VPQ_st'):
        assert abs(got[key] - ref[key]) < TOL, key
    for k in (1, 2, 4, 6, 8):
        assert abs(got['per_window'][str(k)]['PQ_th'] -
                   ref['per_k'][k]['things']) < TOL
    out = capsys.readouterr().out
    assert 'protocol official (windows 1 2 4 6 8' in out


def test_vipseg_vpq_videoknet(vip_data, tmp_path):
    pred, gt, videos = vip_data
    got = _run(dvpq_vipseg_main, [pred, gt, '--protocol', 'videoknet'],
               tmp_path)
    ref = panopticapi_vpq(_vip_vpq_videos(videos), (1, 2, 4, 6),
                          VIPSEG_THINGS, clip_short=True)
    assert sorted(got['per_window'], key=int) == ['1', '2', '4', '6']
    for key in ('VPQ', 'VPQ_th', 'VPQ_st'):
        assert abs(got[key] - ref[key]) < TOL, key
    official = panopticapi_vpq(_vip_vpq_videos(videos), (1, 2, 4, 6),
                               VIPSEG_THINGS)
    assert abs(official['VPQ'] - got['VPQ']) > 1e-4  # short videos count
    # --windows replaces the protocol's window set
    got = _run(dvpq_vipseg_main, [pred, gt, '--windows', '2', '8'],
               tmp_path, 'b.json')
    ref = panopticapi_vpq(_vip_vpq_videos(videos), (2, 8), VIPSEG_THINGS)
    assert abs(got['VPQ'] - ref['VPQ']) < TOL
    assert got['settings']['windows'] == [2, 8]


def test_library_defaults_are_official(step_data):
    pred, gt, videos = step_data
    seqs = step_sequences(pred, gt)
    ref = deeplab2_stq({k: list(zip(*v)) for k, v in videos.items()}, 19,
                       (11, 13), 255)
    assert abs(evaluate_stq(seqs, KITTI_STEP)['AQ'] - ref['AQ']) < TOL
    vpq = evaluate_vpq(seqs, KITTI_STEP)
    ref = panopticapi_vpq(_step_vpq_videos(videos), (1, 2, 3, 4), (11, 13))
    assert abs(vpq['VPQ'] - ref['VPQ']) < TOL
    assert vpq['protocol'] == 'official'
    assert evaluate_vpq(seqs, KITTI_STEP,
                        protocol='videoknet')['protocol'] == 'videoknet'
    assert default_windows(VIPSEG) == [1, 2, 4, 6, 8]
    assert default_windows(VIPSEG, 'videoknet') == [1, 2, 4, 6]
    assert default_windows(KITTI_STEP, 'videoknet') == [1, 2, 3, 4]
    with pytest.raises(ValueError, match='protocol'):
        evaluate_stq(seqs, KITTI_STEP, protocol='deeplab')
