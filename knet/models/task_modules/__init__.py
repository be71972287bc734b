# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .mask_hungarian_assigner import MaskHungarianAssigner
from .match_costs import KNetDiceCost, KNetMaskCost

__all__ = ['KNetDiceCost', 'KNetMaskCost', 'MaskHungarianAssigner']
