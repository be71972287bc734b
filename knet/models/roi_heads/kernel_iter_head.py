# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net's iterative head: runs the update stages, their losses and the
instance / panoptic post-processing (the ``roi_head`` of the original)."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.losses import accuracy
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule, ModuleList
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers.stage_loop import KernelStageLoopMixin, KernelStagesOutput
from ..losses.kernel_losses import image_kernel_targets, kernel_mask_losses
from ..postprocessing import (KNOWN_TEST_CFG_KEYS, PanopticPrediction,
                              get_test_cfg, instance_topk,
                              panoptic_scores, panoptic_segments_logits,
                              panoptic_topk_scores)

# KNOWN_TEST_CFG_KEYS (imported above): the ``test_cfg`` keys the head
# reads, those of the post-processing (DEFAULT_TEST_CFG).
#: keys of every stage's ``train_cfg`` entry the head reads (``pos_weight``
#: is accepted for the original configs and unused)
KNOWN_TRAIN_CFG_KEYS = frozenset({'assigner', 'sampler', 'pos_weight'})


@MODELS.register_module()
# Video K-Net's ``VideoKernelIterHead`` is this head: the temporal context
# goes through ``loss_and_stages`` / ``predict_and_stages``
# (``previous_kernels``) and its stages are ``VideoKernelUpdateHead``s.
@MODELS.register_module(name='VideoKernelIterHead')
class KernelIterHead(KernelStageLoopMixin, BaseModule):
    """Iteratively refine K-Net kernels with ``num_stages`` update heads.

    Stage ``s`` is matched to the ground truth with the predictions that were
    fed into it (the kernel head's masks for stage 0), on the thing kernels
    only; stuff kernel ``j`` is always stuff class ``num_thing_classes + j``.
    Forward, loss and predict share one stage loop
    (:meth:`~knet.models.layers.KernelStageLoopMixin.run_stages`);
    :meth:`loss_and_stages` / :meth:`predict_and_stages` also return the
    per-stage outputs (kernels, tracking kernels, sampling results) for
    video models.

    Args:
        num_stages (int): Number of update stages. Defaults to 3.
        stage_loss_weights (list[float]): Loss weight of each stage.
        mask_head (dict | list[dict]): Config of the update heads
            (:class:`KNetKernelUpdateHead`): one dict shared by every stage
            (each stage still has its own weights), or one per stage.
        mask_upsample_stride (int): Upsampling of stage masks for losses and
            outputs (stride 8 -> 4). Defaults to 2.
        num_proposals (int): Number of thing kernels. Defaults to 100.
        num_thing_classes / num_stuff_classes (int): Class split.
        do_panoptic (bool): Panoptic output (else instance output).
        train_cfg (dict | list[dict]): ``assigner`` / ``sampler`` shared by
            every stage, or one dict per stage.
        test_cfg (dict): ``max_per_img``, ``mask_thr`` (instance mask
            binarisation; own area of a panoptic candidate), ``mask_score``
            (instance output: multiply class scores by the mean foreground
            mask probability; off in the original K-Net) and
            ``merge_stuff_thing`` (``overlap_thr``, ``instance_score_thr``,
            ``segment_id_start``); defaults in
            :data:`knet.models.postprocessing.DEFAULT_TEST_CFG`.
    """

    _IGNORED_ARGS = ('proposal_feature_channel', 'assign_stages',
                     'post_assign', 'hard_target', 'merge_cls_scores',
                     'mask_out_stride', 'recursive', 'bbox_roi_extractor',
                     'mask_roi_extractor', 'bbox_head', 'shared_head',
                     'mask_assign_stride', 'ignore_label',
                     'thing_label_in_seg', 'with_track', 'merge_joint')

    def __init__(self,
                 num_stages: int = 3,
                 stage_loss_weights: Sequence[float] = (1, 1, 1),
                 mask_head: Optional[dict] = None,
                 mask_upsample_stride: int = 2,
                 num_proposals: int = 100,
                 num_thing_classes: int = 80,
                 num_stuff_classes: int = 53,
                 do_panoptic: bool = False,
                 train_cfg: Optional[List[dict]] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        unknown = set(kwargs) - set(self._IGNORED_ARGS)
        if unknown:
            raise TypeError(f'KernelIterHead got unexpected arguments: '
                            f'{sorted(unknown)}')
        if mask_head is None:
            raise ValueError('KernelIterHead needs a mask_head config')
        if len(stage_loss_weights) != num_stages:
            raise ValueError(
                f'stage_loss_weights has {len(stage_loss_weights)} entries '
                f'for {num_stages} stages')
        self.num_stages = num_stages
        self.stage_loss_weights = list(stage_loss_weights)
        self.mask_upsample_stride = mask_upsample_stride
        self.num_proposals = num_proposals
        self.num_thing_classes = num_thing_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_thing_classes + num_stuff_classes
        self.do_panoptic = do_panoptic
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

        heads = mask_head if isinstance(mask_head, (list, tuple)) else \
            [mask_head] * num_stages
        if len(heads) != num_stages:
            raise ValueError(f'{len(heads)} mask_head configs for '
                             f'{num_stages} stages')
        self.mask_head = ModuleList(MODELS.build(h) for h in heads)
        if isinstance(train_cfg, dict):
            train_cfg = [train_cfg] * num_stages
            self.train_cfg = train_cfg
        if train_cfg is not None:
            if len(train_cfg) != num_stages:
                raise ValueError(f'train_cfg has {len(train_cfg)} stage '
                                 f'entries for {num_stages} stages')
            self.assigners = [TASK_UTILS.build(c['assigner'])
                              for c in train_cfg]
            self.samplers = [TASK_UTILS.build(c['sampler'])
                             for c in train_cfg]

    # ------------------------------------------------------------------
    # The stage loop (KernelStageLoopMixin hooks)
    # ------------------------------------------------------------------
    def stage_modules(self) -> ModuleList:
        """The update stages, in order."""
        return self.mask_head

    def _upsample(self, mask_preds: Tensor) -> Tensor:
        """Mask logits at the loss / output stride."""
        if self.mask_upsample_stride <= 1:
            return mask_preds
        return F.interpolate(
            mask_preds,
            scale_factor=self.mask_upsample_stride,
            mode='bilinear',
            align_corners=False)

    def scale_stage_masks(self, stage: int, mask_preds: Tensor) -> Tensor:
        """Upsampled logits in training (losses) and for the last stage
        (outputs); the stride-8 logits otherwise (saves the resize)."""
        if self.training or stage == self.num_stages - 1:
            return self._upsample(mask_preds)
        return mask_preds

    def assign_stage(self, stage: int, prev_cls: Optional[Tensor],
                     prev_masks: Tensor, prev_scaled: Optional[Tensor],
                     batch_gt: Tuple) -> List[SamplingResult]:
        """Match the first ``num_proposals`` kernels to the thing GT with
        the predictions fed into ``stage`` (stage 0: the kernel head's
        masks, no class cost), one sampling result per image."""
        gt_masks, gt_labels = batch_gt[:2]
        if prev_scaled is None:
            prev_scaled = self._upsample(prev_masks.detach())
        prev_scaled = prev_scaled.detach()
        prev_cls = prev_cls.detach() if prev_cls is not None else None
        n_things = self.num_proposals
        results = []
        for i in range(prev_scaled.size(0)):
            pred = InstanceData(masks=prev_scaled[i][:n_things])
            if prev_cls is not None:
                pred.scores = prev_cls[i][:n_things, :self.num_thing_classes]
            gt = InstanceData(labels=gt_labels[i], masks=gt_masks[i])
            assign_result = self.assigners[stage].assign(pred, gt)
            results.append(self.samplers[stage].sample(
                assign_result, pred, gt))
        return results

    # ------------------------------------------------------------------
    # forward / loss / predict: all through ``run_stages``
    # ------------------------------------------------------------------
    def forward(self, x_feats: Tensor, kernels: Tensor,
                mask_preds: Tensor) -> List[Tuple[Tensor, Tensor]]:
        """(cls_score, scaled mask logits) of every stage."""
        outs = self.run_stages(x_feats, kernels, mask_preds)
        return list(zip(outs.cls_scores, outs.scaled_mask_preds))

    def loss(self, x_feats: Tensor, kernels: Tensor, mask_preds: Tensor,
             gt_masks: List[Tensor], gt_labels: List[Tensor],
             gt_sem_masks: Optional[List[Tensor]],
             gt_sem_labels: Optional[List[Tensor]]) -> dict:
        """Losses of all stages (keys ``s{i}_loss_*``, ``s{i}_pos_acc``)."""
        return self.loss_and_stages(x_feats, kernels, mask_preds, gt_masks,
                                    gt_labels, gt_sem_masks,
                                    gt_sem_labels)[0]

    def loss_and_stages(self,
                        x_feats: Tensor,
                        kernels: Tensor,
                        mask_preds: Tensor,
                        gt_masks: List[Tensor],
                        gt_labels: List[Tensor],
                        gt_sem_masks: Optional[List[Tensor]],
                        gt_sem_labels: Optional[List[Tensor]],
                        previous_kernels: Optional[Tensor] = None
                        ) -> Tuple[dict, KernelStagesOutput]:
        """Losses of all stages and the stage outputs (kernels, tracking
        kernels, masks, class scores, sampling results) for what comes next
        (e.g. a tracking loss). ``previous_kernels`` are given to the last
        stage (see :meth:`KernelStageLoopMixin.run_stages`)."""
        batch_gt = (gt_masks, gt_labels, gt_sem_masks, gt_sem_labels)
        outs = self.run_stages(
            x_feats,
            kernels,
            mask_preds,
            batch_gt=batch_gt,
            previous_kernels=previous_kernels)
        losses = {}
        for stage in range(self.num_stages):
            head = self.mask_head[stage]
            scaled = outs.scaled_mask_preds[stage]
            targets = self._stage_targets(head, outs.sampling_results[stage],
                                          scaled.shape[-2:], batch_gt)
            stage_losses = self._stage_loss(head, outs.cls_scores[stage],
                                            scaled, *targets)
            weight = self.stage_loss_weights[stage]
            for key, value in stage_losses.items():
                losses[f's{stage}_{key}'] = value * weight
        return losses, outs

    def _stage_targets(self, head: nn.Module,
                       sampling_results: List[SamplingResult],
                       mask_shape, batch_gt: Tuple) -> Tuple[Tensor, ...]:
        """Labels, label weights and mask targets of one stage, all images
        concatenated, from its sampling results."""
        gt_masks, gt_labels, gt_sem_masks, gt_sem_labels = batch_gt
        n_things = self.num_proposals
        panoptic = gt_sem_labels is not None and self.do_panoptic
        all_labels, all_weights, all_masks = [], [], []
        for i, sampling in enumerate(sampling_results):
            labels, weights, masks = image_kernel_targets(
                sampling.pos_inds,
                gt_labels[i][sampling.pos_assigned_gt_inds],
                sampling.pos_gt_masks,
                n_things,
                mask_shape,
                head.num_classes,
                stuff_labels=gt_sem_labels[i] if panoptic else None,
                stuff_masks=gt_sem_masks[i] if panoptic else None,
                num_thing_classes=self.num_thing_classes,
                num_stuff_classes=self.num_stuff_classes)
            all_labels.append(labels)
            all_weights.append(weights)
            all_masks.append(masks)
        return (torch.cat(all_labels), torch.cat(all_weights),
                torch.cat(all_masks))

    @staticmethod
    def _stage_loss(head: nn.Module, cls_score: Tensor, mask_preds: Tensor,
                    labels: Tensor, label_weights: Tensor,
                    mask_targets: Tensor) -> dict:
        num_classes = head.num_classes
        positive = (labels >= 0) & (labels < num_classes)
        losses = {}
        if cls_score is not None and head.loss_cls is not None:
            cls_score = cls_score.flatten(0, 1)
            num_pos = positive.sum().float()
            avg_factor = reduce_mean(num_pos).clamp(min=1.0)
            losses['loss_cls'] = head.loss_cls(
                cls_score, labels, label_weights, avg_factor=avg_factor)
            if positive.any():
                losses['pos_acc'] = accuracy(cls_score[positive],
                                             labels[positive])
            else:
                losses['pos_acc'] = cls_score.new_zeros(())
        losses.update(
            kernel_mask_losses(mask_preds, labels, mask_targets, num_classes,
                               head.loss_mask, head.loss_dice,
                               head.loss_rank))
        return losses

    def predict(self, x_feats: Tensor, kernels: Tensor, mask_preds: Tensor,
                batch_img_metas: List[dict]) -> list:
        """Per image: panoptic id map (H, W) or :obj:`InstanceData` (with
        ``kernel_inds``, the kernel of every instance)."""
        results, _ = self.predict_and_stages(x_feats, kernels, mask_preds,
                                             batch_img_metas)
        if self.do_panoptic:
            return [result.pan_seg for result in results]
        return results

    def predict_and_stages(self,
                           x_feats: Tensor,
                           kernels: Tensor,
                           mask_preds: Tensor,
                           batch_img_metas: List[dict],
                           previous_kernels: Optional[Tensor] = None
                           ) -> Tuple[list, KernelStagesOutput]:
        """Post-processed results and the stage outputs.

        Returns:
            tuple: per image a :class:`PanopticPrediction` (id map and kept
            segments with their kernel indices) or an :obj:`InstanceData`
            (with ``kernel_inds``); and the :class:`KernelStagesOutput` (the
            tracker reads ``kernels`` / ``track_kernels`` of the kept
            kernels).
        """
        outs = self.run_stages(
            x_feats, kernels, mask_preds, previous_kernels=previous_kernels)
        return self.postprocess(outs.cls_scores[-1],
                                outs.scaled_mask_preds[-1],
                                batch_img_metas), outs

    def postprocess(self, cls_score: Tensor, mask_logits: Tensor,
                    batch_img_metas: List[dict]) -> list:
        """Last-stage logits -> per-image panoptic / instance results."""
        cls_probs = cls_score.sigmoid()
        cfg = self.test_cfg or {}
        results = []
        for i, img_meta in enumerate(batch_img_metas):
            if self.do_panoptic:
                results.append(
                    self._panoptic(cls_probs[i], mask_logits[i], img_meta,
                                   cfg))
            else:
                results.append(
                    instance_topk(
                        cls_probs[i][:, :self.num_thing_classes],
                        mask_logits[i],
                        img_meta,
                        max_per_img=get_test_cfg(cfg, 'max_per_img'),
                        mask_thr=get_test_cfg(cfg, 'mask_thr'),
                        mask_score=get_test_cfg(cfg, 'mask_score')))
        return results

    def _panoptic(self, cls_probs: Tensor, mask_logits: Tensor,
                  img_meta: dict, cfg: dict) -> PanopticPrediction:
        mode = get_test_cfg(cfg, 'thing_candidates')
        if mode == 'per_kernel':
            scores, labels = panoptic_scores(cls_probs, self.num_proposals,
                                             self.num_thing_classes)
            kernels, num_thing_candidates = None, self.num_proposals
        elif mode == 'topk':
            scores, labels, kernels = panoptic_topk_scores(
                cls_probs, self.num_proposals, self.num_thing_classes,
                get_test_cfg(cfg, 'max_per_img'))
            num_thing_candidates = scores.size(0) - (
                cls_probs.size(0) - self.num_proposals)
            mask_logits = mask_logits[kernels]
        else:
            raise ValueError(f"test_cfg.thing_candidates={mode!r}: use "
                             f"'per_kernel' (K-Net) or 'topk' (Video K-Net)")
        # == panoptic_merge(scores, labels, rescale_masks(mask_logits,
        # img_meta), ...), bit for bit, without the (N, H, W) probabilities
        pred = panoptic_segments_logits(
            scores,
            labels,
            mask_logits,
            img_meta,
            num_thing_candidates,
            void_label=self.num_classes,
            overlap_thr=get_test_cfg(cfg, 'merge_stuff_thing.overlap_thr'),
            instance_score_thr=get_test_cfg(
                cfg, 'merge_stuff_thing.instance_score_thr'),
            mask_thr=get_test_cfg(cfg, 'mask_thr'),
            segment_id_start=get_test_cfg(
                cfg, 'merge_stuff_thing.segment_id_start'))
        if kernels is not None:
            # candidate index -> index of the kernel that produced it
            pred = pred._replace(kernel_inds=kernels[pred.kernel_inds])
        return pred


__all__ = ['KernelIterHead', 'KNOWN_TEST_CFG_KEYS', 'KNOWN_TRAIN_CFG_KEYS']
