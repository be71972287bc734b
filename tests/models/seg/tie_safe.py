# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Comparing two implementations without depending on last-bit float
differences (other CPUs, thread counts): float outputs to a tolerance
relative to their scale, argmax-based figures (``acc_seg``) up to near ties.

Two implementations whose logits agree to within ``d`` can only disagree on
the argmax of a pixel whose top-2 logit gap is at most ``2 d``: such a pixel
is a *near tie*. Their pixel accuracies may therefore differ by at most the
share of near-tie pixels among the labelled ones, and must agree exactly
(up to float rounding of the percentage) when there are none.
"""
import torch
import torch.nn.functional as F

#: slack on the logit gap on top of the measured difference, relative to the
#: logit scale (~8 float32 ulps): covers the rounding of the two resizes
REL_GAP_SLACK = 1e-6
#: the bound is only worth something when few pixels are near ties
MAX_TIE_SHARE = 0.01


def near_tie_pixels(logits: torch.Tensor, labels: torch.Tensor,
                    ignore_index: int, gap: float) -> torch.Tensor:
    """Bool (N, H, W): labelled pixels whose top-2 logits differ by <= gap.

    ``logits`` is (N, C, H, W) at the label size, ``labels`` (N, H, W).
    """
    top2 = logits.topk(2, dim=1).values
    return (labels != ignore_index) & (top2[:, 0] - top2[:, 1] <= gap)


def hand_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                  ignore_index: int) -> float:
    """Percentage of labelled pixels whose argmax equals the label."""
    valid = labels != ignore_index
    correct = (logits.argmax(1) == labels) & valid
    return 100.0 * correct.sum().item() / valid.sum().item()


def resize_like_mmseg(logits: torch.Tensor, size, align_corners: bool):
    """Bilinear resize to the label size, as ``BaseDecodeHead.loss_by_feat``
    does before computing its loss and accuracy."""
    return F.interpolate(
        logits, size=tuple(size), mode='bilinear',
        align_corners=align_corners)


def assert_accuracy_matches(ours_acc, ref_acc, ours_logits: torch.Tensor,
                            ref_logits: torch.Tensor, labels: torch.Tensor,
                            ignore_index: int, name: str = 'acc_seg'
                            ) -> int:
    """``ours_acc`` == ``ref_acc`` == the accuracy of ``ref_logits``, up to
    the near-tie pixels of ``ref_logits`` (gap <= twice the largest
    difference between the two logit maps, plus a relative slack).

    Also asserts that at most ``MAX_TIE_SHARE`` of the pixels are near ties
    (else the inputs do not separate the classes and the check is vacuous).
    Returns the number of near-tie pixels.
    """
    diff = (ours_logits - ref_logits).abs().max().item()
    scale = ref_logits.abs().max().item()
    gap = 2 * diff + REL_GAP_SLACK * max(1.0, scale)
    ties = near_tie_pixels(ref_logits, labels, ignore_index, gap)
    num_valid = int((labels != ignore_index).sum())
    # 1e-3: the float32 rounding of mmseg's percentage (and its eps)
    assert int(ties.sum()) <= MAX_TIE_SHARE * num_valid, (
        f'{name}: {int(ties.sum())} of {num_valid} pixels have top-2 logits '
        f'within {gap:.2e}; use inputs / weights that separate the classes')
    bound = 100.0 * int(ties.sum()) / num_valid + 1e-3
    expected = hand_accuracy(ref_logits, labels, ignore_index)
    for who, acc in (('ours', ours_acc), ('reference', ref_acc)):
        acc = float(acc)
        assert abs(acc - expected) <= bound, (
            f'{name} ({who}) = {acc:.4f}, but the reference logits give '
            f'{expected:.4f} (allowed {bound:.4f}: {int(ties.sum())} of '
            f'{num_valid} pixels are near ties, gap <= {gap:.2e})')
    return int(ties.sum())


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor,
                          rel: float = 1e-5, name: str = '') -> None:
    """``actual`` == ``expected`` to within ``rel`` of the largest
    ``|expected|`` (elementwise), plus ``rel`` relative to each element.

    Float32 rounding through a network is relative to the size of the
    activations, not to each output element: elements near zero carry the
    absolute error of their neighbours. Other CPUs (AVX2 vs AVX-512 kernels,
    another thread count) reach ~1e-6 of the scale on these toy heads.
    """
    scale = max(float(expected.abs().max()), 1e-12)
    torch.testing.assert_close(
        actual, expected, rtol=rel, atol=rel * scale, msg=lambda m:
        f'{name}: {m} (tolerance {rel:g} of the scale {scale:.3g})')
