# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net for OpenMMLab 2.x.

``import knet`` (or ``custom_imports=dict(imports=['knet'])`` in a config)
registers every K-Net module in the mmdet / mmseg registries and applies
the checkpoint I/O fixes of :mod:`knet.utils.checkpoint_compat`; on
CPU-only machines it flushes denormals (:mod:`knet.utils.cpu_performance`).
"""
from .utils import apply_checkpoint_fixes, flush_denormals_on_cpu
from .version import __version__

apply_checkpoint_fixes()
flush_denormals_on_cpu()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               visualization)

__all__ = [
    '__version__', 'datasets', 'engine', 'evaluation', 'models',
    'visualization'
]
