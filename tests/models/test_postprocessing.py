# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
import torch

from knet.models.postprocessing import (INSTANCE_OFFSET, instance_topk,
                                        panoptic_merge, panoptic_scores,
                                        rescale_masks)

VOID = 7


def _loop_merge(scores, labels, probs, n_things, start):
    """The original's greedy loop, written out as the spec describes it."""
    ids = (scores[:, None, None] * probs).argmax(0)
    out = torch.full(ids.shape, VOID, dtype=torch.long)
    seg_id = start
    for k in torch.argsort(scores, descending=True, stable=True).tolist():
        if k < n_things and scores[k] < 0.3:
            continue
        area = int((ids == k).sum())
        orig = int((probs[k] >= 0.5).sum())
        if area > 0 and orig > 0:
            if area / orig < 0.6:
                continue
            out[ids == k] = int(labels[k]) + seg_id * INSTANCE_OFFSET
            seg_id += 1
    return out


def test_merge_thresholds_hand_computed():
    # 1x5 image; kernels: 0,1 things, 2 stuff
    probs = torch.tensor([
        [[0.9, 0.9, 0.9, 0.0, 0.0]],  # thing, score 0.8 -> 3 px of 3
        [[0.0, 0.0, 0.0, 0.9, 0.0]],  # thing, score 0.29 -> below 0.3
        [[0.6, 0.6, 0.6, 0.6, 0.6]],  # stuff, low score, no threshold
    ])
    scores = torch.tensor([0.8, 0.29, 0.05])
    labels = torch.tensor([1, 2, 5])
    out = panoptic_merge(scores, labels, probs, 2, VOID)
    # pixel 3: argmax is kernel 1 (0.261 > 0.03) but it is rejected ->
    # VOID (no fallback); pixel 4: stuff (2 px of 5 -> 0.4 < 0.6 -> VOID)
    assert out.tolist() == [[1 + 1000, 1 + 1000, 1 + 1000, VOID, VOID]]
    # stuff with enough of its own area is kept without a score threshold
    probs[2, 0, 3] = 0.0
    probs[2, 0, :3] = 0.0
    out = panoptic_merge(scores, labels, probs, 2, VOID)
    assert out[0, 4].item() == 5 + 2 * 1000
    # segment ids start at 0 when asked (original behaviour)
    out0 = panoptic_merge(scores, labels, probs, 2, VOID,
                          segment_id_start=0)
    assert out0[0, 0].item() == 1


def test_overlap_ratio_boundary_uses_exact_division():
    # 3 argmax pixels of 5 confident ones: 3/5 == 0.6 is kept
    probs = torch.zeros(2, 1, 5)
    probs[0, 0, :5] = 0.9
    probs[1, 0, 3:] = 1.0
    scores = torch.tensor([0.5, 0.9])
    out = panoptic_merge(scores, torch.tensor([0, 4]), probs, 1, VOID)
    assert out[0, :3].tolist() == [2000, 2000, 2000]
    assert out[0, 3:].tolist() == [1004, 1004]


def test_merge_equals_reference_loop_on_random_inputs():
    gen = torch.Generator().manual_seed(3)
    for trial in range(20):
        n_things, n_stuff = 6, 4
        n = n_things + n_stuff
        probs = torch.rand(n, 12, 13, generator=gen) ** 3
        scores = torch.rand(n, generator=gen)
        labels = torch.randint(0, 6, (n, ), generator=gen)
        for start in (0, 1):
            ours = panoptic_merge(scores, labels, probs, n_things, VOID,
                                  segment_id_start=start)
            ref = _loop_merge(scores, labels, probs, n_things, start)
            assert torch.equal(ours, ref), trial


def test_panoptic_scores_use_stuff_diagonal():
    probs = torch.rand(4, 5)  # 2 thing kernels, 2 stuff kernels, 3+2 cls
    scores, labels = panoptic_scores(probs, 2, 3)
    assert labels[2:].tolist() == [3, 4]
    torch.testing.assert_close(scores[2:], torch.stack([probs[2, 3],
                                                        probs[3, 4]]))
    torch.testing.assert_close(scores[:2], probs[:2, :3].max(1).values)


def _meta(h=8, w=8):
    return dict(batch_input_shape=(h, w), img_shape=(h, w), ori_shape=(h, w))


def test_instance_topk_repeats_kernels_with_different_labels():
    cls = torch.tensor([[0.9, 0.8, 0.1], [0.7, 0.05, 0.02]])
    masks = torch.full((2, 2, 2), -10.0)
    masks[0, :, 0] = 10.0
    masks[1, 1, :] = 10.0
    res = instance_topk(cls, masks, _meta(), max_per_img=3)
    torch.testing.assert_close(res.scores, torch.tensor([0.9, 0.8, 0.7]))
    assert res.labels.tolist() == [0, 1, 0]
    # kernel 0 twice, then kernel 1; masks at original size
    assert torch.equal(res.masks[0], res.masks[1])
    assert res.masks.shape == (3, 8, 8)
    assert res.bboxes[0].tolist() == [0.0, 0.0, 4.0, 8.0]
    assert res.bboxes[2].tolist() == [0.0, 4.0, 8.0, 8.0]


def test_instance_topk_mask_score_reranks_by_mask_confidence():
    # kernel 0: class 0.9, foreground probs sigmoid(0)=0.5 is not > 0.5, so
    # only the two pixels at logit ln(3) (p = 0.75) count: quality 0.75;
    # kernel 1: class 0.8, all four pixels at p = 0.9: quality 0.9
    cls = torch.tensor([[0.9], [0.8]])
    masks = torch.zeros((2, 2, 2))
    masks[0, 0] = torch.log(torch.tensor(3.0))
    masks[1] = torch.log(torch.tensor(9.0))
    plain = instance_topk(cls, masks, _meta(), max_per_img=2)
    torch.testing.assert_close(plain.scores, torch.tensor([0.9, 0.8]))
    res = instance_topk(cls, masks, _meta(), max_per_img=2, mask_score=True)
    torch.testing.assert_close(res.scores, torch.tensor([0.72, 0.675]))
    # kernel 1 (0.8 * 0.9) now ranks above kernel 0 (0.9 * 0.75)
    assert res.masks[0].all() and not res.masks[1].all()
    # a kernel without foreground scores 0
    empty = instance_topk(cls, torch.full((2, 2, 2), -5.0), _meta(),
                          max_per_img=2, mask_score=True)
    assert empty.scores.tolist() == [0.0, 0.0]


def test_rescale_masks_crops_padding_before_resizing():
    logits = torch.full((1, 4, 4), -10.0)
    logits[0, :2, :2] = 10.0  # the valid 8x8 region of a 16x16 pad
    meta = dict(batch_input_shape=(16, 16), img_shape=(8, 8),
                ori_shape=(4, 4))
    probs = rescale_masks(logits, meta)
    assert probs.shape == (1, 4, 4)
    assert probs.min() > 0.5  # the crop removed the padded, empty area
