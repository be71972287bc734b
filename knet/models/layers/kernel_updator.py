# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Gated kernel update of K-Net (paper Eq. 4-6), shared by every task."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class KNetKernelUpdator(nn.Module):
    """Adaptive kernel update: gates mix assembled group features and kernels.

    ``F^G = phi1(F) * phi2(K)``; two sigmoid gates computed from ``F^G``
    weigh ``psi3(F)`` and ``psi4(K)``; the sum goes through fc + LN + act.

    The updator works on ``feat_channels``-wide vectors. When it is given
    wider kernels (the 512-channel semantic heads), every kernel is split
    into consecutive ``feat_channels`` chunks that are updated independently,
    which is what the released semantic checkpoints were trained with.

    Args:
        in_channels (int): Width of the assembled features. Defaults to 256.
        feat_channels (int): Width of the gated features. Defaults to 64.
        out_channels (int, optional): Output width. Defaults to in_channels.
        input_feat_shape (int): Unused; kept so original configs build.
        gate_sigmoid (bool): Squash the gates with a sigmoid.
        gate_norm_act (bool): Extra LN + act on the gate feature.
        activate_out (bool): Activation on the two gated branches.
        act_cfg (dict): Activation config. Defaults to ReLU.
        norm_cfg (dict): Norm config. Defaults to LN.
    """

    def __init__(self,
                 in_channels: int = 256,
                 feat_channels: int = 64,
                 out_channels: Optional[int] = None,
                 input_feat_shape: int = 3,
                 gate_sigmoid: bool = True,
                 gate_norm_act: bool = False,
                 activate_out: bool = False,
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 norm_cfg: dict = dict(type='LN')) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.out_channels = out_channels or in_channels
        self.gate_sigmoid = gate_sigmoid
        self.gate_norm_act = gate_norm_act
        self.activate_out = activate_out
        # The gates act on feat_channels-wide tensors; the original declared
        # them with in_channels inputs, which only works when both agree.
        if in_channels != feat_channels:
            raise ValueError('KNetKernelUpdator needs in_channels == '
                             f'feat_channels, got {in_channels} and '
                             f'{feat_channels}')
        self.dynamic_layer = nn.Linear(in_channels, 2 * feat_channels)
        self.input_layer = nn.Linear(in_channels, 2 * feat_channels)
        self.input_gate = nn.Linear(in_channels, feat_channels)
        self.update_gate = nn.Linear(in_channels, feat_channels)
        if gate_norm_act:
            self.gate_norm = build_norm_layer(norm_cfg, feat_channels)[1]
        self.norm_in = build_norm_layer(norm_cfg, feat_channels)[1]
        self.norm_out = build_norm_layer(norm_cfg, feat_channels)[1]
        self.input_norm_in = build_norm_layer(norm_cfg, feat_channels)[1]
        self.input_norm_out = build_norm_layer(norm_cfg, feat_channels)[1]
        self.activation = build_activation_layer(act_cfg)
        self.fc_layer = nn.Linear(feat_channels, self.out_channels)
        self.fc_norm = build_norm_layer(norm_cfg, self.out_channels)[1]

    def forward(self, update_feature: Tensor, input_feature: Tensor) -> Tensor:
        """Update kernels with their assembled group features.

        Args:
            update_feature (Tensor): Assembled features, (..., C) with
                ``C`` a multiple of ``in_channels``.
            input_feature (Tensor): Kernels, (..., K*K, C) with the same
                leading dims.

        Returns:
            Tensor: Updated kernels of shape (P, K*K, out_channels) where
            ``P = numel(update_feature) / in_channels``.
        """
        update_feature = update_feature.reshape(-1, self.in_channels)
        num_proposals = update_feature.size(0)
        parameters = self.dynamic_layer(update_feature)
        param_in = parameters[:, :self.feat_channels].view(
            -1, 1, self.feat_channels)
        param_out = parameters[:, -self.feat_channels:].view(
            -1, 1, self.feat_channels)

        input_feats = self.input_layer(
            input_feature.reshape(num_proposals, -1, self.feat_channels))
        input_in = input_feats[..., :self.feat_channels]
        input_out = input_feats[..., -self.feat_channels:]

        gate_feats = input_in * param_in
        if self.gate_norm_act:
            gate_feats = self.activation(self.gate_norm(gate_feats))

        input_gate = self.input_norm_in(self.input_gate(gate_feats))
        update_gate = self.norm_in(self.update_gate(gate_feats))
        if self.gate_sigmoid:
            input_gate = input_gate.sigmoid()
            update_gate = update_gate.sigmoid()
        param_out = self.norm_out(param_out)
        input_out = self.input_norm_out(input_out)
        if self.activate_out:
            param_out = self.activation(param_out)
            input_out = self.activation(input_out)

        features = update_gate * param_out + input_gate * input_out
        features = self.fc_layer(features)
        features = self.fc_norm(features)
        return self.activation(features)
