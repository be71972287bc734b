# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""A DDP wrapper for CPU processes (mmengine always passes ``device_ids``,
which DDP rejects for CPU modules)."""
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for CPU modules (gloo backend)."""

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        super().__init__(module=module, device_ids=None, **kwargs)
