# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Import ``knet.evaluation`` submodules without the heavy package imports.

The metric code the ``tools/eval_*.py`` scripts need is numpy-only, but
``import knet`` pulls in torch, mmdet models and the mmengine metrics
(several seconds). When ``knet`` is not imported yet, bare namespace
stand-ins for ``knet`` and ``knet.evaluation`` are registered so that only
the requested submodules load. Use it only in processes that never build
models.
"""
import importlib
import os
import sys
import types
from types import ModuleType

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(module: str) -> ModuleType:
    """Import ``knet.evaluation.<module>`` (e.g. ``'cli'``) lightly."""
    if 'knet' not in sys.modules:
        pkg = os.path.join(REPO_ROOT, 'knet')
        for name, path in (('knet', pkg),
                           ('knet.evaluation', os.path.join(pkg,
                                                            'evaluation'))):
            stub = types.ModuleType(name)
            stub.__path__ = [path]
            stub.__package__ = name
            sys.modules[name] = stub
    return importlib.import_module(f'knet.evaluation.{module}')
