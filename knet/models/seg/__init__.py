# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Semantic K-Net for mmseg 1.x; importing registers the heads in mmseg's
MODELS registry."""
from .iterative_decode_head import KNetIterativeDecodeHead
from .kernel_generate_heads import (ASPPKernelHead, FCNKernelHead,
                                    PSPKernelHead, UPerKernelHead)

__all__ = [
    'KNetIterativeDecodeHead', 'FCNKernelHead', 'PSPKernelHead',
    'ASPPKernelHead', 'UPerKernelHead'
]
