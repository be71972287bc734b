# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The fast post-processing (banded / chunked, issue 7) gives bit-identical
outputs to the previous, straightforward formulation, written out here."""
import pytest
import torch
import torch.nn.functional as F

from knet.models.postprocessing import (_band_factors, binary_masks,
                                        instance_topk, mask_argmax_and_areas,
                                        panoptic_merge, panoptic_merge_logits,
                                        rescale_masks)


def _reference_rescale(mask_logits, img_meta):
    """``rescale_masks`` before issue 7: always both resizes."""
    probs = mask_logits.sigmoid()[None]
    probs = F.interpolate(
        probs,
        size=tuple(img_meta['batch_input_shape']),
        mode='bilinear',
        align_corners=False)
    img_h, img_w = img_meta['img_shape'][:2]
    probs = probs[..., :img_h, :img_w]
    probs = F.interpolate(
        probs,
        size=tuple(img_meta['ori_shape'][:2]),
        mode='bilinear',
        align_corners=False)
    return probs[0]


# (num kernels, mask h, mask w), batch_input_shape, img_shape, ori_shape
CASES = [
    # banded path: stride 4, no resize back (the benchmark's case, small)
    ((23, 40, 72), (160, 288), (160, 288), (160, 288)),
    ((23, 40, 72), (160, 288), (150, 281), (150, 281)),  # padded batch
    ((9, 50, 40), (100, 160), (100, 160), (100, 160)),  # stride 2
    ((9, 25, 80), (200, 320), (197, 313), (197, 313)),  # 8 x 4
    ((4, 150, 40), (600, 160), (597, 160), (597, 160)),  # > 255 rows
    # general (kernel-chunk) path
    ((20, 50, 80), (200, 320), (190, 300), (95, 150)),  # resized image
    ((9, 24, 45), (96, 180), (96, 180), (120, 200)),  # upscaled back
    ((9, 30, 45), (90, 180), (90, 179), (90, 179)),  # stride 3
    ((5, 16, 16), (64, 64), (64, 64), (64, 64)),  # small: other kernel
    ((7, 20, 35), (80, 140), (80, 131), (80, 131)),
]


def _meta(pad, img, ori):
    return dict(batch_input_shape=pad, img_shape=img, ori_shape=ori)


def _inputs(num, height, width, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(num, height, width, generator=gen) * 4
    logits[:, :3] = 30.0  # saturated rows: exact ties of the products
    logits[-1] = -30.0  # a kernel that never reaches the threshold
    scores = torch.rand(num, generator=gen)
    scores[1] = scores[0]  # equal scores -> ties between kernels
    labels = torch.randint(0, 10, (num, ), generator=gen)
    return logits, scores, labels


def test_band_path_is_used_for_the_usual_metas():
    assert _band_factors((200, 304), _meta((800, 1216), (800, 1216),
                                           (800, 1216))) == (4, 4)
    assert _band_factors((200, 272), _meta((800, 1088), (800, 1066),
                                           (800, 1066))) == (4, 4)
    # resized images and non-power-of-two strides take the chunk path
    assert _band_factors((200, 272), _meta((800, 1088), (800, 1066),
                                           (480, 640))) is None
    assert _band_factors((30, 45), _meta((90, 180), (90, 179),
                                         (90, 179))) is None


@pytest.mark.parametrize('case', CASES, ids=lambda c: 'x'.join(map(str, c[0]))
                         + f'-{c[1]}-{c[3]}')
def test_rescale_and_merge_bit_identical(case):
    (num, height, width), pad, img, ori = case
    meta = _meta(pad, img, ori)
    logits, scores, labels = _inputs(num, height, width, seed=sum(pad))
    ref_probs = _reference_rescale(logits, meta)
    assert torch.equal(rescale_masks(logits, meta), ref_probs)

    ref_ids = (scores[:, None, None] * ref_probs).argmax(dim=0)
    ref_area = (ref_probs >= 0.5).flatten(1).sum(1)
    # slabs from one row / one kernel per slab to everything at once
    for slab in (1, 700, 5000, 10**5, 10**8):
        ids, area = mask_argmax_and_areas(scores, logits, meta, 0.5, slab)
        assert torch.equal(ids, ref_ids), slab
        assert torch.equal(area, ref_area), slab
        assert ids.dtype == torch.long and area.dtype == torch.long

    for start in (0, 1):
        ref = panoptic_merge(scores, labels, ref_probs, num // 2, 99,
                             segment_id_start=start)
        for slab in (900, 10**8):
            out = panoptic_merge_logits(scores, labels, logits, meta,
                                        num // 2, 99,
                                        segment_id_start=start,
                                        slab_elements=slab)
            assert torch.equal(out, ref), (start, slab)


@pytest.mark.parametrize('case', [c for c in CASES if c[0][0] >= 9][:4])
def test_instance_masks_bit_identical(case):
    (num, height, width), pad, img, ori = case
    meta = _meta(pad, img, ori)
    logits, _, _ = _inputs(num, height, width, seed=1)
    idx = torch.tensor([3, 0, 3, 5, 1, 0, 3])  # repeated kernels
    ref = _reference_rescale(logits[idx], meta) > 0.5
    for slab in (1, 3000, 10**8):
        assert torch.equal(binary_masks(logits, idx, meta, 0.5, slab), ref)
    empty = binary_masks(logits, idx[:0], meta)
    assert empty.shape == (0, *ori) and empty.dtype == torch.bool

    cls = torch.rand(num, 6, generator=torch.Generator().manual_seed(2))
    res = instance_topk(cls, logits, meta, max_per_img=20)
    kernel_idx = torch.div(
        cls.flatten().topk(20).indices, 6, rounding_mode='floor')
    assert torch.equal(res.masks,
                       _reference_rescale(logits[kernel_idx], meta) > 0.5)


def test_many_kernels_and_nan_inputs_match_argmax():
    meta = _meta((64, 160), (64, 150), (64, 150))
    # >= 255 kernels: the first-index keys no longer fit in uint8
    logits, scores, labels = _inputs(300, 16, 40, seed=5)
    ref = _reference_rescale(logits, meta)
    ids, area = mask_argmax_and_areas(scores, logits, meta, 0.5, 5000)
    assert torch.equal(ids, (scores[:, None, None] * ref).argmax(0))
    assert torch.equal(area, (ref >= 0.5).flatten(1).sum(1))
    # NaN logits (a diverged model): the reference semantics of argmax
    logits[3, 2:5, 7:9] = float('nan')
    ref = _reference_rescale(logits, meta)
    out = panoptic_merge_logits(scores, labels, logits, meta, 150, 99)
    assert torch.equal(out,
                       panoptic_merge(scores, labels, ref, 150, 99))


def test_empty_panoptic_merge_logits():
    meta = _meta((64, 160), (64, 150), (64, 150))
    out = panoptic_merge_logits(
        torch.zeros(0), torch.zeros(0, dtype=torch.long),
        torch.zeros(0, 16, 40), meta, 0, 7)
    assert out.shape == (64, 150) and (out == 7).all()


def test_kernel_iter_head_panoptic_matches_previous_formulation(repo_root):
    """The head's panoptic output equals the pre-issue-7 pipeline."""
    import copy
    import os.path as osp

    from mmengine.config import Config

    import knet  # noqa: F401
    from knet.models.postprocessing import panoptic_scores
    from knet.models.roi_heads.kernel_iter_head import KernelIterHead
    cfg = Config.fromfile(
        osp.join(repo_root,
                 'configs/det/_base_/models/knet_s3_r50_fpn_panoptic.py'))
    head_cfg = copy.deepcopy(cfg.model.roi_head.to_dict())
    head_cfg.pop('type')
    heads = head_cfg['mask_head']
    for h in heads if isinstance(heads, list) else [heads]:
        h.update(feedforward_channels=32)
    head = KernelIterHead(
        **head_cfg, test_cfg=cfg.model.test_cfg.rcnn.to_dict())
    head.init_weights()
    head.eval()
    gen = torch.Generator().manual_seed(0)
    x_feats = torch.randn(2, 256, 12, 20, generator=gen)
    kernels = torch.randn(2, 153, 256, 1, 1, generator=gen) * 0.1
    masks = torch.randn(2, 153, 12, 20, generator=gen)
    metas = [
        _meta((96, 160), (96, 160), (96, 160)),
        _meta((96, 160), (90, 150), (45, 75)),
    ]
    with torch.no_grad():
        results = head.predict(x_feats, kernels, masks, metas)
        cls_score, scaled = head(x_feats, kernels, masks)[-1]
    merge = cfg.model.test_cfg.rcnn.merge_stuff_thing
    for i, meta in enumerate(metas):
        scores, labels = panoptic_scores(cls_score[i].sigmoid(), 100, 80)
        ref = panoptic_merge(
            scores,
            labels,
            _reference_rescale(scaled[i], meta),
            100,
            void_label=133,
            overlap_thr=merge.overlap_thr,
            instance_score_thr=merge.instance_score_thr,
            segment_id_start=merge.segment_id_start)
        assert torch.equal(results[i], ref)
