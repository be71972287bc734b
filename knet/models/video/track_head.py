# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Kernel association embedding head of Video K-Net (spec §2.6, item 3).

Video K-Net embeds the matched thing kernels of the key and reference
frames with a small MLP and learns to associate them with QDTrack's two
losses (multi-positive cross-entropy on dot products, L2 on cosines).
mmdet's ``QuasiDenseEmbedHead`` builds its targets from box sampling
results, which kernels do not have, so this head takes, per image, the
embeddings of the positive kernels and the GT instance id each is matched
to. Parameter names (``fcs.<i>``, ``fc_embed``) are those of mmdet's head
and of the original checkpoints.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmdet.models.task_modules.tracking import embed_similarity
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..losses.builder import build_det_loss


@MODELS.register_module('QuasiDenseMaskEmbedHeadGTMask')
@MODELS.register_module()
class QuasiDenseMaskEmbedHead(BaseModule):
    """[Linear + ReLU] x ``num_fcs`` -> ``fc_embed`` on kernel features.

    Args:
        num_convs (int): Must be 0 (kernels have no spatial extent to
            convolve); kept for config compatibility.
        num_fcs (int): Hidden Linear + ReLU layers. Defaults to 2.
        roi_feat_size (int): Spatial size of the input; the first FC takes
            ``in_channels * roi_feat_size**2`` values. Defaults to 1.
        in_channels (int): Kernel width. Defaults to 256.
        conv_out_channels (int): Unused (no convs).
        fc_out_channels (int): Hidden width. Defaults to 256.
        embed_channels (int): Embedding width. Defaults to 256.
        conv_cfg / norm_cfg (dict, optional): Unused (no convs); the
            original configs set a GN ``norm_cfg``.
        softmax_temp (float): Divides the dot products when > 0; -1 (the
            original's value) keeps them raw.
        loss_track (dict): Multi-positive CE on dot products (weight 0.25).
        loss_track_aux (dict, optional): L2 on cosines with hard mining
            (:class:`knet.models.losses.KNetL2Loss`); None disables it.
        init_cfg (dict): Xavier-uniform FCs with zero bias, ``fc_embed``
            normal(std=0.01) with zero bias.
    """

    def __init__(self,
                 num_convs: int = 0,
                 num_fcs: int = 2,
                 roi_feat_size: int = 1,
                 in_channels: int = 256,
                 conv_out_channels: int = 256,
                 fc_out_channels: int = 256,
                 embed_channels: int = 256,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 softmax_temp: float = -1,
                 loss_track: dict = dict(
                     type='MultiPosCrossEntropyLoss', loss_weight=0.25),
                 loss_track_aux: Optional[dict] = dict(
                     type='KNetL2Loss',
                     neg_pos_ub=3,
                     pos_margin=0,
                     neg_margin=0.1,
                     hard_mining=True,
                     loss_weight=1.0),
                 init_cfg: Optional[dict] = dict(
                     type='Xavier',
                     layer='Linear',
                     distribution='uniform',
                     bias=0,
                     override=dict(
                         type='Normal',
                         name='fc_embed',
                         mean=0,
                         std=0.01,
                         bias=0))) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_convs != 0:
            raise ValueError(
                f'{type(self).__name__}: num_convs must be 0 (kernel '
                f'embeddings have no spatial extent), got {num_convs}; '
                'fix track_head.num_convs in the config')
        self.in_channels = in_channels
        self.embed_channels = embed_channels
        self.softmax_temp = softmax_temp
        in_dims = in_channels * roi_feat_size**2
        self.fcs = nn.ModuleList()
        for i in range(num_fcs):
            self.fcs.append(
                nn.Linear(in_dims if i == 0 else fc_out_channels,
                          fc_out_channels))
        self.relu = nn.ReLU(inplace=True)
        self.fc_embed = nn.Linear(fc_out_channels if num_fcs else in_dims,
                                  embed_channels)
        # built in mmdet's scope whatever the caller's default scope (mmseg
        # has no MultiPosCrossEntropyLoss)
        self.loss_track = build_det_loss(loss_track)
        self.loss_track_aux = build_det_loss(loss_track_aux)

    def forward(self, x: Tensor) -> Tensor:
        """(M, C) or (M, C, s, s) kernel features -> (M, embed) embeddings."""
        x = x.flatten(1)
        for fc in self.fcs:
            x = self.relu(fc(x))
        return self.fc_embed(x)

    @staticmethod
    def track_targets(key_ids: Tensor, ref_ids: Tensor) -> Tensor:
        """(P_k, P_r) int targets: 1 where both kernels match one GT id."""
        return (key_ids.view(-1, 1) == ref_ids.view(1, -1)).int()

    def loss_single(self, key_embeds: Tensor, ref_embeds: Tensor,
                    key_ids: Tensor, ref_ids: Tensor) -> Dict[str, Tensor]:
        """Both tracking losses of one image pair (see :meth:`loss`)."""
        if key_embeds.shape[0] == 0 or ref_embeds.shape[0] == 0:
            # nothing to associate: a zero that keeps both inputs in the
            # graph (DDP sees every parameter used)
            zero = (key_embeds.sum() + ref_embeds.sum()) * 0
            losses = dict(loss_track=zero)
            if self.loss_track_aux is not None:
                losses['loss_track_aux'] = zero
            return losses
        targets = self.track_targets(key_ids, ref_ids)
        weights = (targets.sum(dim=1) > 0).float()
        dists = embed_similarity(
            key_embeds,
            ref_embeds,
            method='dot_product',
            temperature=self.softmax_temp)
        losses = dict(
            loss_track=self.loss_track(
                dists, targets, weights, avg_factor=weights.sum()))
        if self.loss_track_aux is not None:
            cos = embed_similarity(key_embeds, ref_embeds, method='cosine')
            losses['loss_track_aux'] = self.loss_track_aux(cos, targets)
        return losses

    def loss(self, key_embeds: Sequence[Tensor], ref_embeds: Sequence[Tensor],
             key_ids: Sequence[Tensor],
             ref_ids: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Tracking losses of a batch, averaged over its images.

        Args:
            key_embeds / ref_embeds (list[Tensor]): Per image, the
                embeddings (outputs of :meth:`forward`) of the key /
                reference kernels that are positives of the tracking
                assigner, (P_k, E) / (P_r, E).
            key_ids / ref_ids (list[Tensor]): Per image, the GT instance id
                each of those kernels is matched to, (P_k,) / (P_r,).

        Returns:
            dict: ``loss_track`` (multi-positive CE on dot products, rows
            without a positive weigh 0, averaged over the rows that have
            one) and ``loss_track_aux`` (L2 on cosines), each the mean over
            the images. An image without key or reference positives adds a
            graph-keeping zero (and still counts in the mean).

        The original selected image i's positive kernels with
        ``embeds[:, idx_i]``, i.e. from every image of the batch (spec
        §9.1-3); per-image lists fix that. All Video K-Net
        configs train with one image per GPU, where both agree, so there is
        no switch to reproduce the bug.
        """
        if not (len(key_embeds) == len(ref_embeds) == len(key_ids) ==
                len(ref_ids)) or len(key_embeds) == 0:
            raise ValueError(
                f'{type(self).__name__}.loss: key_embeds, ref_embeds, '
                'key_ids and ref_ids need one entry per image, got '
                f'{len(key_embeds)}, {len(ref_embeds)}, {len(key_ids)}, '
                f'{len(ref_ids)}')
        per_image: List[Dict[str, Tensor]] = [
            self.loss_single(*args)
            for args in zip(key_embeds, ref_embeds, key_ids, ref_ids)
        ]
        return {
            name: torch.stack([losses[name] for losses in per_image]).mean()
            for name in per_image[0]
        }
