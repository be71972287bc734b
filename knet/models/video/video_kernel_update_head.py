# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net's update stage: the image stage plus kernel linking / fusion.

:class:`VideoKernelUpdateHead` overrides only the two temporal hooks of
:class:`knet.models.layers.KNetKernelUpdateHead` (spec §2.5):

* ``link`` (after the interaction; ``previous_type``) makes the *tracking*
  kernels used by the association embedding. Class scores and masks are
  always predicted from the un-linked kernels.

  - ``'ffn'`` (kernel linking, R-50 configs): ``y = LN(q + MHA(q, p, p))``,
    ``z = LN(FFN(y))`` with ``q`` the updated kernels, ``p`` the previous
    frame's kernels; modules ``attention_previous``,
    ``attention_previous_norm``, ``link_ffn``, ``link_ffn_norm``.
  - ``'update'`` / ``'update_obj'``: ``p`` is first updated by a second
    kernel updator (``attention_previous_update_track``) with the current
    group features (resp. the current updated kernels) as update features,
    then the same cross-attention + LN + FFN + LN with the ``*_track``
    modules.

* ``fuse_previous`` (before the update; ``previous_link``, kernel fusion,
  Swin configs) changes the segmentation kernels themselves:
  ``p' = KernelUpdator(group_feats, p)`` (``'update_dynamic_cov'``, module
  ``attention_previous_update_link``) or ``p' = p`` (``'link_atten'``), then
  ``q0 <- LN(FFN(LN(q0 + MHA(q0, p', p'))))`` with the ``*_link`` modules.

The temporal modules exist only when ``previous`` is not None (the original
configs set ``previous='placeholder'``). Their attribute names are the
original checkpoint keys. The link attentions have 8 heads and no dropout
whatever the stage's ``num_heads`` / ``dropout`` (hard-coded in the
original); the link FFNs use the stage FFN's settings. Without previous
kernels (images, first frame, non-last stages) the stage computes exactly
what :class:`KNetKernelUpdateHead` computes with the same weights.
"""
from inspect import signature
from typing import Any, Optional

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmengine.registry import MODELS
from torch import Tensor

from ..layers.kernel_update_head import KNetKernelUpdateHead

#: heads of every link / fusion attention (hard-coded in the original)
LINK_NUM_HEADS = 8
PREVIOUS_TYPES = (None, 'ffn', 'update', 'update_obj')
PREVIOUS_LINKS = (None, 'update_dynamic_cov', 'link_atten')


def _stage_arg(kwargs: dict, name: str) -> Any:
    """A stage argument as given, else the image stage's default, so the
    link modules are built like the stage's own FFN / updator."""
    if name in kwargs:
        return kwargs[name]
    return signature(KNetKernelUpdateHead.__init__).parameters[name].default


