# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .cpu_performance import flush_denormals_on_cpu
from .checkpoint_compat import (UNSAFE_LOAD_ENV, CorruptCheckpointError,
                                UnsafeCheckpointError, apply_checkpoint_fixes,
                                atomic_torch_save, enable_unsafe_load,
                                load_local_checkpoint, safe_torch_load)

__all__ = [
    'CorruptCheckpointError', 'UNSAFE_LOAD_ENV', 'UnsafeCheckpointError',
    'apply_checkpoint_fixes', 'atomic_torch_save', 'enable_unsafe_load',
    'flush_denormals_on_cpu', 'load_local_checkpoint', 'safe_torch_load'
]
