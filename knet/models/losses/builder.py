# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Build mmdet losses by name whatever the caller's default scope."""
from typing import Optional

import torch.nn as nn
from mmdet.registry import MODELS as DET_MODELS


def build_det_loss(cfg: Optional[dict]) -> Optional[nn.Module]:
    """Build an mmdet loss (None for an empty config).

    A bare type name gets the ``mmdet.`` prefix: after an mmseg model was
    built, mmseg may be the default scope, and mmseg registers losses of the
    same names (``CrossEntropyLoss``, ``DiceLoss``) with other arguments and
    semantics.
    """
    if not cfg:
        return None
    cfg = dict(cfg)
    if isinstance(cfg['type'], str) and '.' not in cfg['type']:
        cfg['type'] = 'mmdet.' + cfg['type']
    return DET_MODELS.build(cfg)
