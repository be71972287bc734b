# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .local_visualizer import KNetDetLocalVisualizer

__all__ = ['KNetDetLocalVisualizer']
