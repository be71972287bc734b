# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VideoPanopticWriter: STEP / cat-ins / VIP-Seg files from model-space
predictions, scored by the eval tools; markers, void, atomic writes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.structures import PixelData

from knet.datasets.label_maps import ModelLabelMap
from knet.evaluation import cli
from knet.evaluation._utils import read_png
from knet.evaluation.panoptic_quality import rgb2id
from knet.evaluation.synthetic import make_step_video, write_step_png
from knet.evaluation.video_writers import (VideoPanopticWriter,
                                           assemble_pred_json, read_markers,
                                           write_png_atomic)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
THINGS = (11, 13)
LABELS = ModelLabelMap(19, THINGS)


def _frame(pan, video_id, frame_id, length, img_path=None, **extra):
    """A packed test frame as the model returns it (frame-level test:
    ``video_length`` 1, ``ori_video_length`` the real length)."""
    meta = dict(video_id=video_id, frame_id=frame_id, video_length=1,
                ori_video_length=length,
                img_path=img_path or f'/data/{video_id}/{frame_id:06d}.png',
                **extra)
    frame = DetDataSample(metainfo=meta)
    frame.pred_panoptic_seg = PixelData(
        sem_seg=torch.from_numpy(np.asarray(pan, np.int64)[None]))
    return TrackDataSample(video_data_samples=[frame]).to_dict()


def _model_pan(cls, ins, void_as=19):
    """Dataset-space (class, instance) -> model panoptic ``m + ins*1000``;
    void becomes ``void_as`` (the contract's num_classes, or 255)."""
    model = LABELS.to_model(cls)
    model = np.where(cls == 255, void_as, model)
    return model + np.where(cls == 255, 0, ins) * 1000


def _write_videos(writer, videos):
    for vid, (cls, ins) in videos.items():
        for f in range(len(cls)):
            writer.process(None, [_frame(_model_pan(cls[f], ins[f],
                                                    19 if f % 2 else 255),
                                         vid, f, len(cls))])


@pytest.fixture()
def gt_videos(tmp_path):
    """Two GT sequences (3 and 4 frames) written as STEP PNGs."""
    videos = {}
    for seq, (seed, n) in enumerate(((0, 3), (1, 4))):
        gc, gi, _, _ = make_step_video(num_frames=n, height=12, width=16,
                                       seed=seed)
        videos[seq] = (gc, gi)
        for f in range(n):
            write_step_png(str(tmp_path / 'gt' / f'{seq:04d}' /
                               f'{f:06d}.png'), gc[f], gi[f])
    return videos


def _scores(pred_root, gt_root, tmp_path, scripts=False):
    """STQ / VPQ json of tools/eval_d{stq,vpq}_step.py (run as scripts,
    or their in-process entry points)."""
    outs = []
    for name, main in (('dstq', cli.dstq_step_main),
                       ('dvpq', cli.dvpq_step_main)):
        out = tmp_path / f'{name}.json'
        argv = [str(pred_root), str(gt_root), '--json', str(out),
                '--no-progress']
        if scripts:
            subprocess.run([sys.executable, f'tools/eval_{name}_step.py',
                            *argv], cwd=REPO, check=True,
                           capture_output=True)
        else:
            assert main(argv) == 0
        outs.append(json.loads(out.read_text()))
    return outs


@pytest.mark.parametrize('fmt', ['step', 'catins'])
def test_predictions_equal_to_gt_score_one(gt_videos, tmp_path, fmt):
    out = tmp_path / 'out'
    writer = VideoPanopticWriter(str(out), 19, THINGS, formats=(fmt, ))
    _write_videos(writer, gt_videos)
    stq, vpq = _scores(out, tmp_path / 'gt', tmp_path,
                       scripts=fmt == 'catins')
    assert stq['STQ'] == pytest.approx(1.0)
    assert stq['AQ'] == pytest.approx(1.0)
    assert vpq['VPQ'] == pytest.approx(1.0)
    # every frame was read: 3 + 4 frames
    assert sum(s['num_frames'] for s in stq['per_sequence'].values()) == 7


def test_files_hold_dataset_classes_and_void_255(tmp_path):
    # model labels: 0 = person (trainId 11), 1 = car (13), 2 = road (0),
    # 19 and 255 = void
    pan = np.array([[0 + 3 * 1000, 1 + 300 * 1000, 2],
                    [19, 255, 2 + 0 * 1000]], np.int64)
    writer = VideoPanopticWriter(str(tmp_path), 19, THINGS,
                                 formats=('step', 'catins'))
    writer.process(None, [_frame(pan, 7, 0, 2)])
    rgb = read_png(str(tmp_path / 'final' / '0007' / '000000.png'))
    assert rgb[..., 0].tolist() == [[11, 13, 0], [255, 255, 0]]
    assert (rgb[..., 1].astype(int) * 256 + rgb[..., 2]).tolist() == [
        [3, 300, 0], [0, 0, 0]]
    cat = read_png(str(tmp_path / 'panoptic' / '7' / '000007_000000_cat.png'))
    ins = read_png(str(tmp_path / 'panoptic' / '7' / '000007_000000_ins.png'))
    assert cat.dtype == np.uint16 and ins.dtype == np.uint16
    assert cat.tolist() == [[11, 13, 0], [255, 255, 0]]
    assert ins.tolist() == [[3, 300, 0], [0, 0, 0]]


