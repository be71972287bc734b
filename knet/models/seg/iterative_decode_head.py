# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Semantic K-Net decode head for mmseg 1.x (``EncoderDecoder``).

A standard mmseg decode head (FCN / PSP / ASPP / UPer ...) generates the
initial kernels: its ``conv_seg.weight`` (bias dropped) is one kernel per
class and its logits are the stage-0 masks. ``num_stages`` shared
:class:`~knet.models.layers.KNetKernelUpdateHead` stages (soft softmax
pooling, no classifier) then refine kernels and logits. Every stage output is
trained with the generate head's own loss; inference uses the last one.

State-dict keys are those of mmseg's ``IterativeDecodeHead`` and of the
original K-Net (``kernel_generate_head.*``, ``kernel_update_head.<i>.*``), so
their checkpoints load unchanged.
"""
import copy
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from ..layers.stage_loop import KernelStageLoopMixin, KernelStagesOutput

# Stage configs of this type get the semantic settings unless set explicitly.
_SHARED_STAGE_TYPES = ('KNetKernelUpdateHead', )
_SEMANTIC_STAGE_DEFAULTS = dict(mask_pooling='softmax', num_cls_fcs=0)

# ``BaseDecodeHead.__init__`` arguments that may reach this head through a
# merged base config. They are defaults for the generate head, which owns
# them (the values in ``kernel_generate_head`` win).
_DECODE_HEAD_ARGS = ('in_channels', 'channels', 'num_classes', 'out_channels',
                     'threshold', 'dropout_ratio', 'conv_cfg', 'norm_cfg',
                     'act_cfg', 'in_index', 'input_transform', 'loss_decode',
                     'ignore_index', 'sampler', 'align_corners')


def _delegate(name: str, doc: str) -> property:
    """Read-only attribute forwarded to ``kernel_generate_head``."""
    return property(lambda self: getattr(self.kernel_generate_head, name),
                    doc=doc)


@MODELS.register_module()
class KNetIterativeDecodeHead(KernelStageLoopMixin, BaseDecodeHead):
    """K-Net semantic decode head: a kernel generate head + update stages.

    Drop-in replacement for mmseg's ``IterativeDecodeHead`` (same submodule
    names, outputs and loss keys ``{loss}.s{i}``), built on the kernel-update
    core and the stage loop
    (:meth:`~knet.models.layers.KernelStageLoopMixin.run_stages`) shared
    with the det / video heads; a video semantic head passes the previous
    frame's kernels to ``run_stages``.

    ``BaseDecodeHead.__init__`` is deliberately not run: this head owns no
    ``conv_seg``, loss or sampler; the decode-head attributes that mmseg reads
    (``num_classes``, ``out_channels``, ``align_corners``, ``threshold``,
    ``ignore_index``, ``loss_decode``, ...) are read-only views of the
    generate head, so they can never be missing or stale (mmseg issue #2325).
    Decode-head arguments passed at this level (e.g. left over from a merged
    base config, mmseg issue #3700) fill the generate head's missing ones.

    Args:
        num_stages (int): Number of kernel update stages. Defaults to 3.
        kernel_generate_head (dict): Config of an mmseg decode head with
            ``_forward_feature`` and ``cls_seg`` (FCNHead, PSPHead,
            ASPPHead, UPerHead, ...).
        kernel_update_head (dict | list[dict]): Stage config(s); one dict is
            used for every stage. ``KNetKernelUpdateHead`` stages default to
            ``mask_pooling='softmax'`` and ``num_cls_fcs=0``.
        init_cfg (dict | list[dict], optional): Initialization config.
        **kwargs: ``BaseDecodeHead`` arguments (see above).
    """

    num_classes = _delegate('num_classes', 'Number of classes.')
    out_channels = _delegate('out_channels', 'Output channels (logits).')
    align_corners = _delegate('align_corners', 'Resize align_corners.')
    ignore_index = _delegate('ignore_index', 'Label ignored by the loss.')
    threshold = _delegate('threshold', 'Binary segmentation threshold.')
    input_transform = _delegate('input_transform', 'Input selection.')
    in_index = _delegate('in_index', 'Indices of the used inputs.')
    in_channels = _delegate('in_channels', 'Channels of the used inputs.')
    channels = _delegate('channels', 'Channels of the kernels / features.')
    loss_decode = _delegate('loss_decode', 'Loss of every stage.')
    sampler = _delegate('sampler', 'Pixel sampler of the loss.')

    def __init__(self,
                 num_stages: int = 3,
                 kernel_generate_head: Optional[ConfigType] = None,
                 kernel_update_head: Union[ConfigType,
                                           Sequence[ConfigType]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **kwargs) -> None:
        BaseModule.__init__(self, init_cfg=init_cfg)
        if kernel_generate_head is None or kernel_update_head is None:
            raise TypeError(f'{type(self).__name__} needs both '
                            '`kernel_generate_head` and `kernel_update_head`')
        unknown = sorted(set(kwargs) - set(_DECODE_HEAD_ARGS))
        if unknown:
            raise TypeError(f'{type(self).__name__} got unexpected arguments '
                            f'{unknown}; only `num_stages`, '
                            '`kernel_generate_head`, `kernel_update_head`, '
                            '`init_cfg` and BaseDecodeHead arguments (passed '
                            'on to the generate head) are accepted')

        generate_cfg = copy.deepcopy(dict(kernel_generate_head))
        for key, value in kwargs.items():
            if key not in generate_cfg:
                generate_cfg[key] = value
            elif key == 'num_classes' and generate_cfg[key] != value:
                print_log(
                    f'{type(self).__name__}: num_classes={value} is ignored, '
                    'the kernel generate head sets num_classes='
                    f'{generate_cfg[key]}',
                    logger='current',
                    level=logging.WARNING)
        self.kernel_generate_head = MODELS.build(generate_cfg)

        if isinstance(kernel_update_head, dict):
            kernel_update_head = [kernel_update_head] * num_stages
        if len(kernel_update_head) != num_stages:
            raise ValueError(f'num_stages={num_stages} but '
                             f'{len(kernel_update_head)} kernel_update_head '
                             'configs were given')
        self.num_stages = num_stages
        self.kernel_update_head = nn.ModuleList()
        for stage_cfg in kernel_update_head:
            stage_cfg = copy.deepcopy(dict(stage_cfg))
            if stage_cfg.get('type') in _SHARED_STAGE_TYPES:
                for key, value in _SEMANTIC_STAGE_DEFAULTS.items():
                    stage_cfg.setdefault(key, value)
            self.kernel_update_head.append(MODELS.build(stage_cfg))

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Stage-0 logits: the generate head's dropout + ``conv_seg``."""
        return self.kernel_generate_head.cls_seg(feat)

    def stage_modules(self) -> nn.ModuleList:
        """The update stages, in order (``KernelStageLoopMixin`` hook)."""
        return self.kernel_update_head

    def run_generate_head(self, inputs: Sequence[Tensor]
                          ) -> Tuple[Tensor, Tensor, Tensor]:
        """Features, one kernel per class and the stage-0 logits.

        Returns:
            tuple: feats (B, C, h, w), kernels (B, num_classes, C, 1, 1)
            (``conv_seg.weight``, no bias) and logits (B, num_classes, h, w).
        """
        head = self.kernel_generate_head
        feats = head._forward_feature(inputs)
        seg_logits = head.cls_seg(feats)
        kernels = head.conv_seg.weight.clone()
        kernels = kernels[None].expand(feats.size(0), *kernels.shape)
        return feats, kernels, seg_logits

    def forward_stages(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        """Logits of the generate head and of every update stage.

        Args:
            inputs (Sequence[Tensor]): Multi-level backbone / neck features.

        Returns:
            list[Tensor]: ``num_stages + 1`` maps of shape
            (B, num_classes, h, w) at the generate head's feature stride.
        """
        return self.forward_with_stages(inputs)[0]

    def forward_with_stages(self,
                            inputs: Sequence[Tensor],
                            previous_kernels: Optional[Tensor] = None
                            ) -> Tuple[List[Tensor], KernelStagesOutput]:
        """:meth:`forward_stages` plus the stage outputs (per-stage class
        kernels for a video head's next frame).

        Args:
            inputs (Sequence[Tensor]): Multi-level backbone / neck features.
            previous_kernels (Tensor, optional): (B, num_classes, C, 1, 1)
                kernels of the previous frame, given to the last stage.

        Returns:
            tuple: the ``num_stages + 1`` stage logits and the
            :class:`~knet.models.layers.KernelStagesOutput`.
        """
        feats, kernels, seg_logits = self.run_generate_head(inputs)
        outs = self.run_stages(
            feats, kernels, seg_logits, previous_kernels=previous_kernels)
        return [seg_logits] + outs.mask_preds, outs

    def forward(self, inputs: Sequence[Tensor]) -> Union[Tensor, List[Tensor]]:
        """All stage logits in training mode, the last stage's otherwise
        (as mmseg's ``IterativeDecodeHead``)."""
        stage_logits = self.forward_stages(inputs)
        return stage_logits if self.training else stage_logits[-1]

    def loss(self, inputs: Tuple[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> Dict[str, Tensor]:
        """Losses of every stage (also in eval mode, e.g. validation loss)."""
        return self.loss_by_feat(
            self.forward_stages(inputs), batch_data_samples)

    def predict(self, inputs: Tuple[Tensor], batch_img_metas: List[dict],
                test_cfg: ConfigType) -> Tensor:
        """Last-stage logits resized to the (padded) input size."""
        return self.predict_by_feat(
            self.forward_stages(inputs)[-1], batch_img_metas)

    def loss_by_feat(self, seg_logits: Union[Tensor, Sequence[Tensor]],
                     batch_data_samples: SampleList,
                     **kwargs) -> Dict[str, Tensor]:
        """Apply the generate head's loss to every stage's logits.

        Args:
            seg_logits (Tensor | Sequence[Tensor]): Stage logits, stage 0
                (generate head) first.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``{name}.s{i}`` for every loss / accuracy
            ``name`` of the generate head (``loss_ce.s0``, ``acc_seg.s0``,
            ...), all stages weighted equally.
        """
        if isinstance(seg_logits, Tensor):
            seg_logits = [seg_logits]
        losses = dict()
        for i, logits in enumerate(seg_logits):
            stage_losses = self.kernel_generate_head.loss_by_feat(
                logits, batch_data_samples)
            for name, value in stage_losses.items():
                losses[f'{name}.s{i}'] = value
        return losses

    def predict_by_feat(self, seg_logits: Union[Tensor, Sequence[Tensor]],
                        batch_img_metas: List[dict]) -> Tensor:
        """Resize the (last stage's) logits like the generate head does."""
        if not isinstance(seg_logits, Tensor):
            seg_logits = seg_logits[-1]
        return self.kernel_generate_head.predict_by_feat(
            seg_logits, batch_img_metas)
