# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .cpu_performance import flush_denormals_on_cpu
from .checkpoint_compat import (apply_checkpoint_fixes, atomic_torch_save,
                                load_local_checkpoint)

__all__ = [
    'apply_checkpoint_fixes', 'atomic_torch_save', 'flush_denormals_on_cpu',
    'load_local_checkpoint'
]
