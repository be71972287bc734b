# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .hooks import (KNetDetVisualizationHook, KNetSegVisualizationHook,
                    route_show_dir)
from .local_visualizer import KNetDetLocalVisualizer

__all__ = [
    'KNetDetLocalVisualizer', 'KNetDetVisualizationHook',
    'KNetSegVisualizationHook', 'route_show_dir'
]
