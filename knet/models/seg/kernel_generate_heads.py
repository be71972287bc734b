# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Names of the original K-Net kernel generate heads, as thin aliases.

The original repository subclassed mmseg's FCN / PSP / ASPP / UPer heads so
that ``forward`` also returned features and kernels. Here
:class:`~knet.models.seg.KNetIterativeDecodeHead` reads those through the
standard ``_forward_feature`` / ``cls_seg`` / ``conv_seg`` of any mmseg head,
so the aliases only keep original-style configs (``type='FCNKernelHead'``
...) building. They add nothing to their parents (same parameters, same
state-dict keys, ``forward`` returns logits only).
"""
from mmseg.models.decode_heads import ASPPHead, FCNHead, PSPHead, UPerHead
from mmseg.registry import MODELS


def _register_alias(cls: type) -> type:
    """Register ``cls`` in mmseg's MODELS unless the name is already used
    there (a future mmseg may ship these names itself)."""
    if cls.__name__ not in MODELS.module_dict:
        MODELS.register_module(module=cls)
    return cls


@_register_alias
class FCNKernelHead(FCNHead):
    """``FCNHead`` under its original K-Net name."""


@_register_alias
class PSPKernelHead(PSPHead):
    """``PSPHead`` under its original K-Net name."""


@_register_alias
class ASPPKernelHead(ASPPHead):
    """``ASPPHead`` under its original K-Net name."""


@_register_alias
class UPerKernelHead(UPerHead):
    """``UPerHead`` under its original K-Net name."""
