# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The one kernel-update stage of K-Net, used by det, seg and video heads.

A stage assembles a group feature per kernel from the previous masks, updates
the kernels with :class:`KNetKernelUpdator`, lets kernels interact through
self-attention + FFN, and predicts new masks by a dynamic convolution (and,
optionally, class scores). Task differences are constructor options:

* ``mask_pooling='sigmoid'`` (det/video: binarised ``sigmoid > thr``, no
  gradient through the mask) or ``'softmax'`` (seg: soft, across kernels);
* ``num_cls_fcs > 0`` adds the classifier (det/video), ``0`` drops it (seg).

Each step is a method (``transform_feats``, ``assemble``, ``update``,
``interact``, ``predict_classes``, ``predict_masks``) and the stage takes
optional temporal context, the previous frame's kernels, through two hooks
that the image stage leaves empty: ``fuse_previous`` (before the update:
Video K-Net's kernel fusion) and ``link`` (after the interaction: the
tracking kernels of kernel linking). Video / clip heads subclass and
override single steps; :meth:`KNetKernelUpdateHead.forward_stage` returns
every output (:class:`KernelStageOutput`).

The attribute names are those of the original checkpoints
(``kernel_update_conv``, ``attention.attn``, ``ffn.layers``, ``fc_mask`` ...).
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmengine.model import BaseModule, bias_init_with_prob
from mmengine.registry import MODELS
from torch import Tensor

from ..losses.builder import build_det_loss


def _fc_stack(channels: int, num_fcs: int, act_cfg: dict) -> nn.ModuleList:
    """[Linear(no bias), LN, act] x num_fcs, flattened as in the originals."""
    layers = nn.ModuleList()
    for _ in range(num_fcs):
        layers.append(nn.Linear(channels, channels, bias=False))
        layers.append(build_norm_layer(dict(type='LN'), channels)[1])
        layers.append(build_activation_layer(act_cfg))
    return layers


def dynamic_conv(feats: Tensor, kernels: Tensor) -> Tensor:
    """Convolve every image with its own kernels, without a Python loop.

    Args:
        feats (Tensor): (B, C, H, W) feature maps.
        kernels (Tensor): (B, N, C, K, K) per-image kernels.

    Returns:
        Tensor: (B, N, H, W) responses (no bias, 'same' padding).
    """
    num_imgs, num_kernels, channels, ksize = kernels.shape[:4]
    if ksize == 1:
        return torch.einsum('bnc,bchw->bnhw', kernels.flatten(2), feats)
    height, width = feats.shape[-2:]
    out = F.conv2d(
        feats.reshape(1, num_imgs * channels, height, width),
        kernels.reshape(num_imgs * num_kernels, channels, ksize, ksize),
        padding=ksize // 2,
        groups=num_imgs)
    return out.reshape(num_imgs, num_kernels, height, width)


class KernelStageOutput(NamedTuple):
    """Everything one update stage produces (see
    :meth:`KNetKernelUpdateHead.forward_stage`)."""
    #: (B, N, num_classes) class logits, None without a classifier
    cls_score: Optional[Tensor]
    #: (B, N, H, W) mask logits at the feature stride
    mask_preds: Tensor
    #: (B, N, C, K, K) updated kernels (input of the next stage)
    kernels: Tensor
    #: (B, N, C, K, K) kernels after the link step, for tracking; the
    #: updated kernels themselves when nothing was linked
    track_kernels: Tensor
    #: (B, N, C) assembled group features of the stage input masks (None
    #: for wrapped non-K-Net stage modules)
    group_feats: Optional[Tensor]


