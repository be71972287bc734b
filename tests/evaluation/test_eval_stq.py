# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""STQ: deeplab2's published unit-test values and hand-computed cases."""
import numpy as np
import pytest

from knet.evaluation import STQMetric, STQuality

SHIFT = 16


def pan(sem, ins):
    return (np.asarray(sem) << SHIFT) + np.asarray(ins)


def one_sequence(metric, gt, pred):
    metric.reset_states()
    metric.update_state(np.asarray(gt), np.asarray(pred), 1)
    res = metric.result()
    assert res['ID_per_seq'] == [1] and res['Length_per_seq'] == [1]
    for key in ('STQ', 'AQ', 'IoU'):  # one sequence: total == per sequence
        assert res[f'{key}_per_seq'][0] == pytest.approx(res[key])
    return res['STQ'], res['AQ'], res['IoU']


# deeplab2 segmentation_and_tracking_quality_test.py, test_basic_examples:
# classes ['cars' (thing), 'sky'], ids are instance ids of class 0 unless
# shifted; (STQ, AQ, IoU) expected values as published there.
BASIC = [
    ([1, 1, 1, 1, 1], [1, 1, 1, 1, 1], (1.0, 1.0, 1.0)),
    ([1, 1, 1, 1, 1], [1, 1, 2, 2, 2], (0.72111026, 0.52, 1.0)),
    ([1, 1, 1, 1, 1], [1, 2, 2, 2, 2], (0.82462113, 0.68, 1.0)),
    ([1, 1, 1, 1, 1], [1, 2, 3, 4, 5], (0.447213596, 0.2, 1.0)),
    ([1, 1, 1, 1, 1], [1, 2, 1, 2, 2], (0.72111026, 0.52, 1.0)),
    ([1, 1, 1, 1, 1], pan([1, 0, 0, 0, 0], [0, 1, 1, 1, 1]),
     (0.50596443, 0.64, 0.4)),
    # first pixel is crowd
    ([0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], (1.0, 1.0, 1.0)),
    ([0, 1, 1, 1, 1, 1], [2, 2, 2, 2, 1, 1], (0.72111026, 0.52, 1.0)),
    ([0, 1, 1, 1, 1, 1], pan([0, 0, 1, 0, 0, 0], [2, 2, 0, 1, 1, 1]),
     (0.40824829, 0.4, 5.0 / 12.0)),
    # first pixel is sky
    (pan([1, 0, 0, 0, 0], [0, 1, 1, 1, 1]), [1, 1, 1, 1, 1],
     (0.56568542, 0.8, 0.4)),
    (pan([1, 0, 0, 0, 0], [0, 1, 1, 1, 1]), [2, 2, 2, 1, 1],
     (0.42426407, 0.45, 0.4)),
    (pan([1, 0, 0, 0, 0], [0, 1, 1, 1, 1]), pan([0, 0, 1, 0, 0],
                                               [2, 2, 0, 1, 1]),
     (0.3, 0.3, 0.3)),
]


@pytest.mark.parametrize('gt,pred,expected', BASIC)
def test_deeplab2_basic_examples(gt, pred, expected):
    metric = STQuality(2, [0], 255, SHIFT, 2**24)
    got = one_sequence(metric, [gt], [pred])
    np.testing.assert_allclose(got, expected, atol=1e-7)


def _grid(rows):
    return np.array([[int(c) for c in r] for r in rows.split()])


# deeplab2 test_complex_example: classes sky, vegetation, cars (thing 2),
# three 8x8 frames of one sequence.
GT_SEM = [
    '00000000 00000000 00020111 02222111 22222211 22222221 22222221 22222211',
    '00000000 00000000 02001100 22211110 22221111 22222111 22222111 22221111',
    '00000000 00000000 00000000 20111000 22111100 22211110 22211111 22211111',
]
GT_INS = [
    '00000000 00000000 00020000 02222000 22222200 22222220 22222220 22222200',
    '00000000 00000000 02000000 22200000 22220000 22222000 22222000 22220000',
    '00000000 00000000 00000000 20000000 22000000 22200000 22200000 22200000',
]
PRED_SEM = [
    '00000000 00000000 00000100 00022111 02222211 22222221 22222221 22222221',
    '00000000 00000000 00001100 02221111 22221111 22222111 22222211 22222111',
    '00000000 00000000 00001000 00111100 22211100 22211111 22221111 22221111',
]
PRED_INS = [
    '00000000 00000000 00000000 00022000 02222100 22222110 22221110 22221110',
    '00000000 00000000 00000000 02220000 22220000 22222000 22221100 22221000',
    '00000000 00000000 00000000 00000000 22200000 22200000 22220000 22220000',
]


