# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Writers turning rendered scenes into real dataset formats."""
from .ade import write_ade
from .coco import write_coco
from .step import write_step
from .vspw import write_vspw
from .ytvis import write_ytvis

__all__ = [
    'write_ade', 'write_coco', 'write_step', 'write_vspw', 'write_ytvis'
]
