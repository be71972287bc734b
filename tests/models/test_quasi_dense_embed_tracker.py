# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net quasi-dense tracker (spec §2.9, acceptance checks §10.4)."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmdet.models.trackers import QuasiDenseTracker
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import knet.models  # noqa: F401  (registers KNetQuasiDenseTracker)
from knet.models.trackers import (QuasiDenseEmbedTracker, TrackResult,
                                  masks_to_track_boxes)


def boxes_at(*xs):
    """Disjoint 10x10 boxes starting at x."""
    return torch.tensor([[x, 0., x + 10., 10.] for x in xs])


def frame(tracker, boxes, labels, scores, embeds, fid) -> TrackResult:
    return tracker.track(
        torch.as_tensor(boxes, dtype=torch.float32),
        torch.as_tensor(labels, dtype=torch.long),
        torch.as_tensor(scores, dtype=torch.float32),
        torch.as_tensor(embeds, dtype=torch.float32), fid)


def ids_of(result, n):
    return result.ids_in_input_order(n).tolist()


def test_built_from_registry_with_spec_values():
    # mmdet scope explicitly: another test may have left mmseg's as default
    t = MODELS.build(dict(type='KNetQuasiDenseTracker', _scope_='mmdet'))
    assert isinstance(t, QuasiDenseEmbedTracker)
    assert (t.init_score_thr, t.obj_score_thr, t.match_score_thr) == (0.35,
                                                                      0.3, 0.5)
    assert (t.memo_tracklet_frames, t.memo_backdrop_frames,
            t.memo_momentum) == (5, 1, 0.8)
    assert (t.nms_conf_thr, t.nms_backdrop_iou_thr,
            t.nms_class_iou_thr) == (0.5, 0.3, 0.7)
    assert t.with_cats and t.match_metric == 'bisoftmax'


def test_bisoftmax_on_raw_dot_products_hand_computed():
    t = QuasiDenseEmbedTracker()
    s = t._match_scores(torch.tensor([[1., 2.]]), torch.tensor([[3., 0.],
                                                                [0., 3.]]))
    # F = [3, 6]; row softmax [1/(1+e^3), e^3/(1+e^3)]; column softmax of a
    # single detection is 1 everywhere.
    r = 1 / (1 + math.exp(3))
    assert s[0].tolist() == pytest.approx([(r + 1) / 2, (1 - r + 1) / 2],
                                          abs=1e-6)
    s = t._match_scores(torch.eye(2), torch.eye(2))
    d = math.e / (math.e + 1)
    assert s.flatten().tolist() == pytest.approx([d, 1 - d, 1 - d, d],
                                                abs=1e-6)


def test_same_embedding_keeps_id_across_frames_and_input_order():
    t = QuasiDenseEmbedTracker()
    e = [[5., 0.], [0., 5.]]
    r0 = frame(t, boxes_at(0, 20), [0, 0], [0.9, 0.8], e, 0)
    assert ids_of(r0, 2) == [0, 1]
    # swapped input order and scores: ids follow the embeddings
    r1 = frame(t, boxes_at(40, 60), [0, 0], [0.95, 0.7], e[::-1], 1)
    assert ids_of(r1, 2) == [1, 0]
    assert r1.kept_inds.tolist() == [0, 1]
    assert t.num_tracks == 2


def test_category_gating_blocks_cross_class_match():
    same = QuasiDenseEmbedTracker()
    frame(same, boxes_at(0), [0], [0.9], [[1., 1.]], 0)
    assert ids_of(frame(same, boxes_at(0), [0], [0.9], [[1., 1.]], 1),
                  1) == [0]
    cross = QuasiDenseEmbedTracker()
    frame(cross, boxes_at(0), [0], [0.9], [[1., 1.]], 0)
    # identical embedding, other class: gated to 0, so a new track starts
    assert ids_of(frame(cross, boxes_at(0), [1], [0.9], [[1., 1.]], 1),
                  1) == [1]


