# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .launch import configure_launcher, default_work_dir, enable_amp
from .optim_wrappers import CPUAmpOptimWrapper
from .wrappers import CPUDistributedDataParallel

__all__ = [
    'CPUAmpOptimWrapper', 'CPUDistributedDataParallel',
    'configure_launcher', 'default_work_dir', 'enable_amp'
]
