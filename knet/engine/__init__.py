# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .launch import configure_launcher, default_work_dir, enable_amp
from .optim_wrappers import CPUAmpOptimWrapper
from .runner import (KNetRunner, register_startup_check,
                     run_startup_checks)
from .wrappers import CPUDistributedDataParallel

__all__ = [
    'CPUAmpOptimWrapper', 'CPUDistributedDataParallel', 'KNetRunner',
    'register_startup_check', 'run_startup_checks',
    'configure_launcher', 'default_work_dir', 'enable_amp'
]
