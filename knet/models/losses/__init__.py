# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .builder import build_det_loss
from .kernel_losses import (RANK_IGNORE_INDEX, dense_seg_targets,
                            image_kernel_targets, kernel_mask_losses,
                            last_writer_index, rank_targets)
from .track_losses import KNetL2Loss

__all__ = [
    'RANK_IGNORE_INDEX', 'build_det_loss', 'dense_seg_targets',
    'image_kernel_targets',
    'kernel_mask_losses', 'last_writer_index', 'rank_targets', 'KNetL2Loss'
]
