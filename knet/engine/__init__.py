# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .launch import configure_launcher, default_work_dir, enable_amp
from .optim_wrappers import CPUAmpOptimWrapper
from .runner import (KNetRunner, register_startup_check,
                     run_startup_checks)
from .wrappers import CPUDistributedDataParallel
# start-up checks: class counts, unused options, torchvision, launcher env
from . import config_checks  # noqa: F401,E402
from .checkpoint_hook import KNetCheckpointHook
from .checkpoint_resume import CheckpointResumeError
from . import dataloader_workers  # noqa: F401  (start-up check)

__all__ = [
    'CPUAmpOptimWrapper', 'CPUDistributedDataParallel', 'KNetRunner',
    'KNetCheckpointHook', 'CheckpointResumeError',
    'register_startup_check', 'run_startup_checks',
    'configure_launcher', 'default_work_dir', 'enable_amp'
]
