# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The one loop over K-Net's update stages, shared by the det and seg heads.

The instance / panoptic head (:class:`~knet.models.roi_heads.KernelIterHead`)
and the semantic head (:class:`~knet.models.seg.KNetIterativeDecodeHead`)
both feed every stage the kernels and masks of the stage before. They differ
only in what happens around a stage (mask upsampling, per-stage assignment),
which the host class supplies through two small hooks. Forward, loss and
predict all go through :meth:`KernelStageLoopMixin.run_stages`, which keeps
everything a caller may need next (a video tracker: kernels and tracking
kernels; a loss: sampling results).
"""
from dataclasses import dataclass, field
from typing import Any, Collection, List, Optional, Sequence

import torch.nn as nn
from torch import Tensor

from .kernel_update_head import KernelStageOutput


@dataclass
class KernelStagesOutput:
    """Per-stage results of :meth:`KernelStageLoopMixin.run_stages`.

    Every list has one entry per update stage, in stage order.
    """
    #: (B, N, num_classes) class logits per stage (None without classifier)
    cls_scores: List[Optional[Tensor]] = field(default_factory=list)
    #: (B, N, h, w) mask logits per stage at the feature stride
    mask_preds: List[Tensor] = field(default_factory=list)
    #: mask logits after the host's per-stage rescaling (loss / output)
    scaled_mask_preds: List[Tensor] = field(default_factory=list)
    #: (B, N, C, K, K) updated kernels per stage
    kernels: List[Tensor] = field(default_factory=list)
    #: (B, N, C, K, K) tracking kernels (after the link step) per stage
    track_kernels: List[Tensor] = field(default_factory=list)
    #: per stage, what the host's assignment returned (e.g. one mmdet
    #: ``SamplingResult`` per image); None when no ground truth was given
    sampling_results: List[Any] = field(default_factory=list)

    @property
    def num_stages(self) -> int:
        """Number of stages that ran."""
        return len(self.mask_preds)


def run_stage(stage: nn.Module,
              feats: Tensor,
              kernels: Tensor,
              mask_preds: Tensor,
              previous_kernels: Optional[Tensor] = None) -> KernelStageOutput:
    """Run one stage module and return a :class:`KernelStageOutput`.

    Stages with ``forward_stage`` (:class:`KNetKernelUpdateHead` and its
    subclasses) give all outputs; other modules (mmseg's
    ``KernelUpdateHead``, returning ``(masks, kernels)`` or
    ``(cls, masks, kernels)``) are wrapped, and cannot take temporal
    context.
    """
    if hasattr(stage, 'forward_stage'):
        return stage.forward_stage(feats, kernels, mask_preds,
                                   previous_kernels)
    if previous_kernels is not None:
        raise TypeError(f'{type(stage).__name__} has no forward_stage and '
                        'cannot take previous_kernels; use a '
                        'KNetKernelUpdateHead (sub)class as the stage type')
    outs = stage(feats, kernels, mask_preds)
    cls_score = outs[0] if len(outs) == 3 else None
    return KernelStageOutput(cls_score, outs[-2], outs[-1], outs[-1], None)


class KernelStageLoopMixin:
    """Adds :meth:`run_stages` to a head that owns a list of update stages.

    The host implements :meth:`stage_modules`; it may override
    :meth:`scale_stage_masks` (default: no rescaling) and
    :meth:`assign_stage` (default: no assignment). The mixin has no
    ``__init__`` and no parameters, so the host's base class (mmdet
    ``BaseModule``, mmseg ``BaseDecodeHead``) keeps its contract and its
    state-dict keys.
    """

    def stage_modules(self) -> Sequence[nn.Module]:
        """The update stages, in order."""
        raise NotImplementedError

    def scale_stage_masks(self, stage: int, mask_preds: Tensor) -> Tensor:
        """Mask logits of ``stage`` as used by losses / outputs."""
        return mask_preds

    def assign_stage(self, stage: int, prev_cls: Optional[Tensor],
                     prev_masks: Tensor, prev_scaled: Optional[Tensor],
                     batch_gt: Any) -> Any:
        """Match the inputs of ``stage`` (the previous stage's outputs;
        ``prev_scaled`` is None for stage 0) to ``batch_gt``."""
        return None

    def run_stages(self,
                   feats: Tensor,
                   kernels: Tensor,
                   mask_preds: Tensor,
                   batch_gt: Any = None,
                   previous_kernels: Optional[Tensor] = None,
                   context_stages: Optional[Collection[int]] = None
                   ) -> KernelStagesOutput:
        """Run every update stage; the one loop of forward, loss, predict.

        Args:
            feats (Tensor): (B, C, H, W) shared feature map.
            kernels (Tensor): (B, N, C, K, K) initial kernels.
            mask_preds (Tensor): (B, N, h, w) initial mask logits.
            batch_gt (Any, optional): Ground truth passed to
                :meth:`assign_stage` before every stage; None skips the
                assignment (inference).
            previous_kernels (Tensor, optional): (B, N, C, K, K) kernels of
                the previous frame, given to the stages in
                ``context_stages``.
            context_stages (Collection[int], optional): Stages that receive
                ``previous_kernels``; defaults to the last stage (Video
                K-Net). Negative indices count from the end.

        Returns:
            KernelStagesOutput: per-stage class logits, masks, rescaled
            masks, kernels, tracking kernels and assignment results.
        """
        stages = self.stage_modules()
        num_stages = len(stages)
        if context_stages is None:
            context_stages = (num_stages - 1, )
        context_stages = {s % num_stages for s in context_stages}
        outputs = KernelStagesOutput()
        prev_cls, prev_scaled = None, None
        for index, stage in enumerate(stages):
            context = previous_kernels if index in context_stages else None
            if batch_gt is not None:
                outputs.sampling_results.append(
                    self.assign_stage(index, prev_cls, mask_preds,
                                      prev_scaled, batch_gt))
            else:
                outputs.sampling_results.append(None)
            out = run_stage(stage, feats, kernels, mask_preds, context)
            kernels, mask_preds = out.kernels, out.mask_preds
            prev_cls = out.cls_score
            prev_scaled = self.scale_stage_masks(index, mask_preds)
            outputs.cls_scores.append(out.cls_score)
            outputs.mask_preds.append(mask_preds)
            outputs.scaled_mask_preds.append(prev_scaled)
            outputs.kernels.append(kernels)
            outputs.track_kernels.append(out.track_kernels)
        return outputs


__all__ = [
    'KernelStageLoopMixin', 'KernelStagesOutput', 'KernelStageOutput',
    'run_stage'
]
