# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Synthetic data shared by the evaluation tests (written once per session)."""
import os

import numpy as np
import pytest

from knet.evaluation.synthetic import (make_coco_panoptic, make_step_video,
                                       write_step_png)


@pytest.fixture(scope='session')
def coco_sets(tmp_path_factory):
    """Three random COCO-panoptic GT/prediction sets (different seeds)."""
    sets = []
    for seed in range(3):
        root = str(tmp_path_factory.mktemp(f'coco{seed}'))
        sets.append(
            make_coco_panoptic(root, num_images=5, height=48, width=64,
                               num_segments=18, seed=seed))
    return sets


def write_step_sequences(root, seeds=(0, 1, 2), num_frames=(4, 5, 6)):
    """GT and prediction STEP folders ``root/{gt,pred}/{seq:04d}/*.png``.

    Returns ``{seq_name: (gt_cls, gt_ins, pred_cls, pred_ins)}`` arrays.
    """
    data = {}
    for seq, (seed, n) in enumerate(zip(seeds, num_frames)):
        arrays = make_step_video(num_frames=n, height=20, width=28,
                                 seed=seed)
        name = f'{seq:04d}'
        gc, gi, pc, pi = arrays
        for f in range(n):
            write_step_png(
                os.path.join(root, 'gt', name, f'{f:06d}.png'), gc[f], gi[f])
            write_step_png(
                os.path.join(root, 'pred', name, f'{f:06d}.png'), pc[f],
                pi[f])
        data[name] = arrays
    return data


@pytest.fixture(scope='session')
def step_folders(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('step'))
    data = write_step_sequences(root)
    return root, data


@pytest.fixture
def rng():
    return np.random.default_rng(0)
