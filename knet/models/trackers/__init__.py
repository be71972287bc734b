# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Trackers for Video K-Net (VPS online inference)."""
from .quasi_dense_embed_tracker import (QuasiDenseEmbedTracker, TrackResult,
                                        masks_to_track_boxes)

__all__ = ['QuasiDenseEmbedTracker', 'TrackResult', 'masks_to_track_boxes']
