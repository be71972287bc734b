# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""mmengine metrics registered in mmdet's ``METRICS`` registry."""
from .video_panoptic_metric import STQMetric, VPQMetric
from .ytvis_metric import KNetYouTubeVISMetric, KNetYTVISeval

__all__ = ['STQMetric', 'VPQMetric', 'KNetYouTubeVISMetric', 'KNetYTVISeval']
