# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Semantic-FPN style fusion of FPN levels into one stride-8 map (K-Net)."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule, normal_init
from torch import Tensor


@MODELS.register_module()
class SemanticFPNWrapper(BaseModule):
    """Bring FPN levels to one stride, sum them and predict base features.

    Level ``i`` gets ``i`` 3x3 convs with x2 bilinear upsampling in between
    (level 0 is downsampled by stride-2 convs when ``upsample_times`` is
    smaller than ``end_level``). A sine positional encoding is added to level
    ``cat_coors_level`` when configured. The fused map goes through
    ``conv_pred`` and ``num_aux_convs`` extra 1x1 convs; with aux convs the
    forward returns ``[conv_pred(out), *aux(out)]``.

    Module names (``convs_all_levels.<i>.conv<j>``, ``conv_pred``,
    ``aux_convs``) are those of the original checkpoints.

    Args:
        in_channels (int): FPN channels.
        feat_channels (int): Channels inside the level branches.
        out_channels (int): Output channels.
        start_level / end_level (int): First / last FPN level used.
        upsample_times (int): Number of x2 upsamplings of the last level.
        positional_encoding (dict, optional): mmdet positional encoding.
        cat_coors (bool): Concatenate normalised coordinates (2 channels).
        cat_coors_level (int): Level that gets the encoding / coordinates.
        fuse_by_cat (bool): Concatenate instead of summing the levels.
        return_list (bool): Return a list even without aux convs.
        num_aux_convs (int): Extra 1x1 output convs.
        with_pred (bool): Build ``conv_pred``.
        conv_cfg / norm_cfg / act_cfg / out_act_cfg: ConvModule settings.
    """

    def __init__(self,
                 in_channels: int,
                 feat_channels: int,
                 out_channels: int,
                 start_level: int,
                 end_level: int,
                 upsample_times: int = 3,
                 positional_encoding: Optional[dict] = None,
                 cat_coors: bool = False,
                 cat_coors_level: int = 3,
                 fuse_by_cat: bool = False,
                 return_list: bool = False,
                 num_aux_convs: int = 0,
                 with_pred: bool = True,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 out_act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.start_level = start_level
        self.end_level = end_level
        self.cat_coors = cat_coors
        self.cat_coors_level = cat_coors_level
        self.fuse_by_cat = fuse_by_cat
        self.return_list = return_list
        self.with_pred = with_pred
        self.positional_encoding = (
            MODELS.build(positional_encoding)
            if positional_encoding is not None else None)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.convs_all_levels = nn.ModuleList()
        for level in range(start_level, end_level + 1):
            branch = nn.Sequential()
            if level == 0:
                num_down = end_level - upsample_times
                if num_down <= 0:
                    branch.add_module(
                        'conv0',
                        ConvModule(
                            in_channels, feat_channels, 3, padding=1,
                            **common))
                for j in range(max(num_down, 0)):
                    branch.add_module(
                        f'conv{j}',
                        ConvModule(
                            in_channels if j == 0 else feat_channels,
                            feat_channels,
                            3,
                            padding=1,
                            stride=2,
                            **common))
                self.convs_all_levels.append(branch)
                continue
            num_ups = upsample_times - (end_level - level)
            for j in range(level):
                chn = in_channels if j == 0 else feat_channels
                if j == 0 and cat_coors and level == cat_coors_level:
                    chn += 2
                branch.add_module(
                    f'conv{j}',
                    ConvModule(chn, feat_channels, 3, padding=1, **common))
                if j < num_ups:
                    branch.add_module(
                        f'upsample{j}',
                        nn.Upsample(
                            scale_factor=2,
                            mode='bilinear',
                            align_corners=False))
            self.convs_all_levels.append(branch)

        fused = feat_channels * (end_level - start_level + 1) \
            if fuse_by_cat else feat_channels
        if with_pred:
            self.conv_pred = ConvModule(
                fused,
                out_channels,
                1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=out_act_cfg)
        self.num_aux_convs = num_aux_convs
        self.aux_convs = nn.ModuleList(
            ConvModule(
                fused,
                out_channels,
                1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=out_act_cfg) for _ in range(num_aux_convs))

    def init_weights(self) -> None:
        """Normal(0, 0.01) on every conv, zero bias (as the original)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                normal_init(module, std=0.01)

    def _coord_feat(self, feat: Tensor) -> Tensor:
        height, width = feat.shape[-2:]
        ys = feat.new_tensor(range(height)) / max(height - 1, 1) * 2 - 1
        xs = feat.new_tensor(range(width)) / max(width - 1, 1) * 2 - 1
        grid_y = ys[:, None].expand(height, width)
        grid_x = xs[None, :].expand(height, width)
        coords = torch.stack([grid_x, grid_y], dim=0)
        return coords[None].expand(feat.size(0), -1, -1, -1)

    def forward(self, inputs: Sequence[Tensor]) -> Union[Tensor, List[Tensor]]:
        """Fuse ``inputs[start_level:end_level+1]`` into stride-of-level-1."""
        outs = []
        for idx, level in enumerate(range(self.start_level,
                                          self.end_level + 1)):
            feat = inputs[level]
            if level == self.cat_coors_level:
                if self.positional_encoding is not None:
                    feat = feat + self.positional_encoding(
                        mask=None, input=feat)
                if self.cat_coors:
                    feat = torch.cat([feat, self._coord_feat(feat)], dim=1)
            outs.append(self.convs_all_levels[idx](feat))
        if self.fuse_by_cat:
            out = torch.cat(outs, dim=1)
        else:
            out = outs[0]
            for other in outs[1:]:
                out = out + other
        results = []
        if self.with_pred:
            results.append(self.conv_pred(out))
        else:
            results.append(out)
        results.extend(conv(out) for conv in self.aux_convs)
        if self.num_aux_convs > 0 or self.return_list:
            return results
        return results[0]