def test_stuff_first_class_space():
    # 19 classes, things 11, 13: stuff 0..10, 12, 14..18 -> 0..16;
    # person -> 17, car -> 18
    writer = VideoPanopticWriter('/nonexistent', 19, THINGS,
                                 class_space='stuff_first')
    model = np.array([0, 1, 2, 12, 13, 16, 255])  # model labels
    assert writer._file_classes(model, None).tolist() == [
        17, 18, 0, 10, 11, 14, 255]


def test_stuff_first_matches_the_vipseg_eval_space():
    """Dataset id c -> model -> stuff first == what read_vipseg_gt makes
    of the raw panomask value of c (stuff c + 1, thing (c + 1) * 100)."""
    from knet.evaluation.video_io import (_VIPSEG_LUT, VIPSEG_NUM_CLASSES,
                                          VIPSEG_THING_IDS)
    labels = ModelLabelMap(VIPSEG_NUM_CLASSES, VIPSEG_THING_IDS)
    writer = VideoPanopticWriter('/x', VIPSEG_NUM_CLASSES, VIPSEG_THING_IDS,
                                 class_space='stuff_first')
    ids = np.arange(VIPSEG_NUM_CLASSES)
    raw = np.where(np.isin(ids, VIPSEG_THING_IDS), (ids + 1) * 100, ids + 1)
    assert writer._file_classes(labels.to_model(ids), None).tolist() == (
        _VIPSEG_LUT[raw] // 1000).tolist()


def test_id_switch_lowers_aq_by_hand_value(tmp_path):
    """Sequence A: one car, tracked as 1, 1, then 2; sequence B: one car,
    tracked. AQ_A = (2n * 2/3 + n * 1/3) / 3n = 5/9, AQ = (5/9 + 1) / 2."""
    h, w = 6, 8
    cls = np.zeros((3, h, w), np.int64)  # road
    ins = np.zeros((3, h, w), np.int64)
    cls[:, 1:4, 2:6] = 13
    ins[:, 1:4, 2:6] = 1
    for seq in (0, 1):
        for f in range(3):
            write_step_png(str(tmp_path / 'gt' / f'{seq:04d}' /
                               f'{f:06d}.png'), cls[f], ins[f])
    writer = VideoPanopticWriter(str(tmp_path / 'out'), 19, THINGS)
    for seq in (0, 1):
        for f in range(3):
            track = ins[f] * (2 if seq == 0 and f == 2 else 1)
            writer.process(None, [_frame(_model_pan(cls[f], track), seq, f,
                                         3)])
    stq, vpq = _scores(tmp_path / 'out', tmp_path / 'gt', tmp_path)
    assert stq['AQ'] == pytest.approx((5 / 9 + 1) / 2)
    assert stq['SQ'] == pytest.approx(1.0)
    # VPQ: windows of 1 frame are perfect; a k-window spanning the switch in
    # A splits its car tube (IoU 2/3 or 1/2: TP only above 0.5)
    assert vpq['per_window']['1']['PQ'] == pytest.approx(1.0)
    assert vpq['VPQ'] < 1.0


def test_vipseg_segment_ids_per_class_and_track(tmp_path):
    """pan_pred ids: (class + 1) << 16 | track; a track that changes class
    gets a new id; stuff is one segment per class; void is id 0."""
    num_classes, things = 5, (1, 3)  # dataset ids; stuff 0, 2, 4
    labels = ModelLabelMap(num_classes, things)
    writer = VideoPanopticWriter(str(tmp_path), num_classes, things,
                                 formats=('vipseg', ),
                                 video_names={0: 'video_a'})

    def pan(ds_cls, track):
        return labels.to_model(np.asarray(ds_cls)) + np.asarray(track) * 1000

    # frame 0: track 4 is class 1; stuff 2 carries a stray track id 9
    f0 = pan([[1, 1, 2], [2, 0, 255]], [[4, 4, 9], [0, 0, 0]])
    # frame 1: track 4 switched to class 3
    f1 = pan([[3, 3, 2], [2, 0, 0]], [[4, 4, 0], [0, 0, 0]])
    for i, p in enumerate((f0, f1)):
        writer.process(None, [_frame(p, 0, i, 2,
                                     f'/vip/imgs/video_a/0000{i}.jpg')])
    assert writer.evaluate(2) == {'vps_files/frames_written': 2,
                                  'vps_files/sequences_done': 1}
    pred = json.loads((tmp_path / 'pred.json').read_text())
    (video, ) = pred['annotations']
    assert video['video_id'] == 'video_a'
    assert [a['file_name'] for a in video['annotations']] == [
        '00000.png', '00001.png']
    seg0 = {s['id']: s for s in video['annotations'][0]['segments_info']}
    seg1 = {s['id']: s for s in video['annotations'][1]['segments_info']}
    car_a = (1 + 1) * 65536 + 4
    car_b = (3 + 1) * 65536 + 4
    stuff2 = (2 + 1) * 65536
    stuff0 = 1 * 65536
    assert set(seg0) == {car_a, stuff2, stuff0}
    assert set(seg1) == {car_b, stuff2, stuff0}
    assert seg0[car_a]['category_id'] == 1 and seg1[car_b]['category_id'] == 3
    assert seg0[stuff2]['area'] == 2 and seg0[car_a]['iscrowd'] == 0
    png0 = rgb2id(read_png(str(tmp_path / 'pan_pred' / 'video_a' /
                               '00000.png')))
    assert png0.tolist() == [[car_a, car_a, stuff2], [stuff2, stuff0, 0]]
    # PNG ids == json ids (the official scorer's sanity check)
    png1 = rgb2id(read_png(str(tmp_path / 'pan_pred' / 'video_a' /
                               '00001.png')))
    assert set(np.unique(png1).tolist()) - {0} == set(seg1)


def test_marker_only_after_the_last_frame(tmp_path):
    writer = VideoPanopticWriter(str(tmp_path), 19, THINGS,
                                 formats=('step', ), fingerprint='ck:1')
    pan = np.zeros((2, 2), np.int64) + 2
    writer.process(None, [_frame(pan, 3, 0, 3)])
    writer.process(None, [_frame(pan, 3, 1, 3)])
    assert read_markers(str(tmp_path)) == {}  # killed here: not done
    writer.process(None, [_frame(pan, 3, 2, 3)])
    marker = read_markers(str(tmp_path))['3']
    assert marker['frames'] == 3 and marker['formats'] == ['step']
    assert marker['fingerprint'] == 'ck:1'


def test_frame_level_length_must_be_packed(tmp_path):
    writer = VideoPanopticWriter(str(tmp_path), 19, THINGS)
    frame = DetDataSample(metainfo=dict(video_id=0, frame_id=2,
                                        video_length=1))
    frame.pred_panoptic_seg = PixelData(sem_seg=torch.zeros(1, 2, 2).long())
    with pytest.raises(ValueError, match='ori_video_length'):
        writer.process(None, [frame])


def test_png_write_is_atomic(tmp_path, monkeypatch):
    import cv2
    path = tmp_path / 'a' / 'x.png'
    write_png_atomic(str(path), np.full((2, 2), 7, np.uint16))

    def broken(name, img):
        with open(name, 'wb') as f:
            f.write(b'\x89PNG partial')
        raise RuntimeError('disk full')

    monkeypatch.setattr(cv2, 'imwrite', broken)
    with pytest.raises(RuntimeError):
        write_png_atomic(str(path), np.full((2, 2), 9, np.uint16))
    assert os.listdir(tmp_path / 'a') == ['x.png']  # no temp file left
    monkeypatch.undo()
    assert read_png(str(path)).tolist() == [[7, 7], [7, 7]]  # old content


def test_pred_json_is_assembled_from_parts_of_earlier_runs(tmp_path):
    num_classes, things = 3, (1, )
    pan = np.zeros((2, 2), np.int64)  # model 0 = class 1 (thing), track 0
    for run, video in enumerate(('b_video', 'a_video')):
        writer = VideoPanopticWriter(str(tmp_path), num_classes, things,
                                     formats=('vipseg', ))
        writer.process(None, [_frame(pan, run, 0, 1, f'/v/{video}/000.jpg',
                                     video_name=video)])
        writer.evaluate(1)
    pred = json.loads((tmp_path / 'pred.json').read_text())
    assert [v['video_id'] for v in pred['annotations']] == [
        'a_video', 'b_video']
    assert assemble_pred_json(str(tmp_path / 'nothing')) is None


def test_vipseg_video_name_fallback(tmp_path):
    """Without ``video_name`` (metainfo or ``video_names``) an integer
    video id names the folder ``{id:04d}``, never the image folder (all
    frames of the flattened STEP layout share one)."""
    writer = VideoPanopticWriter(str(tmp_path), 3, (1, ),
                                 formats=('vipseg', ))
    writer.process(None, [_frame(np.zeros((2, 2), np.int64), 3, 0, 1,
                                 '/s/video_sequence/val/000003_000000.png')])
    assert os.listdir(tmp_path / 'pan_pred') == ['0003']


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='formats'):
        VideoPanopticWriter('/x', 19, THINGS, formats=('png', ))
    with pytest.raises(ValueError, match='class_space'):
        VideoPanopticWriter('/x', 19, THINGS, class_space='model')
