# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Mixed precision on CPU: bf16 autocast (no loss scaling needed).

mmengine's ``AmpOptimWrapper`` refuses to run without an accelerator; on
CUDA the project uses it as is (fp16 with a dynamic loss scaler).
"""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Optimizer wrapper whose forward runs under CPU bf16 autocast."""

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