@MODELS.register_module()
class KNetKernelUpdateHead(BaseModule):
    """One K-Net update stage (group assembling, update, interaction).

    Args:
        num_classes (int): Classifier width (ignored when ``num_cls_fcs=0``).
        num_ffn_fcs (int): Layers of the FFN. Defaults to 2.
        num_heads (int): Attention heads. Defaults to 8.
        num_cls_fcs (int): FCs before ``fc_cls``; 0 builds no classifier.
        num_mask_fcs (int): FCs before ``fc_mask``. Defaults to 1.
        feedforward_channels (int): FFN hidden width. Defaults to 2048.
        in_channels (int): Kernel / feature width. Defaults to 256.
        out_channels (int): Output width of ``fc_mask``. Defaults to 256.
        dropout (float): Attention and FFN dropout. Defaults to 0.
        conv_kernel_size (int): Spatial size K of the dynamic kernels.
        mask_pooling (str): ``'sigmoid'`` (hard, det) or ``'softmax'``
            (soft, seg) group-feature assembling.
        hard_mask_thr (float): Threshold of the sigmoid pooling.
        feat_transform_cfg (dict, optional): ConvModule kwargs of the 1x1
            feature transform; None disables it.
        kernel_updator_cfg (dict): Config of the kernel updator.
        act_cfg / ffn_act_cfg (dict): Activations of the FC stacks / FFN.
        with_ffn (bool): Build the FFN. Defaults to True.
        loss_cls / loss_mask / loss_dice / loss_rank (dict, optional):
            Losses used by the det stage criterion (see
            :class:`knet.models.losses.KernelMaskCriterion`); seg leaves them
            unset.
        num_thing_classes / num_stuff_classes (int): Class split of a
            panoptic classifier (used to build targets).
        Other arguments of the original (``mask_upsample_stride``,
        ``mask_thr``, ...) are accepted and ignored for config compatibility.
    """

    _IGNORED_ARGS = ('mask_upsample_stride', 'mask_thr', 'kernel_init',
                     'feat_gather_stride', 'mask_transform_stride',
                     'mask_out_stride', 'mask_assign_stride',
                     'relative_coors', 'relative_coors_off',
                     'thing_label_in_seg', 'ignore_label')

    def __init__(self,
                 num_classes: int = 80,
                 num_ffn_fcs: int = 2,
                 num_heads: int = 8,
                 num_cls_fcs: int = 1,
                 num_mask_fcs: int = 1,
                 feedforward_channels: int = 2048,
                 in_channels: int = 256,
                 out_channels: int = 256,
                 dropout: float = 0.0,
                 conv_kernel_size: int = 1,
                 mask_pooling: str = 'sigmoid',
                 hard_mask_thr: float = 0.5,
                 feat_transform_cfg: Optional[dict] = None,
                 kernel_updator_cfg: dict = dict(
                     type='KNetKernelUpdator',
                     in_channels=256,
                     feat_channels=256,
                     out_channels=256,
                     act_cfg=dict(type='ReLU', inplace=True),
                     norm_cfg=dict(type='LN')),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 ffn_act_cfg: dict = dict(type='ReLU', inplace=True),
                 with_ffn: bool = True,
                 loss_cls: Optional[dict] = None,
                 loss_mask: Optional[dict] = None,
                 loss_dice: Optional[dict] = None,
                 loss_rank: Optional[dict] = None,
                 num_thing_classes: int = 80,
                 num_stuff_classes: int = 53,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        unknown = set(kwargs) - set(self._IGNORED_ARGS)
        if unknown:
            raise TypeError(f'{type(self).__name__} got unexpected '
                            f'arguments: {sorted(unknown)}')
        if mask_pooling not in ('sigmoid', 'softmax'):
            raise ValueError("mask_pooling must be 'sigmoid' or 'softmax', "
                             f'got {mask_pooling!r}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_kernel_size = conv_kernel_size
        self.mask_pooling = mask_pooling
        self.hard_mask_thr = hard_mask_thr
        self.with_ffn = with_ffn
        self.num_thing_classes = num_thing_classes
        self.num_stuff_classes = num_stuff_classes
        kernel_dims = in_channels * conv_kernel_size**2

        self.attention = MultiheadAttention(kernel_dims, num_heads, dropout)
        self.attention_norm = build_norm_layer(dict(type='LN'), kernel_dims)[1]
        self.kernel_update_conv = MODELS.build(kernel_updator_cfg)

        if feat_transform_cfg is not None:
            feat_transform_cfg = dict(feat_transform_cfg)
            ksize = feat_transform_cfg.pop('kernel_size', 1)
            self.feat_transform = ConvModule(
                in_channels,
                in_channels,
                ksize,
                stride=1,
                padding=ksize // 2,
                **feat_transform_cfg)
        else:
            self.feat_transform = None

        if with_ffn:
            self.ffn = FFN(
                in_channels,
                feedforward_channels,
                num_ffn_fcs,
                act_cfg=ffn_act_cfg,
                ffn_drop=dropout)
            self.ffn_norm = build_norm_layer(dict(type='LN'), in_channels)[1]

        self.with_cls = num_cls_fcs > 0
        if self.with_cls:
            self.cls_fcs = _fc_stack(in_channels, num_cls_fcs, act_cfg)
            self.fc_cls = nn.Linear(in_channels, num_classes)
        self.mask_fcs = _fc_stack(in_channels, num_mask_fcs, act_cfg)
        self.fc_mask = nn.Linear(in_channels, out_channels)

        self.loss_cls = build_det_loss(loss_cls)
        self.loss_mask = build_det_loss(loss_mask)
        self.loss_dice = build_det_loss(loss_dice)
        self.loss_rank = build_det_loss(loss_rank)

    def init_weights(self) -> None:
        """Xavier-uniform on every >=2-D parameter, prior 0.01 on fc_cls."""
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        if self.with_cls and (self.loss_cls is None
                              or getattr(self.loss_cls, 'use_sigmoid',
                                         False)):
            nn.init.constant_(self.fc_cls.bias, bias_init_with_prob(0.01))

    # ------------------------------------------------------------------
    # The stage, step by step. Each step is a method so that a subclass
    # (video linking / fusion, clip-level VIS stages) overrides one step
    # and inherits the rest; ``forward_stage`` chains them.
    # ------------------------------------------------------------------
    def transform_feats(self, feats: Tensor) -> Tensor:
        """Per-stage 1x1 feature transform (identity when disabled)."""
        if self.feat_transform is None:
            return feats
        return self.feat_transform(feats)

    def assemble(self, feats: Tensor, mask_preds: Tensor) -> Tensor:
        """Group feature assembling (paper Eq. 3): (B, N, C) mask sums."""
        if mask_preds.shape[-2:] != feats.shape[-2:]:
            mask_preds = F.interpolate(
                mask_preds,
                feats.shape[-2:],
                mode='bilinear',
                align_corners=False)
        if self.mask_pooling == 'softmax':
            weights = mask_preds.softmax(dim=1)
        else:
            weights = (mask_preds.sigmoid() > self.hard_mask_thr).to(
                feats.dtype)
        return torch.einsum('bnhw,bchw->bnc', weights, feats)

    def kernels_to_tokens(self, kernels: Tensor) -> Tensor:
        """(B, N, C, K, K) kernels -> (B, N, K*K, C) tokens."""
        num_imgs, num_kernels = kernels.shape[:2]
        return kernels.reshape(num_imgs, num_kernels, self.in_channels,
                               -1).permute(0, 1, 3, 2)

    def tokens_to_kernels(self, tokens: Tensor) -> Tensor:
        """(B, N, K*K, C) tokens -> (B, N, C, K, K) kernels."""
        num_imgs, num_kernels = tokens.shape[:2]
        return tokens.permute(0, 1, 3, 2).reshape(
            num_imgs, num_kernels, self.in_channels, self.conv_kernel_size,
            self.conv_kernel_size)

    def fuse_previous(self, tokens: Tensor, group_feats: Tensor,
                      previous_tokens: Tensor) -> Tensor:
        """Kernel fusion hook, before the update (video ``previous_link``).

        The image stage has no fusion module: the current kernels are
        returned unchanged. Shapes: tokens / previous_tokens (B, N, K*K, C),
        group_feats (B, N, C).
        """
        return tokens

    def update(self, group_feats: Tensor, tokens: Tensor) -> Tensor:
        """Gated kernel update (paper Eq. 4-6): (B, N, K*K, C) tokens."""
        num_imgs, num_kernels = tokens.shape[:2]
        obj_feats = self.kernel_update_conv(group_feats, tokens)
        return obj_feats.reshape(num_imgs, num_kernels, -1,
                                 self.in_channels)

    def interact(self, obj_feats: Tensor) -> Tensor:
        """Kernel interaction: self-attention over the N kernels + FFN."""
        num_imgs, num_kernels = obj_feats.shape[:2]
        # sequence-first attention over the N kernels
        obj_feats = obj_feats.reshape(num_imgs, num_kernels,
                                      -1).permute(1, 0, 2)
        obj_feats = self.attention_norm(self.attention(obj_feats))
        obj_feats = obj_feats.permute(1, 0, 2).reshape(
            num_imgs, num_kernels, -1, self.in_channels)
        if self.with_ffn:
            obj_feats = self.ffn_norm(self.ffn(obj_feats))
        return obj_feats

    def link(self, obj_feats: Tensor, previous_tokens: Tensor,
             group_feats: Tensor) -> Tensor:
        """Kernel linking hook, after the interaction (video
        ``previous_type``): tracking kernels, (B, N, K*K, C), from the
        updated kernels, the previous frame's kernels (both (B, N, K*K, C))
        and the current group features (B, N, C).

        Used only for the association embedding, never for masks or
        classes. The image stage links nothing: its tracking kernels are
        the updated kernels (the first frame of a video does the same).
        """
        return obj_feats

    def predict_classes(self, obj_feats: Tensor) -> Optional[Tensor]:
        """(B, N, num_classes) class logits, or None without classifier."""
        if not self.with_cls:
            return None
        num_imgs, num_kernels = obj_feats.shape[:2]
        cls_feat = obj_feats.sum(-2)
        for layer in self.cls_fcs:
            cls_feat = layer(cls_feat)
        return self.fc_cls(cls_feat).view(num_imgs, num_kernels, -1)

    def predict_masks(self, feats: Tensor, obj_feats: Tensor) -> Tensor:
        """(B, N, H, W) mask logits: dynamic conv of the (transformed)
        features with kernels decoded from ``obj_feats``."""
        num_imgs, num_kernels = obj_feats.shape[:2]
        mask_feat = obj_feats
        for layer in self.mask_fcs:
            mask_feat = layer(mask_feat)
        # (B, N, K*K, C) -> (B, N, C, K, K)
        mask_kernels = self.fc_mask(mask_feat).permute(0, 1, 3, 2).reshape(
            num_imgs, num_kernels, -1, self.conv_kernel_size,
            self.conv_kernel_size)
        return dynamic_conv(feats, mask_kernels)

    def forward_stage(self,
                      feats: Tensor,
                      kernels: Tensor,
                      mask_preds: Tensor,
                      previous_kernels: Optional[Tensor] = None
                      ) -> KernelStageOutput:
        """Run one update stage and keep every output a caller may need.

        Args:
            feats (Tensor): (B, C, H, W) shared feature map.
            kernels (Tensor): (B, N, C, K, K) kernels from the last stage.
            mask_preds (Tensor): (B, N, h, w) mask logits of the last stage.
            previous_kernels (Tensor, optional): (B, N, C, K, K) kernels of
                the previous frame (temporal context). None (images, first
                frame) skips :meth:`fuse_previous` and :meth:`link`.

        Returns:
            KernelStageOutput: class logits (or None), new mask logits,
            updated kernels, tracking kernels and the group features.
        """
        feats = self.transform_feats(feats)
        group_feats = self.assemble(feats, mask_preds)
        tokens = self.kernels_to_tokens(kernels)
        previous_tokens = None
        if previous_kernels is not None:
            previous_tokens = self.kernels_to_tokens(previous_kernels)
            tokens = self.fuse_previous(tokens, group_feats, previous_tokens)
        obj_feats = self.interact(self.update(group_feats, tokens))
        track_feats = obj_feats if previous_tokens is None else self.link(
            obj_feats, previous_tokens, group_feats)
        cls_score = self.predict_classes(obj_feats)
        new_mask_preds = self.predict_masks(feats, obj_feats)
        new_kernels = self.tokens_to_kernels(obj_feats)
        track_kernels = new_kernels if track_feats is obj_feats else \
            self.tokens_to_kernels(track_feats)
        return KernelStageOutput(cls_score, new_mask_preds, new_kernels,
                                 track_kernels, group_feats)

    def forward(self,
                feats: Tensor,
                kernels: Tensor,
                mask_preds: Tensor,
                previous_kernels: Optional[Tensor] = None
                ) -> Tuple[Optional[Tensor], Tensor, Tensor]:
        """Run one update stage (see :meth:`forward_stage`).

        Returns:
            tuple: ``cls_score`` (B, N, num_classes) or None without a
            classifier, new mask logits (B, N, H, W), and the updated kernels
            (B, N, C, K, K).
        """
        out = self.forward_stage(feats, kernels, mask_preds,
                                 previous_kernels)
        return out.cls_score, out.mask_preds, out.kernels