def test_deeplab2_complex_example():
    metric = STQuality(3, [2], 255, SHIFT, 2**24)
    for f in range(3):
        metric.update_state(
            pan(_grid(GT_SEM[f]), _grid(GT_INS[f])).astype(np.int32),
            pan(_grid(PRED_SEM[f]), _grid(PRED_INS[f])).astype(np.int32), 1)
    res = metric.result()
    assert res['STQ'] == pytest.approx(0.66841773352, abs=1e-9)
    assert res['AQ'] == pytest.approx(0.55366581415, abs=1e-9)
    assert res['IoU'] == pytest.approx(0.8069529580309542, abs=1e-12)
    assert res['Length_per_seq'] == [3]


def test_sequences_combine_by_tube_count_and_summed_confusion():
    metric = STQuality(2, [0], 255, SHIFT, 2**24)
    # sequence 'a': one tube split 2/3 -> AQ 0.52 (deeplab2 example 1)
    metric.update_state(np.array([1, 1, 1, 1, 1]),
                        np.array([1, 1, 2, 2, 2]), 'a')
    # sequence 'b': two perfect tubes over two frames; sky mispredicted
    sky = 1 << SHIFT
    metric.update_state(np.array([1, 2, sky]), np.array([5, 6, 7]), 'b')
    metric.update_state(np.array([1, 2, sky]), np.array([5, 6, sky]), 'b')
    res = metric.result()
    assert res['ID_per_seq'] == ['a', 'b']
    assert res['Length_per_seq'] == [1, 2]
    np.testing.assert_allclose(res['AQ_per_seq'], [0.52, 1.0])
    # total AQ = (0.52 * 1 + 1.0 * 2) / 3 tubes, not the mean over sequences
    assert res['AQ'] == pytest.approx((0.52 + 2.0) / 3)
    # seq b confusion: car 4/5 (one sky px predicted car), sky 1/2
    np.testing.assert_allclose(res['IoU_per_seq'], [1.0, (4 / 5 + 1 / 2) / 2])
    # total: car 9/10, sky 1/2
    assert res['IoU'] == pytest.approx((9 / 10 + 1 / 2) / 2)
    np.testing.assert_allclose(
        res['STQ_per_seq'],
        np.sqrt(res['AQ_per_seq'] * np.asarray(res['IoU_per_seq'])))


def test_void_and_predicted_ignore_follow_deeplab2():
    metric = STQuality(2, [1], 255, SHIFT, 2**24)
    # GT void pixels are dropped from SQ
    gt = pan([0, 0, 1, 255], [0, 0, 1, 0])
    _, _, iou = one_sequence(metric, gt, pan([0, 0, 1, 1], [0, 0, 1, 1]))
    assert iou == 1.0
    # a predicted ignore label is a FN of the GT class *and* adds an extra
    # class with IoU 0 to the mean: (1 + 1/2 + 0) / 3
    gt = pan([0, 0, 1, 1], [0, 0, 1, 1])
    _, _, iou = one_sequence(metric, gt, pan([0, 0, 1, 255], [0, 0, 1, 0]))
    assert iou == pytest.approx(0.5)


def test_thing_prediction_on_stuff_counts_against_aq():
    metric = STQuality(2, [1], 255, SHIFT, 2**24)
    gt = pan([1, 1, 0, 0], [1, 1, 0, 0])
    pred = pan([1, 1, 1, 1], [5, 5, 5, 5])
    _, aq, _ = one_sequence(metric, gt, pred)
    assert aq == pytest.approx(0.5)  # TPA 2, FPA 2: 1/2 * 2 * 2/4


