# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
from .kernel_update_head import (KernelStageOutput, KNetKernelUpdateHead,
                                 dynamic_conv)
from .kernel_updator import KNetKernelUpdator
from .semantic_fpn_wrapper import SemanticFPNWrapper
from .stage_loop import KernelStageLoopMixin, KernelStagesOutput, run_stage

__all__ = [
    'KNetKernelUpdateHead', 'KNetKernelUpdator', 'SemanticFPNWrapper',
    'dynamic_conv', 'KernelStageOutput', 'KernelStageLoopMixin',
    'KernelStagesOutput', 'run_stage'
]