def test_low_scores_continue_but_never_start_tracks():
    t = QuasiDenseEmbedTracker()
    e = [[5., 0.], [0., 5.]]
    frame(t, boxes_at(0), [0], [0.9], e[:1], 0)
    # 0.32 (obj < s <= init) continues track 0; a new 0.33 object of another
    # class does not start a track
    r = frame(t, boxes_at(0, 50), [0, 1], [0.32, 0.33], e, 1)
    assert ids_of(r, 2) == [0, -1]
    assert r.instance_ids(2).tolist() == [1, 0]
    # 0.25 <= obj_score_thr matching the track is suppressed (-2 -> 0)
    r = frame(t, boxes_at(0), [0], [0.25], e[:1], 2)
    assert ids_of(r, 1) == [-2]
    assert r.instance_ids(1).tolist() == [0]
    # 0.36 > init starts a track
    r = frame(t, boxes_at(50), [1], [0.36], e[1:], 3)
    assert ids_of(r, 1) == [1]


def test_backdrop_absorbs_a_wrong_match():
    """With backdrop b in memory, c=(1,2) scores (0.524, 0.976) -> backdrop."""
    a, b, c = [3., 0.], [0., 3.], [1., 2.]
    with_bd = QuasiDenseEmbedTracker()
    r0 = frame(with_bd, boxes_at(0, 50), [0, 0], [0.9, 0.2], [a, b], 0)
    assert ids_of(r0, 2) == [0, -1]
    assert len(with_bd.backdrops) == 1
    assert with_bd.backdrops[0]['embeds'].tolist() == [b]
    assert ids_of(frame(with_bd, boxes_at(0), [0], [0.9], [c], 1), 1) == [1]

    no_bd = QuasiDenseEmbedTracker()
    frame(no_bd, boxes_at(0), [0], [0.9], [a], 0)
    assert ids_of(frame(no_bd, boxes_at(0), [0], [0.9], [c], 1), 1) == [0]


def test_backdrops_capped_to_last_frame_and_empty_frames_refresh_them():
    t = QuasiDenseEmbedTracker()
    for fid in range(3):
        frame(t, boxes_at(0), [0], [0.1], [[float(fid), 1.]], fid)
    assert len(t.backdrops) == 1
    assert t.backdrops[0]['embeds'].tolist() == [[2., 1.]]
    r = frame(t, torch.zeros(0, 4), [], [], torch.zeros(0, 2), 3)
    assert r.ids.numel() == 0 and r.kept_inds.numel() == 0
    assert len(t.backdrops) == 1 and t.backdrops[0]['embeds'].numel() == 0


def test_momentum_weights_the_new_embedding_by_0_8():
    t = QuasiDenseEmbedTracker()
    frame(t, boxes_at(0), [0], [0.9], [[2., 0.]], 0)
    # single detection vs single same-class tracklet: bisoftmax score 1
    r = frame(t, boxes_at(0), [0], [0.9], [[0., 4.]], 1)
    assert ids_of(r, 1) == [0]
    # 0.2 * (2, 0) + 0.8 * (0, 4)
    assert t.tracks[0]['embed'].tolist() == pytest.approx([0.4, 3.2])


def test_kept_indices_align_ids_with_masks_when_duplicates_dropped():
    t = QuasiDenseEmbedTracker()
    boxes = [[100, 0, 110, 10],  # 0: s .5
             [0, 0, 10, 10],  # 1: s .9
             [0, 0, 10, 9],  # 2: s .8, IoU 0.9 with 1 > 0.7 -> dropped
             [50, 0, 60, 10],  # 3: s .6
             [0, 0, 10, 4]]  # 4: s .2, IoU 0.4 with 1 > 0.3 -> dropped
    r = frame(t, boxes, [0] * 5, [0.5, 0.9, 0.8, 0.6, 0.2],
              torch.eye(5) * 5, 0)
    assert r.kept_inds.tolist() == [1, 3, 0]
    assert r.ids.tolist() == [0, 1, 2]
    assert ids_of(r, 5) == [2, 0, -1, 1, -1]
    assert r.instance_ids(5).tolist() == [3, 1, 0, 2, 0]
    # the same 0.4-IoU box with score 0.4 (>= obj thr, uses 0.7) is kept
    t.reset()
    r = frame(t, [boxes[1], boxes[4]], [0, 0], [0.9, 0.4], torch.eye(2), 0)
    assert r.kept_inds.tolist() == [0, 1]


