# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VideoKNet: pair losses (names of the original), gradients of the linking
and embedding modules, per-image embedding selection (spec §9.1-3 fix),
online inference state, the track-id map encoding and a short training run
whose loss goes down."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

import knet  # noqa: F401
from knet.models.postprocessing import PanopticPrediction

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TOY_MODEL = osp.join(REPO, 'configs/toy/_base_/toy_video_knet_model.py')
H, W = 64, 96
NUM_THINGS, NUM_CLASSES = 6, 11


@pytest.fixture(autouse=True)
def _mmdet_scope():
    name = f'test_video_knet_{id(object())}'
    DefaultScope.get_instance(name, scope_name='mmdet')
    yield


def build_model(**overrides):
    cfg = Config.fromfile(TOY_MODEL)
    cfg.model.data_preprocessor = None
    cfg.merge_from_dict({f"model.{k}": v for k, v in overrides.items()})
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def frame(shift: int, frame_id: int = 0, ids=(5, 7)) -> DetDataSample:
    """Two things (labels 0 and 3) moving right by ``shift`` px on two
    stuff regions (model labels 6 and 8)."""
    sample = DetDataSample(metainfo=dict(
        batch_input_shape=(H, W), img_shape=(H, W), ori_shape=(H, W),
        pad_shape=(H, W), frame_id=frame_id, video_id=0))
    masks = np.zeros((2, H, W), np.uint8)
    masks[0, 8:28, 8 + shift:30 + shift] = 1
    masks[1, 34:58, 50 + shift:80 + shift] = 1
    sample.gt_instances = InstanceData(
        masks=BitmapMasks(masks, H, W),
        labels=torch.tensor([0, 3]),
        instances_ids=torch.tensor(ids),
        bboxes=torch.zeros(2, 4))
    sem = np.full((H, W), 6, np.int64)
    sem[:, W // 2:] = 8
    sem[masks[0] > 0] = 0
    sem[masks[1] > 0] = 3
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
    return sample


def images(seed: int, num: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num, 2, 3, H, W, generator=gen)


def pair(shift: int = 4, ids=(5, 7)) -> TrackDataSample:
    return TrackDataSample(
        video_data_samples=[frame(0, ids=ids), frame(shift, ids=ids)],
        metainfo=dict(key_frames_inds=[0], ref_frames_inds=[1]))


ORIGINAL_KEYS = (
    {f'loss_rpn_{n}' for n in ('mask', 'dice', 'rank', 'seg')}
    | {f's{i}_{n}' for i in range(3)
       for n in ('loss_cls', 'pos_acc', 'loss_mask', 'loss_dice')}
    | {f'loss_rpn_{n}_ref_rpn' for n in ('mask', 'dice', 'rank', 'seg')}
    | {f's{i}_{n}_ref' for i in range(3)
       for n in ('loss_cls', 'pos_acc', 'loss_mask', 'loss_dice')}
    | {'loss_track', 'loss_track_aux'})


def test_pair_losses_have_the_original_names_and_train_the_link():
    model = build_model()
    losses = model.loss(images(0), [pair()])
    assert set(losses) == ORIGINAL_KEYS
    assert all(torch.isfinite(v).all() for v in losses.values())
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    stages = model.roi_head.mask_head
    # only the last stage links (spec §2.3-6); its modules get gradients
    # through the tracking embedding alone
    last = stages[-1].link_ffn.layers[0][0].weight.grad
    assert last is not None and last.abs().sum() > 0
    for stage in stages[:-1]:
        assert stage.link_ffn.layers[0][0].weight.grad is None
    assert model.embed_fcs[0].weight.grad.abs().sum() > 0
    assert model.fc_embed.weight.grad.abs().sum() > 0


def test_embedding_loss_uses_each_images_own_kernels():
    """Spec §9.1-3: with two pairs per batch the track losses are the mean
    of the per-pair losses (the original indexed every image with image
    i's kernel indices). BN statistics are frozen so that the pairs do not
    interact through the backbone."""
    model = build_model()
    model.train()
    model.backbone.eval()
    imgs = images(1, 2)
    pairs = [pair(4, ids=(5, 7)), pair(-3, ids=(2, 9))]
    both = model.loss(imgs, pairs)
    single = [model.loss(imgs[i:i + 1], [pairs[i]]) for i in range(2)]
    for key in ('loss_track', 'loss_track_aux'):
        expected = (single[0][key] + single[1][key]) / 2
        torch.testing.assert_close(both[key], expected, rtol=1e-4,
                                   atol=1e-6)


def test_toy_video_knet_is_a_config_of_the_same_model():
    model = build_model(track_head=None, link_previous=False)
    losses = model.loss(images(0), [pair()])
    assert 'loss_track' not in losses and 'loss_track_aux' not in losses
    kernels = torch.randn(3, 64, 1, 1)
    torch.testing.assert_close(model.embed(kernels), kernels.flatten(1))


def test_training_on_one_pair_lowers_the_loss():
    model = build_model()
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    imgs, batch = images(2), [pair()]
    totals = []
    for _ in range(12):
        losses = model.loss(imgs, batch)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        total.backward()
        optim.step()
        totals.append(float(total))
    assert np.mean(totals[-3:]) < 0.7 * totals[0], totals


def _keep_everything(model):
    """Thresholds at 0 so that a randomly initialised model keeps
    segments and starts tracks."""
    model.roi_head.test_cfg = dict(
        model.roi_head.test_cfg,
        merge_stuff_thing=dict(overlap_thr=0.0, instance_score_thr=0.0))
    model.tracker.init_score_thr = 0.0
    model.tracker.obj_score_thr = 0.0
    return model


def run_video(model, clip, first_frame_id=0):
    outs = []
    with torch.no_grad():
        for t in range(clip.size(0)):
            sample = TrackDataSample(
                video_data_samples=[frame(t, frame_id=first_frame_id + t)])
            outs.append(model.predict(clip[t][None, None], [sample])[0][0])
    return outs


def test_linking_does_not_change_the_segmentation():
    """previous_type='ffn' links only the tracking kernels: class maps of
    every frame equal those of a model that never links (spec §10.2)."""
    clip = images(3, 4)[:, 0]
    linked = _keep_everything(build_model()).eval()
    plain = _keep_everything(build_model(link_previous=False)).eval()
    outs_linked, outs_plain = run_video(linked, clip), run_video(plain, clip)
    kept = 0
    for a, b in zip(outs_linked, outs_plain):
        cls_a = a.pred_panoptic_seg.sem_seg % 1000
        cls_b = b.pred_panoptic_seg.sem_seg % 1000
        assert torch.equal(cls_a, cls_b)
        kept += len(a.pred_track_instances)
    assert kept > 0
    # the tracking embeddings of frames after the first do differ
    assert linked._memory is not None


def test_online_state_resets_per_sequence_and_stays_bounded():
    model = _keep_everything(build_model()).eval()
    clip = images(4, 6)[:, 0]
    outs = run_video(model, clip)
    memory_shape = model._memory.shape
    assert memory_shape[1] == 30 + 5  # thing + stuff kernels, one frame
    tracks = model.tracker.num_tracks
    assert tracks > 0
    frame_ids = [o.pred_track_instances.instances_id for o in outs]
    assert all((ids >= 0).all() for ids in frame_ids)
    # memory of the tracker is bounded by memo_tracklet_frames
    assert len(model.tracker.tracks) <= tracks
    # a new sequence (frame_id 0) restarts ids from 1
    outs = run_video(model, clip[:1])
    assert model._memory.shape == memory_shape
    ids = outs[0].pred_track_instances.instances_id
    new = ids[ids > 0]
    assert new.numel() > 0
    assert sorted(new.tolist()) == list(range(1, new.numel() + 1))


def test_track_id_map_encoding():
    """class + track id * 1000; stuff keeps id 0; void = num_classes unless
    test_cfg.unassigned_label (the original's class-0 fill, §9.1-2)."""
    model = build_model()
    void = NUM_CLASSES
    # segment ids: thing label 2 (segment 1), stuff label 7 (segment 2),
    # thing label 0 (segment 3), void elsewhere
    pan = torch.full((2, 4), void, dtype=torch.long)
    pan[0, :2] = 2 + 1000
    pan[0, 2:] = 7 + 2000
    pan[1, :2] = 0 + 3000
    pred = PanopticPrediction(
        pan_seg=pan,
        segment_ids=torch.tensor([1002, 2007, 3000]),
        labels=torch.tensor([2, 7, 0]),
        scores=torch.tensor([0.9, 0.8, 0.7]),
        kernel_inds=torch.tensor([4, 31, 9]))
    thing_inds = torch.tensor([0, 2])
    out = model._panoptic_with_tracks(pred, thing_inds, torch.tensor([3, 0]))
    expected = torch.tensor([[2 + 3000, 2 + 3000, 7, 7],
                             [0, 0, void, void]])
    assert torch.equal(out, expected)
    model.test_cfg['unassigned_label'] = 8
    out = model._panoptic_with_tracks(pred, thing_inds, torch.tensor([3, 0]))
    assert out[1, 2:].tolist() == [8, 8]


def test_semantic_filter_crops_the_padding():
    """Spec §9.1-5: the semantic map is cropped to the image before the
    resize (the original stretched the padded map)."""
    model = build_model()
    meta = dict(batch_input_shape=(8, 8), img_shape=(4, 8), ori_shape=(4, 8))
    seg = torch.full((1, NUM_CLASSES, 2, 2), -5.0)
    seg[0, 6] = 5.0  # stuff everywhere
    seg[0, 0, 0, :] = 100.0  # a thing in the top (image) half
    assert model._semantic_thing_pixels(seg, meta).all()
    model.test_cfg['semantic_filter_crop'] = False
    stretched = model._semantic_thing_pixels(seg, meta)
    # the padded half (stuff) is stretched over the image's bottom rows
    assert stretched[0].all() and not stretched[3].any()


def _frame_prediction(model, t=0):
    meta = frame(t, frame_id=t).metainfo
    with torch.no_grad():
        return model.predict_frame(images(5)[:, 0], meta)


def test_original_id_alignment_and_empty_frame_switches():
    """align_track_ids=False paints the tracker's kept, sorted ids onto the
    masks in segment order (spec §9.1-1, the original); True keeps every id
    on its detection. track_empty_frames=False skips the tracker when a
    frame has no thing segment (the original)."""
    from knet.models.trackers.quasi_dense_embed_tracker import TrackResult
    model = _keep_everything(build_model()).eval()
    calls = []

    def fake_track(bboxes, labels, scores, embeds, frame_id):
        calls.append(labels.numel())
        num = labels.numel()
        # the tracker keeps all but detection 0, in reverse order
        kept = torch.arange(num).flip(0)[:max(num - 1, 0)]
        return TrackResult(ids=torch.arange(kept.numel()) + 10,
                           kept_inds=kept)

    model.tracker.track = fake_track
    aligned = _frame_prediction(model).instances.instances_id
    num = aligned.numel()
    assert num >= 2
    expected = torch.zeros(num, dtype=torch.long)
    expected[torch.arange(num).flip(0)[:num - 1]] = torch.arange(num - 1) + 11
    assert torch.equal(aligned, expected)
    model.test_cfg['align_track_ids'] = False
    original = _frame_prediction(model).instances.instances_id
    expected = torch.zeros(num, dtype=torch.long)
    expected[:num - 1] = torch.arange(num - 1) + 11
    assert torch.equal(original, expected)

    # no thing segment survives a score threshold above 1
    model.roi_head.test_cfg['merge_stuff_thing']['instance_score_thr'] = 1.1
    calls.clear()
    assert len(_frame_prediction(model).instances) == 0
    assert calls == [0]
    model.test_cfg['track_empty_frames'] = False
    calls.clear()
    _frame_prediction(model)
    assert calls == []