def test_identity_switch_lowers_aq_not_sq():
    metric = STQuality(2, [1], 255, SHIFT, 2**24)
    gt = pan([1, 1], [1, 1])
    metric.update_state(gt, pan([1, 1], [3, 3]), 0)
    metric.update_state(gt, pan([1, 1], [4, 4]), 0)
    res = metric.result()
    assert res['IoU'] == 1.0
    assert res['AQ'] == pytest.approx(0.5)  # 1/4 * (2 * 2/4 + 2 * 2/4)


def test_empty_prediction_and_merge_state():
    a = STQuality(2, [1], 255, SHIFT, 2**24)
    b = STQuality(2, [1], 255, SHIFT, 2**24)
    gt = pan([1, 1, 0], [1, 1, 0])
    a.update_state(gt, pan([255] * 3, [0] * 3), 'x')
    res = a.result()
    assert res['AQ'] == 0.0 and res['STQ'] == 0.0
    b.update_state(gt, gt, 'y')
    a.merge_state(b)
    res = a.result()
    assert res['ID_per_seq'] == ['x', 'y']
    np.testing.assert_allclose(res['AQ_per_seq'], [0.0, 1.0])


def test_errors():
    with pytest.raises(ValueError, match='offset'):
        STQuality(19, [11], 255, 16, 2**16)
    metric = STQuality(2, [1], 255, SHIFT, 2**24)
    with pytest.raises(ValueError, match=r'unknown semantic label.*\[7\]'):
        metric.update_state(pan([0, 7], [0, 0]), pan([0, 0], [0, 0]))
    with pytest.raises(ValueError, match='pixels'):
        metric.update_state(pan([0, 0], [0, 0]), pan([0], [0]))


def test_stq_metric_wrapper_matches_class():
    # mmdet encoding: class + instance * 1000; class == num_classes is void
    def sample(seq, frame, gt, pred):
        return {'video_id': seq, 'frame_id': frame,
                'gt_panoptic_seg': {'sem_seg': np.asarray(gt)[None]},
                'pred_panoptic_seg': {'sem_seg': np.asarray(pred)[None]}}

    gt = np.array([[1 + 1000, 1 + 1000, 0, 2]])  # class 2 (== C) is void
    preds = [np.array([[1 + 3000, 1 + 3000, 0, 1 + 3000]]),
             np.array([[1 + 4000, 1 + 3000, 0, 0]])]
    outs = {}
    for protocol in ('official', 'videoknet'):
        metric = STQMetric(num_classes=2, thing_ids=[1], protocol=protocol)
        metric.dataset_meta = {}
        metric.process({}, [sample(0, 0, gt, preds[0])])
        metric.process({}, [{'video_data_samples':
                             [sample(0, 1, gt, preds[1])]}])
        outs[protocol] = metric.evaluate(2)
    for protocol, keep in (('official', [True] * 4),
                           ('videoknet', [True, True, True, False])):
        keep = np.array(keep)  # videoknet drops the GT-void pixel
        ref = STQuality(2, [1], 255, SHIFT, 2**24)
        gt_cls = np.array([1, 1, 0, 255])
        for p in preds:
            ref.update_state(pan(gt_cls[keep], np.array([1, 1, 0, 0])[keep]),
                             pan(p[0][keep] % 1000, p[0][keep] // 1000), 0)
        res = ref.result()
        out = outs[protocol]
        assert out['video/STQ'] == pytest.approx(res['STQ'])
        assert out['video/AQ'] == pytest.approx(res['AQ'])
        assert out['video/SQ'] == pytest.approx(res['IoU'])
    # frame 0: tube 3 covers the GT tube (and, officially, the void pixel)
    assert 0.5 < outs['official']['video/AQ'] < outs['videoknet'][
        'video/AQ'] < 1.0


def test_missing_thing_classes_warn():
    stq = STQuality(3, [1], 255, SHIFT, 2**24)
    stq.update_state(pan([0, 2, 2], [0, 1, 1]), pan([0, 2, 2], [0, 1, 1]))
    with pytest.warns(UserWarning, match=r'thing classes \[1\]'):
        assert stq.result()['AQ'] == 0