@MODELS.register_module()
class VideoKernelUpdateHead(KNetKernelUpdateHead):
    """K-Net update stage with Video K-Net's kernel linking and fusion.

    Args:
        previous (Any, optional): Any non-None value builds the temporal
            modules selected by ``previous_type`` / ``previous_link``; None
            builds none and the stage ignores previous kernels.
        previous_type (str, optional): Tracking link after the interaction:
            ``'ffn'``, ``'update'``, ``'update_obj'`` or None (tracking
            kernels = updated kernels).
        previous_link (str, optional): Kernel fusion before the update:
            ``'update_dynamic_cov'``, ``'link_atten'`` or None.
        previous_detach (bool): Detach the previous kernels (no gradient
            into the frame that produced them) in link and fusion.
        previous_detach_link (bool): Detach them inside the fusion only.
        **kwargs: :class:`KNetKernelUpdateHead` arguments; the original's
            ``previous_x_feat`` and ``previous_link_detach`` are accepted
            and ignored (unused there too).
    """

    _IGNORED_ARGS = KNetKernelUpdateHead._IGNORED_ARGS + (
        'previous_x_feat', 'previous_link_detach')

    def __init__(self,
                 previous: Optional[object] = None,
                 previous_type: Optional[str] = 'ffn',
                 previous_link: Optional[str] = None,
                 previous_detach: bool = False,
                 previous_detach_link: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if previous_type not in PREVIOUS_TYPES:
            raise ValueError(f'VideoKernelUpdateHead: previous_type must be '
                             f'one of {PREVIOUS_TYPES}, got '
                             f'{previous_type!r}; fix mask_head.'
                             'previous_type in the config')
        if previous_link not in PREVIOUS_LINKS:
            raise ValueError(f'VideoKernelUpdateHead: previous_link must be '
                             f'one of {PREVIOUS_LINKS}, got '
                             f'{previous_link!r}; fix mask_head.'
                             'previous_link in the config')
        self.previous = previous
        self.previous_type = previous_type if previous is not None else None
        self.previous_link = previous_link if previous is not None else None
        self.previous_detach = previous_detach
        self.previous_detach_link = previous_detach_link
        self._ffn_cfg = dict(
            embed_dims=self.in_channels,
            feedforward_channels=_stage_arg(kwargs, 'feedforward_channels'),
            num_fcs=_stage_arg(kwargs, 'num_ffn_fcs'),
            act_cfg=_stage_arg(kwargs, 'ffn_act_cfg'),
            ffn_drop=_stage_arg(kwargs, 'dropout'))
        self._updator_cfg = _stage_arg(kwargs, 'kernel_updator_cfg')

        if self.previous_type == 'ffn':
            self._build_link_modules('')
        elif self.previous_type in ('update', 'update_obj'):
            self.attention_previous_update_track = self._build_updator()
            self._build_link_modules('_track')
        if self.previous_link == 'update_dynamic_cov':
            self.attention_previous_update_link = self._build_updator()
        if self.previous_link is not None:
            self._build_link_modules('_link')

    # ------------------------------------------------------------------
    # module construction
    # ------------------------------------------------------------------
    def _build_updator(self) -> nn.Module:
        """A second kernel updator with the stage updator's config."""
        return MODELS.build(self._updator_cfg)

    def _build_link_modules(self, suffix: str) -> None:
        """Cross-attention + LN + FFN + LN named as in the original.

        ``suffix`` '' gives ``attention_previous``,
        ``attention_previous_norm``, ``link_ffn``, ``link_ffn_norm``;
        '_track' / '_link' are appended to each name.
        """
        kernel_dims = self.in_channels * self.conv_kernel_size**2
        setattr(self, f'attention_previous{suffix}',
                MultiheadAttention(kernel_dims, LINK_NUM_HEADS, 0.0))
        setattr(self, f'attention_previous_norm{suffix}',
                build_norm_layer(dict(type='LN'), kernel_dims)[1])
        setattr(self, f'link_ffn{suffix}', FFN(**self._ffn_cfg))
        setattr(self, f'link_ffn_norm{suffix}',
                build_norm_layer(dict(type='LN'), self.in_channels)[1])

    # ------------------------------------------------------------------
    # temporal steps
    # ------------------------------------------------------------------
    def _attend_previous(self, suffix: str, query: Tensor,
                         previous: Tensor) -> Tensor:
        """``LN(FFN(LN(q + MHA(q, p, p))))`` with the ``suffix`` modules.

        query / previous: (B, N, K*K, C) and (B, M, K*K, C) tokens; returns
        (B, N, K*K, C).
        """
        num_imgs, num_kernels = query.shape[:2]
        # sequence-first layout over the kernels, K*K*C per kernel
        q = query.reshape(num_imgs, num_kernels, -1).permute(1, 0, 2)
        kv = previous.reshape(num_imgs, previous.shape[1],
                              -1).permute(1, 0, 2)
        attention = getattr(self, f'attention_previous{suffix}')
        norm = getattr(self, f'attention_previous_norm{suffix}')
        out = norm(attention(query=q, key=kv, value=kv))  # residual inside
        out = out.permute(1, 0, 2).reshape(num_imgs, num_kernels, -1,
                                           self.in_channels)
        ffn = getattr(self, f'link_ffn{suffix}')
        ffn_norm = getattr(self, f'link_ffn_norm{suffix}')
        return ffn_norm(ffn(out))  # residual inside the FFN

    def _updated_previous(self, updator: nn.Module, update_feats: Tensor,
                          previous_tokens: Tensor) -> Tensor:
        """Previous kernels updated by ``updator`` with ``update_feats``
        ((B, N, C) or (B, N, K*K, C)); (B, N, K*K, C)."""
        num_imgs, num_kernels = previous_tokens.shape[:2]
        updated = updator(update_feats, previous_tokens)
        return updated.reshape(num_imgs, num_kernels, -1, self.in_channels)

    def fuse_previous(self, tokens: Tensor, group_feats: Tensor,
                      previous_tokens: Tensor) -> Tensor:
        """Kernel fusion (``previous_link``): fused stage-input kernels."""
        if self.previous_link is None:
            return tokens
        if self.previous_detach or self.previous_detach_link:
            previous_tokens = previous_tokens.detach()
        if self.previous_link == 'update_dynamic_cov':
            previous_tokens = self._updated_previous(
                self.attention_previous_update_link, group_feats,
                previous_tokens)
        return self._attend_previous('_link', tokens, previous_tokens)

    def link(self, obj_feats: Tensor, previous_tokens: Tensor,
             group_feats: Tensor) -> Tensor:
        """Kernel linking (``previous_type``): tracking kernels only."""
        if self.previous_type is None:
            return obj_feats
        if self.previous_detach:
            previous_tokens = previous_tokens.detach()
        if self.previous_type == 'ffn':
            return self._attend_previous('', obj_feats, previous_tokens)
        update_feats = group_feats if self.previous_type == 'update' \
            else obj_feats
        previous_tokens = self._updated_previous(
            self.attention_previous_update_track, update_feats,
            previous_tokens)
        return self._attend_previous('_track', obj_feats, previous_tokens)
