# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Data preprocessors of the video models (registered in mmdet's MODELS)."""
from .video_seg_data_preprocessor import VideoSegDataPreprocessor

__all__ = ['VideoSegDataPreprocessor']