@pytest.mark.parametrize('empty_between', [True, False])
def test_tracklets_deleted_after_5_frames_without_match(empty_between):
    def run(gap_fid):
        t = QuasiDenseEmbedTracker()
        frame(t, boxes_at(0), [0], [0.9], [[1., 0.]], 0)
        for fid in range(1, gap_fid):
            if empty_between:
                frame(t, torch.zeros(0, 4), [], [], torch.zeros(0, 2), fid)
            else:  # an unrelated low-score object of another class
                frame(t, boxes_at(50), [1], [0.1], [[0., 1.]], fid)
        return ids_of(frame(t, boxes_at(0), [0], [0.9], [[1., 0.]], gap_fid),
                      1)

    assert run(5) == [0]  # last seen 5 frames ago: still in memory
    assert run(6) == [1]  # deleted at frame 5 (5 - 0 >= 5): new id


def test_reset_restarts_ids_from_zero_and_clears_memory():
    t = QuasiDenseEmbedTracker()
    frame(t, boxes_at(0, 20), [0, 0], [0.9, 0.9], torch.eye(2), 0)
    t.reset()
    assert t.empty and t.backdrops == [] and t.num_tracks == 0
    r = frame(t, boxes_at(0), [0], [0.9], [[1., 0.]], 0)
    assert ids_of(r, 1) == [0] and r.instance_ids(1).tolist() == [1]


def test_masks_to_track_boxes_tight_and_empty_placeholder():
    masks = torch.zeros(3, 6, 8, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4:6, 6:8] = True  # removed by the thing filter below
    masks[2, 0, 0] = True
    thing = torch.ones(6, 8, dtype=torch.bool)
    thing[4:, 6:] = False
    boxes = masks_to_track_boxes(masks, thing)
    assert boxes.tolist() == [[2, 1, 4, 2], [-1, -1, 10, 10], [0, 0, 0, 0]]
    assert masks_to_track_boxes(masks)[1].tolist() == [6, 4, 7, 5]


def test_agrees_with_mmdet_quasi_dense_tracker():
    """Same numbers as mmdet where both apply (non-empty frames)."""
    g = torch.Generator().manual_seed(0)
    objs = torch.randn(6, 8, generator=g) * 2
    obj_labels = torch.tensor([0, 0, 1, 1, 0, 1])
    ours = QuasiDenseEmbedTracker()
    ref = QuasiDenseTracker(
        init_score_thr=0.35, obj_score_thr=0.3, memo_tracklet_frames=5)
    carried = 0
    for fid in range(6):
        pick = torch.randperm(6, generator=g)[:5]
        embeds = objs[pick] + 0.1 * torch.randn(5, 8, generator=g)
        xy = torch.rand(5, 2, generator=g) * 60
        boxes = torch.cat([xy, xy + 30], dim=1)
        scores = torch.rand(5, generator=g) * 0.8 + 0.1
        labels = obj_labels[pick]

        res = ours.track(boxes, labels, scores, embeds, fid)
        model = SimpleNamespace(track_head=SimpleNamespace(
            predict=lambda feats, bbs, e=embeds: e))
        ds = DetDataSample(metainfo=dict(frame_id=fid))
        ds.pred_instances = InstanceData(
            bboxes=boxes, labels=labels, scores=scores)
        out = ref.track(model, None, None, ds, rescale=False)

        tracked = res.ids > -1
        assert res.ids[tracked].tolist() == out.instances_id.tolist()
        assert boxes[res.kept_inds[tracked]].tolist() == out.bboxes.tolist()
        assert sorted(ours.tracks) == sorted(ref.tracks)
        for k in ours.tracks:
            torch.testing.assert_close(ours.tracks[k]['embed'],
                                       ref.tracks[k]['embed'])
        if fid:
            carried += int((res.ids[tracked] < prev_num).sum())
        prev_num = ours.num_tracks
    assert carried > 0  # the sequence really exercised matching
