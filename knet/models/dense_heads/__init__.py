# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .conv_kernel_head import ConvKernelHead

__all__ = ['ConvKernelHead']
