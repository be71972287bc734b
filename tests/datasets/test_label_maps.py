# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Dataset <-> model label maps (spec §2.4, §10.1) for KITTI-STEP, VIP-Seg
and the synthetic STEP data, against hand-derived tables."""
import numpy as np
import pytest

from knet.datasets.kitti_step import step_label_inverse_lut, step_label_lut
from knet.datasets.label_maps import ModelLabelMap
from knet.evaluation.video_io import VIPSEG_THING_IDS


def test_kitti_step_table_and_round_trip():
    lmap = ModelLabelMap(19, (11, 13))
    # spec §2.4: 0..10 -> 2..12, 11 -> 0, 12 -> 13, 13 -> 1, 14..18 -> 14..18
    expected = list(range(2, 13)) + [0, 13, 1] + list(range(14, 19))
    assert lmap.to_model(np.arange(19)).tolist() == expected
    ids = np.arange(19)
    # spec §10.1: dataset -> model -> dataset is the identity, void stays
    assert lmap.to_dataset(lmap.to_model(ids)).tolist() == ids.tolist()
    assert lmap.to_model(np.array([255])).tolist() == [255]
    assert lmap.to_dataset(np.array([255, 19])).tolist() == [255, 255]
    # the step_label_lut functions are the same tables
    assert (step_label_lut() == lmap.to_model_lut).all()
    assert (step_label_inverse_lut() == lmap.to_dataset_lut).all()


def test_maps_keep_shape_and_refuse_out_of_range():
    lmap = ModelLabelMap(19, (11, 13))
    sem = np.array([[0, 11], [13, 255]], np.uint8)
    assert lmap.to_model(sem).tolist() == [[2, 0], [1, 255]]
    with pytest.raises(ValueError, match='to_model.*\\[0, 255\\]'):
        lmap.to_model(np.array([256]))
    with pytest.raises(ValueError, match='thing_ids'):
        ModelLabelMap(19, (11, 11))
    with pytest.raises(ValueError, match='num_classes'):
        ModelLabelMap(300, (1, ))


def test_synthetic_step_map():
    # stuff first in the files (0..4), things 5..10 -> model things first
    lmap = ModelLabelMap(11, (5, 6, 7, 8, 9, 10))
    assert lmap.to_model(np.arange(11)).tolist() == [6, 7, 8, 9, 10, 0, 1,
                                                     2, 3, 4, 5]


def test_vipseg_map():
    lmap = ModelLabelMap(124, VIPSEG_THING_IDS)
    assert lmap.num_things == 58
    model = lmap.to_model(np.arange(124))
    # things 0..57 in thing-id order (person = class 60 is the 18th thing)
    assert model[60] == 17 and model[2] == 0 and model[123] == 57
    # stuff 58..123 in class order: wall (0) first, 'ceiling' (1) next
    assert model[0] == 58 and model[1] == 59 and model[3] == 60
    assert sorted(model.tolist()) == list(range(124))
    assert lmap.to_dataset(model).tolist() == list(range(124))
