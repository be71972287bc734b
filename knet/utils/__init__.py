# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .checkpoint_compat import (apply_checkpoint_fixes, atomic_torch_save,
                                load_local_checkpoint)

__all__ = [
    'apply_checkpoint_fixes', 'atomic_torch_save', 'load_local_checkpoint'
]
