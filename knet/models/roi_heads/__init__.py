# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .kernel_iter_head import KernelIterHead

__all__ = ['KernelIterHead']
