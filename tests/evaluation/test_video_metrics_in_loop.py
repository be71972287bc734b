# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""STQMetric / VPQMetric inside mmengine's Evaluator, fed frame by frame as
the test loop does (TrackImgSampler: one frame per TrackDataSample), give
the numbers of the file-based tools on the same maps."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData

import knet  # noqa: F401  (registers the metrics)
from knet.evaluation import (KITTI_STEP, evaluate_stq, evaluate_vpq,
                             step_sequences)
from knet.evaluation.synthetic import make_step_video, write_step_png


def write_step_sequences(root, seeds, num_frames):
    """GT / prediction STEP folders ``root/{gt,pred}/{seq:04d}/*.png``."""
    data = {}
    for seq, (seed, n) in enumerate(zip(seeds, num_frames)):
        arrays = make_step_video(num_frames=n, height=20, width=28,
                                 seed=seed)
        name = f'{seq:04d}'
        for f in range(n):
            for kind, (cls, ins) in (('gt', arrays[:2]),
                                     ('pred', arrays[2:])):
                write_step_png(f'{root}/{kind}/{name}/{f:06d}.png', cls[f],
                               ins[f])
        data[name] = arrays
    return data


def _pixel(cls, ins):
    pan = np.where(cls == 255, 255, cls + ins * 1000).astype(np.int64)
    return PixelData(sem_seg=torch.from_numpy(pan[None]))


def _sample(video, frame, length, arrays):
    gc, gi, pc, pi = arrays
    det = DetDataSample(metainfo=dict(video_id=video, frame_id=frame,
                                      video_length=1,
                                      ori_video_length=length))
    det.gt_panoptic_seg = _pixel(gc[frame], gi[frame])
    det.pred_panoptic_seg = _pixel(pc[frame], pi[frame])
    return TrackDataSample(video_data_samples=[det],
                           metainfo=dict(key_frames_inds=[0]))


@pytest.mark.parametrize('protocol', ['official', 'videoknet'])
def test_in_loop_metrics_equal_the_file_tools(tmp_path, protocol):
    data = write_step_sequences(str(tmp_path), seeds=(3, 4),
                                num_frames=(3, 5))
    evaluator = Evaluator([
        dict(type='STQMetric', _scope_='mmdet', num_classes=19,
             thing_ids=[11, 13], protocol=protocol),
        dict(type='VPQMetric', _scope_='mmdet', num_classes=19,
             thing_ids=[11, 13], protocol=protocol)
    ])
    # the second video first: the order of arrival must not matter
    for name in sorted(data, reverse=True):
        arrays = data[name]
        for f in range(len(arrays[0])):
            evaluator.process([_sample(int(name), f, len(arrays[0]),
                                       arrays)])
    # size = number of videos, as mmengine's TestLoop passes for mmdet's
    # video datasets; all 8 frames must still count
    got = evaluator.evaluate(size=2)

    seqs = step_sequences(str(tmp_path / 'pred'), str(tmp_path / 'gt'))
    stq = evaluate_stq(seqs, KITTI_STEP, protocol=protocol)
    vpq = evaluate_vpq(seqs, KITTI_STEP, protocol=protocol)
    assert 0 < stq['STQ'] < 1 and 0 < vpq['VPQ'] < 1  # a real test case
    for key in ('STQ', 'AQ', 'SQ'):
        assert got[f'video/{key}'] == pytest.approx(stq[key], abs=1e-12)
    for key in ('VPQ', 'VPQ_th', 'VPQ_st'):
        assert got[f'video/{key}'] == pytest.approx(vpq[key], abs=1e-12)
    for k, r in vpq['per_window'].items():
        assert got[f'video/VPQ@{k}'] == pytest.approx(r['PQ'], abs=1e-12)
