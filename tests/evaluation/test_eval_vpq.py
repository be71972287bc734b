# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VPQ: hand-computed windows and a brute-force concatenation reference."""
from collections import Counter

import numpy as np
import pytest

from knet.evaluation import (VideoPanopticQuality, VPQMetric, pq_from_counts,
                             vpq_frame_stats, window_pq_counts)
from knet.evaluation.synthetic import make_step_video

DIV = 2**16


def ids(cls, ins):
    return np.asarray(cls) * DIV + np.asarray(ins)


def reference_counts(gt_frames, pred_frames, k, num_classes, ignore):
    """Loop-based VPQ^k counts: concatenate each window side by side and
    apply the PQ rules segment by segment."""
    out = np.zeros((4, num_classes))
    n = len(gt_frames)
    k = min(k, n)
    for start in range(n - k + 1):
        gt = np.concatenate(gt_frames[start:start + k], axis=1).ravel()
        pred = np.concatenate(pred_frames[start:start + k], axis=1).ravel()
        g_area = Counter(gt.tolist())
        p_area = Counter(pred.tolist())
        inter = Counter(zip(gt.tolist(), pred.tolist()))
        void = {g for g in g_area if g // DIV == ignore}
        g_hit, p_hit = set(), set()
        for (g, p), a in inter.items():
            if g // DIV != p // DIV or g in void:
                continue
            on_void = sum(inter.get((v, p), 0) for v in void)
            iou = a / (g_area[g] + p_area[p] - a - on_void)
            if iou > 0.5:
                out[0, g // DIV] += iou
                out[1, g // DIV] += 1
                g_hit.add(g)
                p_hit.add(p)
        for p, a in p_area.items():
            if p in p_hit or p // DIV == ignore:
                continue
            if sum(inter.get((v, p), 0) for v in void) / a > 0.5:
                continue
            out[2, p // DIV] += 1
        for g in g_area:
            if g not in g_hit and g not in void:
                out[3, g // DIV] += 1
    return out


def test_identity_switch_is_penalised_only_by_longer_windows():
    # 1x4 frames: stuff class 0 on the left, thing class 1 (id 1) on the
    # right; the prediction switches the thing's id in frame 2
    gt = ids([[0, 0, 1, 1]], [[0, 0, 1, 1]])
    pred = [ids([[0, 0, 1, 1]], [[0, 0, 1, 1]]),
            ids([[0, 0, 1, 1]], [[0, 0, 2, 2]])]
    vpq = VideoPanopticQuality(2, [1], windows=(1, 2))
    for f in range(2):
        vpq.update(gt, pred[f], 'seq', f)
    res = vpq.result()
    w1, w2 = res['per_window']['1'], res['per_window']['2']
    assert (w1['PQ'], w1['PQ_th'], w1['PQ_st']) == (1.0, 1.0, 1.0)
    # window of 2: the GT tube (4 px) meets two 2-px tubes, IoU 0.5 each:
    # no match, thing FN 1 + FP 2 -> thing PQ 0; stuff still 1
    assert (w2['PQ'], w2['PQ_th'], w2['PQ_st']) == (0.5, 0.0, 1.0)
    assert w2['per_class'][1] == {'PQ': 0.0, 'SQ': 0.0, 'RQ': 0.0, 'tp': 0,
                                  'fp': 2, 'fn': 1}
    assert res['VPQ'] == pytest.approx(0.75)
    assert res['VPQ_th'] == pytest.approx(0.5)
    assert res['VPQ_st'] == pytest.approx(1.0)


def test_void_rules():
    # GT: thing 1 x2 px, void (255) x4 px, stuff 0 x2 px
    gt = ids([[1, 1, 255, 255, 255, 255, 0, 0]], [[1, 1, 0, 0, 0, 0, 0, 0]])
    # pred thing covers its GT + 2 void px: union 4 - 2 = 2 -> IoU 1;
    # pred class 0 tube on 2 void px + 2 stuff: matches stuff 0
    # (IoU 2 / (2 + 4 - 2 - 2) = 1)
    pred = ids([[1, 1, 1, 1, 0, 0, 0, 0]], [[1, 1, 1, 1, 0, 0, 0, 0]])
    c = window_pq_counts([vpq_frame_stats(gt, pred)], 1, 2, 255, DIV)
    np.testing.assert_array_equal(c, [[1, 1], [1, 1], [0, 0], [0, 0]])
    # an unmatched prediction mostly on void is not a FP; half is a FP
    pred = ids([[0, 0, 1, 1, 1, 0, 0, 0]], [[0, 0, 5, 5, 5, 0, 0, 0]])
    c = window_pq_counts([vpq_frame_stats(gt, pred)], 1, 2, 255, DIV)
    assert c[2, 1] == 0 and c[3, 1] == 1  # thing: FN, no FP
    pred = ids([[0, 1, 1, 1, 0, 0, 0, 0]], [[0, 5, 5, 5, 0, 0, 0, 0]])
    c = window_pq_counts([vpq_frame_stats(gt, pred)], 1, 2, 255, DIV)
    assert c[2, 1] == 0  # 2 of 3 px on void
    pred = ids([[1, 1, 1, 1, 0, 0, 0, 0]], [[5, 5, 6, 6, 0, 0, 0, 0]])
    c = window_pq_counts([vpq_frame_stats(gt, pred)], 1, 2, 255, DIV)
    # id 5 covers GT exactly (TP); id 6 lies fully on void (ignored)
    assert c[1, 1] == 1 and c[2, 1] == 0
    pred = ids([[0, 1, 1, 0, 0, 0, 0, 0]], [[0, 5, 5, 0, 0, 0, 0, 0]])
    c = window_pq_counts([vpq_frame_stats(gt, pred)], 1, 2, 255, DIV)
    assert c[2, 1] == 1  # exactly half on void -> FP


def test_empty_prediction_and_absent_classes():
    gt = ids([[0, 0, 1, 1]], [[0, 0, 1, 1]])
    pred = ids([[255] * 4], [[0] * 4])  # unlabelled everywhere
    vpq = VideoPanopticQuality(5, [1, 3], windows=(1, ))
    vpq.update(gt, pred, 0, 0)
    res = vpq.result()
    w = res['per_window']['1']
    # classes 2, 3, 4 never occur and are left out of the means
    assert (w['n'], w['n_th'], w['n_st']) == (2, 1, 1)
    assert res['VPQ'] == 0.0
    assert w['per_class'][1]['fn'] == 1


def test_short_sequence_rules():
    """Official: a 2-frame sequence adds nothing at k = 4; videoknet: it is
    one 2-frame window (an id switch there: 1 FN + 1 FP)."""
    gt = ids([[1, 1]], [[1, 1]])
    pred = [ids([[1, 1]], [[1, 1]]), ids([[1, 1]], [[2, 2]])]
    frames = [vpq_frame_stats(gt, p) for p in pred]
    assert not window_pq_counts(frames, 4, 2, 255, DIV).any()
    clipped = window_pq_counts(frames, 4, 2, 255, DIV, clip_short=True)
    np.testing.assert_array_equal(clipped[:, 1], [0, 0, 2, 1])
    np.testing.assert_array_equal(
        clipped, window_pq_counts(frames, 2, 2, 255, DIV))
    vpq = VideoPanopticQuality(2, [1], windows=(1, 4), protocol='videoknet')
    for f, p in enumerate(pred):
        vpq.update(gt, p, 's', f)
    assert vpq.result()['per_window']['4']['per_class'][1]['fp'] == 2
    assert vpq.result()['protocol'] == 'videoknet'
    official = VideoPanopticQuality(2, [1], windows=(1, 4))
    for f, p in enumerate(pred):
        official.update(gt, p, 's', f)
    with pytest.warns(UserWarning, match=r'window size\(s\) \[4\]'):
        res = official.result()
    assert res['per_window']['4']['n'] == 0
    assert res['VPQ'] == pytest.approx(res['per_window']['1']['PQ'] / 2)


@pytest.mark.parametrize('windows', [[0], [], [-1, 2], [2, 2], [1.5]])
def test_bad_windows_are_rejected(windows):
    with pytest.raises(ValueError, match='window'):
        VideoPanopticQuality(2, [1], windows=windows)


def test_missing_thing_classes_warn():
    gt = ids([[0, 2, 2]], [[0, 1, 1]])  # things are class 2, not 1
    vpq = VideoPanopticQuality(3, [1], windows=(1, ))
    vpq.update(gt, gt, 's', 0)
    with pytest.warns(UserWarning, match=r'thing classes \[1\]'):
        assert vpq.result()['VPQ_th'] == 0


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_bruteforce_concatenation(seed):
    gc, gi, pc, pi = make_step_video(num_frames=6, height=18, width=26,
                                     seed=seed)
    gt = [ids(c, i) for c, i in zip(gc, gi)]
    pred = [ids(c, i) for c, i in zip(pc, pi)]
    frames = [vpq_frame_stats(g, p) for g, p in zip(gt, pred)]
    for k in (1, 2, 3, 4):
        ours = window_pq_counts(frames, k, 19, 255, DIV)
        ref = reference_counts(gt, pred, k, 19, 255)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
        assert ours[1].sum() > 0 and ours[2:].sum() > 0  # non-trivial


def test_unknown_class_raises():
    gt = ids([[0, 30]], [[0, 0]])
    with pytest.raises(ValueError, match=r'unknown class.*\[30\].*ground'):
        window_pq_counts([vpq_frame_stats(gt, gt)], 1, 19, 255, DIV)


def test_pq_from_counts_subsets():
    counts = np.zeros((4, 3))
    counts[:, 0] = [1.5, 2, 0, 0]  # stuff: SQ .75, RQ 1
    counts[:, 2] = [0.9, 1, 1, 1]  # thing: PQ .9/2
    r = pq_from_counts(counts, [2])
    assert r['PQ_st'] == pytest.approx(0.75)
    assert r['PQ_th'] == pytest.approx(0.45)
    assert r['PQ'] == pytest.approx((0.75 + 0.45) / 2)
    assert r['RQ_th'] == pytest.approx(0.5) and r['n'] == 2


def test_vpq_metric_wrapper_matches_class():
    gc, gi, pc, pi = make_step_video(num_frames=4, height=12, width=16,
                                     seed=3)
    metric = VPQMetric(num_classes=19, thing_ids=[11, 13])
    metric.dataset_meta = {}
    ref = VideoPanopticQuality(19, [11, 13])
    for f in reversed(range(4)):  # frame order is restored by frame_id
        gt_pan = np.where(gc[f] == 255, 19, gc[f]) + gi[f] * 1000
        pr_pan = pc[f] + pi[f] * 1000
        metric.process({}, [{'video_id': 'v', 'frame_id': f,
                             'gt_panoptic_seg': {'sem_seg': gt_pan[None]},
                             'pred_panoptic_seg': {'sem_seg': pr_pan}}])
        ref.update(ids(gc[f], np.where(gc[f] == 255, 0, gi[f])),
                   ids(pc[f], pi[f]), 'v', f)
    out = metric.evaluate(4)
    res = ref.result()
    assert out['video/VPQ'] == pytest.approx(res['VPQ'])
    assert out['video/VPQ_th'] == pytest.approx(res['VPQ_th'])
    for k in '1234':
        assert out[f'video/VPQ@{k}'] == pytest.approx(
            res['per_window'][k]['PQ'])
    assert 0 < out['video/VPQ'] < 1


def test_metrics_build_from_config():
    from mmdet.registry import METRICS

    import knet.evaluation  # noqa: F401  (registers the metrics)
    for cfg in (dict(type='STQMetric', num_classes=19, thing_ids=[11, 13]),
                dict(type='VPQMetric', num_classes=124,
                     thing_ids=list(range(66, 124)), windows=[1, 2, 4, 6]),
                dict(type='KNetYouTubeVISMetric')):
        metric = METRICS.build(cfg)
        assert type(metric).__name__ == cfg['type']


def test_vpq_metric_protocols_on_a_short_video():
    """A perfect 2-frame video at k = 4: nothing officially (PQ 0, n 0),
    one 2-frame window under videoknet (PQ 1)."""
    gt = np.array([[1 + 1000, 1 + 1000]])
    preds = [np.array([[1 + 3000, 1 + 3000]])] * 2
    res = {}
    for protocol in ('official', 'videoknet'):
        metric = VPQMetric(num_classes=2, thing_ids=[1], windows=[1, 4],
                           protocol=protocol)
        metric.dataset_meta = {}
        for f, p in enumerate(preds):
            metric.process({}, [{'video_id': 'v', 'frame_id': f,
                                 'gt_panoptic_seg': {'sem_seg': gt},
                                 'pred_panoptic_seg': {'sem_seg': p}}])
        res[protocol] = metric.evaluate(2)
    assert res['official']['video/VPQ@1'] == pytest.approx(1.0)
    assert res['official']['video/VPQ@4'] == 0.0
    assert res['official']['video/VPQ'] == pytest.approx(0.5)
    assert res['videoknet']['video/VPQ@4'] == pytest.approx(1.0)
    assert res['videoknet']['video/VPQ'] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='protocol'):
        VPQMetric(num_classes=2, thing_ids=[1], protocol='vipseg')


def test_vpq_metric_default_windows_follow_benchmark_and_protocol():
    from knet.evaluation.metrics import VPQMetric

    def windows(**kw):
        return tuple(VPQMetric(num_classes=2, thing_ids=[1], **kw).windows)

    assert windows() == (1, 2, 3, 4)
    assert windows(benchmark='vipseg') == (1, 2, 4, 6, 8)
    assert windows(benchmark='vipseg', protocol='videoknet') == (1, 2, 4, 6)
    assert windows(benchmark='vipseg', windows=[1, 2]) == (1, 2)
    with pytest.raises(ValueError, match='benchmark'):
        VPQMetric(num_classes=2, thing_ids=[1], benchmark='vspw')
