# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net's kernel head: the initial thing kernels, stuff kernels and masks."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.model import BaseModule, bias_init_with_prob, normal_init
from mmengine.structures import InstanceData
from torch import Tensor

from ..losses.kernel_losses import (dense_seg_targets, image_kernel_targets,
                                    kernel_mask_losses)

#: ``train_cfg`` keys (detector ``train_cfg.rpn``) the head reads
#: (``pos_weight`` is accepted for the original configs and unused)
KNOWN_TRAIN_CFG_KEYS = frozenset({'assigner', 'sampler', 'pos_weight'})
#: ``test_cfg`` keys (detector ``test_cfg.rpn``) the head reads: none
KNOWN_TEST_CFG_KEYS = frozenset()


@MODELS.register_module()
class ConvKernelHead(BaseModule):
    """Generate K-Net's initial kernels and masks (the ``rpn_head``).

    Thing kernels are the weights of ``init_kernels`` (a 1x1 conv), enriched
    with the features summed inside their own binarised masks. In panoptic
    mode the stuff kernels are rows ``num_thing_classes:`` of the dense
    semantic classifier ``conv_seg``, and its logits are their masks.

    Args:
        num_proposals (int): Number of thing kernels. Defaults to 100.
        in_channels / out_channels (int): Feature channels (256).
        num_classes (int): Dense classifier width (80 or 133).
        num_thing_classes / num_stuff_classes (int): Class split.
        cat_stuff_mask (bool): Append stuff kernels/masks (panoptic).
        localization_fpn (dict): Config of the :class:`SemanticFPNWrapper`.
        num_loc_convs / num_seg_convs (int): 1x1 convs on the two FPN outputs.
        conv_kernel_size (int): Kernel size K of ``init_kernels``.
        norm_cfg (dict): Norm of the 1x1 convs. Defaults to GN(32).
        feat_downsample_stride (int): Upsampling of the masks for the losses
            and the matching (stride 8 -> 4). Defaults to 2.
        use_binary (bool): Binarise the masks used for kernel enrichment.
        proposal_feats_with_obj (bool): Add mask-pooled features to kernels.
        conv_normal_init (bool): Normal(0.01) init of the 1x1 convs.
        kernel_init_std (float): Std of the ``init_kernels`` init (1.0).
        loss_mask / loss_dice / loss_seg / loss_rank (dict): Losses.
        train_cfg (dict): ``assigner`` and ``sampler`` configs.
        test_cfg (dict): Unused.
    """

    _IGNORED_ARGS = ('num_heads', 'num_cls_fcs', 'att_dropout', 'with_embed',
                     'feat_embed_only', 'mask_out_stride', 'hard_target',
                     'mask_assign_stride', 'thing_label_in_seg',
                     'xavier_init_kernel', 'feat_transform_cfg',
                     'semantic_fpn', 'feat_refine', 'feat_refine_stride',
                     'ignore_label', 'loss_cls')

    def __init__(self,
                 num_proposals: int = 100,
                 in_channels: int = 256,
                 out_channels: int = 256,
                 num_classes: int = 80,
                 num_thing_classes: int = 80,
                 num_stuff_classes: int = 53,
                 cat_stuff_mask: bool = False,
                 localization_fpn: Optional[dict] = None,
                 num_loc_convs: int = 1,
                 num_seg_convs: int = 1,
                 conv_kernel_size: int = 1,
                 norm_cfg: dict = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 feat_downsample_stride: int = 2,
                 use_binary: bool = True,
                 proposal_feats_with_obj: bool = True,
                 conv_normal_init: bool = True,
                 kernel_init_std: float = 1.0,
                 loss_mask: dict = dict(
                     type='CrossEntropyLoss', use_sigmoid=True,
                     loss_weight=1.0),
                 loss_dice: dict = dict(type='DiceLoss', loss_weight=4.0),
                 loss_seg: Optional[dict] = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_rank: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        if kwargs.get('feat_refine'):
            raise NotImplementedError('feat_refine=True is not supported')
        unknown = set(kwargs) - set(self._IGNORED_ARGS)
        if unknown:
            raise TypeError(f'ConvKernelHead got unexpected arguments: '
                            f'{sorted(unknown)}')
        if localization_fpn is None:
            raise ValueError('ConvKernelHead needs a localization_fpn config')
        self.num_proposals = num_proposals
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_classes = num_classes
        self.num_thing_classes = num_thing_classes
        self.num_stuff_classes = num_stuff_classes
        self.cat_stuff_mask = cat_stuff_mask
        self.conv_kernel_size = conv_kernel_size
        self.feat_downsample_stride = feat_downsample_stride
        self.use_binary = use_binary
        self.proposal_feats_with_obj = proposal_feats_with_obj
        self.conv_normal_init = conv_normal_init
        self.kernel_init_std = kernel_init_std
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

        self.localization_fpn = MODELS.build(localization_fpn)
        self.init_kernels = nn.Conv2d(
            out_channels,
            num_proposals,
            conv_kernel_size,
            padding=conv_kernel_size // 2,
            bias=False)
        self.conv_seg = nn.Conv2d(out_channels, num_classes, 1)
        self.loc_convs = nn.ModuleList(
            ConvModule(in_channels, out_channels, 1, norm_cfg=norm_cfg)
            for _ in range(num_loc_convs))
        self.seg_convs = nn.ModuleList(
            ConvModule(in_channels, out_channels, 1, norm_cfg=norm_cfg)
            for _ in range(num_seg_convs))

        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)
        self.loss_seg = MODELS.build(loss_seg) if loss_seg else None
        self.loss_rank = MODELS.build(loss_rank) if loss_rank else None
        if train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            self.sampler = TASK_UTILS.build(train_cfg['sampler'])

    def init_weights(self) -> None:
        """Init rules of the original (§1.11 of the spec)."""
        self.localization_fpn.init_weights()
        if self.feat_downsample_stride > 1 and self.conv_normal_init:
            for conv in list(self.loc_convs) + list(self.seg_convs):
                normal_init(conv.conv, std=0.01)
        if self.loss_seg is not None and getattr(self.loss_seg,
                                                 'use_sigmoid', False):
            normal_init(
                self.conv_seg, std=0.01, bias=bias_init_with_prob(0.01))
        else:
            normal_init(self.conv_seg, mean=0, std=0.01)
        nn.init.normal_(self.init_kernels.weight, 0, self.kernel_init_std)

    def forward(self, feats: List[Tensor]) -> Tuple[Tensor, ...]:
        """Initial kernels and masks of the thing kernels.

        Args:
            feats (list[Tensor]): FPN levels.

        Returns:
            tuple: kernels (B, N, C, K, K), x_feats (B, C, h, w),
            thing mask logits (B, N, h, w), semantic logits (B, cls, h, w).
        """
        loc_feats, sem_feats = self.localization_fpn(feats)[:2]
        for conv in self.loc_convs:
            loc_feats = conv(loc_feats)
        for conv in self.seg_convs:
            sem_feats = conv(sem_feats)
        mask_preds = self.init_kernels(loc_feats)
        seg_preds = self.conv_seg(sem_feats)
        x_feats = sem_feats + loc_feats

        num_imgs = x_feats.size(0)
        kernels = self.init_kernels.weight.clone()
        kernels = kernels[None].expand(num_imgs, *kernels.size())
        if self.proposal_feats_with_obj:
            probs = mask_preds.sigmoid()
            masks = (probs > 0.5).to(x_feats.dtype)
            if not self.use_binary:
                masks = masks * probs
            obj_feats = torch.einsum('bnhw,bchw->bnc', masks, x_feats)
            kernels = kernels + obj_feats.view(*obj_feats.shape, 1, 1)
        return kernels, x_feats, mask_preds, seg_preds

    def append_stuff(self, kernels: Tensor, mask_preds: Tensor,
                     seg_preds: Tensor) -> Tuple[Tensor, Tensor]:
        """Append the stuff kernels (raw ``conv_seg`` rows) and their masks
        (the biased semantic logits) after the thing kernels."""
        if not self.cat_stuff_mask:
            return kernels, mask_preds
        start = self.num_thing_classes
        stuff_masks = seg_preds[:, start:]
        stuff_kernels = self.conv_seg.weight[start:].clone()
        stuff_kernels = stuff_kernels[None].expand(
            kernels.size(0), *stuff_kernels.size())
        return (torch.cat([kernels, stuff_kernels], dim=1),
                torch.cat([mask_preds, stuff_masks], dim=1))

    def predict(self, feats: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Kernels, shared features and masks (things + stuff) at test."""
        kernels, x_feats, mask_preds, seg_preds = self(feats)
        kernels, mask_preds = self.append_stuff(kernels, mask_preds,
                                                seg_preds)
        return kernels, x_feats, mask_preds

    def loss(self, feats: List[Tensor], gt_masks: List[Tensor],
             gt_labels: List[Tensor], gt_sem_masks: Optional[List[Tensor]],
             gt_sem_labels: Optional[List[Tensor]]) -> Tuple[dict, ...]:
        """Losses of the initial masks, plus what the update stages need.

        Args:
            feats (list[Tensor]): FPN levels.
            gt_masks / gt_labels (list[Tensor]): Soft thing masks at the
                assignment stride and their labels, per image.
            gt_sem_masks / gt_sem_labels (list[Tensor], optional): Stuff
                masks and labels per image (panoptic).

        Returns:
            tuple: losses, kernels, x_feats, mask logits (things + stuff).
        """
        kernels, x_feats, mask_preds, seg_preds = self(feats)
        num_imgs = mask_preds.size(0)
        scale = self.feat_downsample_stride
        scaled_masks = F.interpolate(
            mask_preds, scale_factor=scale, mode='bilinear',
            align_corners=False) if scale > 1 else mask_preds
        scaled_segs = F.interpolate(
            seg_preds, scale_factor=scale, mode='bilinear',
            align_corners=False) if scale > 1 else seg_preds
        mask_shape = scaled_masks.shape[-2:]

        all_labels, all_mask_targets, all_seg_targets = [], [], []
        for i in range(num_imgs):
            pred = InstanceData(masks=scaled_masks[i].detach())
            gt = InstanceData(labels=gt_labels[i], masks=gt_masks[i])
            assign_result = self.assigner.assign(pred, gt)
            sampling = self.sampler.sample(assign_result, pred, gt)
            stuff_labels = gt_sem_labels[i] if gt_sem_labels else None
            stuff_masks = gt_sem_masks[i] if gt_sem_masks else None
            pos_gt_labels = gt_labels[i][sampling.pos_assigned_gt_inds]
            labels, _, mask_targets = image_kernel_targets(
                sampling.pos_inds, pos_gt_labels,
                sampling.pos_gt_masks, self.num_proposals, mask_shape,
                self.num_classes, per_class_weights=False)
            all_labels.append(labels)
            all_mask_targets.append(mask_targets)
            all_seg_targets.append(
                dense_seg_targets(stuff_labels, stuff_masks,
                                  pos_gt_labels, sampling.pos_gt_masks,
                                  mask_shape,
                                  self.num_classes))
        labels = torch.cat(all_labels)
        mask_targets = torch.cat(all_mask_targets)

        terms = kernel_mask_losses(scaled_masks, labels, mask_targets,
                                   self.num_classes, self.loss_mask,
                                   self.loss_dice, self.loss_rank)
        losses = {f'loss_rpn_{k[5:]}': v for k, v in terms.items()}
        if self.loss_seg is not None:
            seg_targets = torch.stack(all_seg_targets).flatten()
            num_dense_pos = ((seg_targets >= 0) &
                             (seg_targets < self.num_classes)).sum()
            avg_factor = num_dense_pos.float().clamp(min=1.0)
            losses['loss_rpn_seg'] = self.loss_seg(
                scaled_segs.permute(0, 2, 3, 1).reshape(-1, self.num_classes),
                seg_targets,
                avg_factor=avg_factor)
        kernels, mask_preds = self.append_stuff(kernels, mask_preds,
                                                seg_preds)
        return losses, kernels, x_feats, mask_preds


__all__ = ['ConvKernelHead', 'KNOWN_TEST_CFG_KEYS', 'KNOWN_TRAIN_CFG_KEYS']
