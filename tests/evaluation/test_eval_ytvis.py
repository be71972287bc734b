# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""YouTube-VIS AP on numpy 2: hand-computed cases and mmdet parity."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from knet.evaluation import KNetYouTubeVISMetric, KNetYTVISeval

H, W = 16, 20


def rle(mask):
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    r['counts'] = r['counts'].decode()
    return r


def box_mask(y, x, h=6, w=6):
    m = np.zeros((H, W), bool)
    m[y:y + h, x:x + w] = True
    return m


def gt_dataset(tracks):
    """tracks: list of (video_id, category_id, [mask or None per frame])."""
    videos = sorted({t[0] for t in tracks})
    anns = []
    for i, (vid, cat, masks) in enumerate(tracks, 1):
        anns.append({
            'id': i, 'video_id': vid, 'category_id': cat, 'iscrowd': 0,
            'segmentations': [rle(m) if m is not None else None
                              for m in masks],
            'areas': [int(m.sum()) if m is not None else None
                      for m in masks],
        })
    return {'videos': [{'id': v, 'width': W, 'height': H} for v in videos],
            'categories': [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}],
            'annotations': anns}


def prediction(vid, cat, score, masks):
    return {'video_id': vid, 'category_id': cat, 'score': score,
            'segmentations': [rle(m) if m is not None else None
                              for m in masks]}


def evaluate(gt, preds, cls=KNetYTVISeval):
    from mmdet.evaluation.functional import YTVIS
    with contextlib.redirect_stdout(io.StringIO()):
        ytvis = YTVIS(gt)
        ev = cls(ytvis, ytvis.loadRes(preds), 'segm')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def two_videos():
    a = [box_mask(1, 1), box_mask(2, 2)]
    b = [box_mask(8, 10), box_mask(9, 11)]
    return a, b, gt_dataset([(1, 1, a), (2, 1, b)])


def test_perfect_prediction_gives_ap_one():
    a, b, gt = two_videos()
    ev = evaluate(gt, [prediction(1, 1, 0.9, a), prediction(2, 1, 0.8, b)])
    assert ev.stats[0] == pytest.approx(1.0)  # mAP
    assert ev.stats[1] == pytest.approx(1.0)  # mAP@50


def test_wrong_prediction_gives_ap_zero():
    a, b, gt = two_videos()
    far = [box_mask(0, 14), box_mask(0, 14)]
    ev = evaluate(gt, [prediction(1, 1, 0.9, far)])
    assert ev.stats[0] == 0.0


def test_half_right_hand_computed():
    # video 1 found (score .9), video 2 predicted at the wrong place (.8):
    # ranked TP, FP with 2 GT -> recall .5 at precision 1, so the 51 recall
    # thresholds 0.00 .. 0.50 get precision 1 and the other 50 get 0
    a, b, gt = two_videos()
    far = [box_mask(0, 14), box_mask(0, 14)]
    ev = evaluate(gt, [prediction(1, 1, 0.9, a), prediction(2, 1, 0.8, far)])
    assert ev.stats[0] == pytest.approx(51 / 101)
    assert ev.stats[1] == pytest.approx(51 / 101)
    assert ev.stats[8] == pytest.approx(0.5)  # AR@100


def test_track_iou_is_over_the_whole_video():
    # right mask in frame 1, nothing in frame 2: track IoU 36 / 72 = .5,
    # a TP at the 0.50 IoU threshold only
    a, b, gt = two_videos()
    half = [a[0], None]
    ev = evaluate(gt, [prediction(1, 1, 0.9, half)])
    p = ev.eval['precision']  # T x R x K x A x M
    assert p[0, :, 0, 0, -1].max() == pytest.approx(1.0)  # IoU thr .50
    assert p[1:, :, 0, 0, -1].max() == 0.0


def test_accumulate_matches_mmdet_on_old_numpy_alias(monkeypatch):
    """Same arrays as mmdet's accumulate (given back ``np.float``)."""
    from mmdet.evaluation.functional import YTVISeval
    rng = np.random.default_rng(0)
    tracks, preds = [], []
    for vid in range(1, 5):
        for _ in range(2):
            cat = int(rng.integers(1, 3))
            y, x = rng.integers(0, 10, size=2)
            masks = [box_mask(y, x), box_mask(y + 1, x)]
            tracks.append((vid, cat, masks))
            jitter = rng.integers(-3, 4, size=2)
            preds.append(prediction(vid, cat, float(rng.random()), [
                box_mask(y + jitter[0], x + jitter[1]),
                box_mask(y + 1, x + jitter[1])
            ]))
        preds.append(prediction(vid, 1, float(rng.random()) * 0.5,
                                [box_mask(0, 0, 3, 3)] * 2))
    gt = gt_dataset(tracks)
    ours = evaluate(gt, [dict(p) for p in preds])
    monkeypatch.setattr(np, 'float', float, raising=False)
    ref = evaluate(gt, [dict(p) for p in preds], cls=YTVISeval)
    np.testing.assert_allclose(ours.eval['precision'], ref.eval['precision'])
    np.testing.assert_allclose(ours.eval['recall'], ref.eval['recall'])
    np.testing.assert_allclose(ours.eval['scores'], ref.eval['scores'])
    assert 0.1 < ours.stats[0] < 0.95


def _video_samples(video_id, gt_masks, pred_masks, score):
    """DetDataSamples of one video with one GT and one predicted track."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = []
    for f, (g, p) in enumerate(zip(gt_masks, pred_masks)):
        s = DetDataSample(metainfo={'img_id': video_id * 10 + f,
                                    'video_id': video_id,
                                    'ori_shape': (H, W)})
        s.pred_track_instances = InstanceData(
            bboxes=torch.zeros(1, 4), scores=torch.tensor([score]),
            labels=torch.tensor([0]), instances_id=torch.tensor([0]),
            masks=torch.from_numpy(p[None]))
        ys, xs = np.nonzero(g)
        s.set_metainfo({'instances': [{
            'bbox_label': 0, 'instance_id': video_id,
            'bbox': [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
            'mask': rle(g)}]})
        samples.append(s)
    return samples


def test_metric_end_to_end():
    a, b, _ = two_videos()
    far = [box_mask(0, 14), box_mask(0, 14)]
    metric = KNetYouTubeVISMetric()
    metric.dataset_meta = {'classes': ('a', 'b')}
    metric.process_video(_video_samples(1, a, a, 0.9))
    metric.process_video(_video_samples(2, b, far, 0.8))
    out = metric.evaluate(size=2)
    assert out['youtube_vis/segm_mAP'] == pytest.approx(0.505)
    assert out['youtube_vis/segm_mAP_50'] == pytest.approx(0.505)
