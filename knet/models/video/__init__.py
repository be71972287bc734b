# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net (VPS): temporal update stage, association embedding head."""
from .track_head import QuasiDenseMaskEmbedHead
from .video_kernel_update_head import VideoKernelUpdateHead
from .video_knet import VideoKNet

__all__ = ['QuasiDenseMaskEmbedHead', 'VideoKernelUpdateHead', 'VideoKNet']
