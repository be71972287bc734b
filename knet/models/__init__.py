# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net models; importing this registers them in the mmdet / mmseg /
mmengine registries."""
from .data_preprocessors import *  # noqa: F401,F403
from .dense_heads import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .roi_heads import *  # noqa: F401,F403
from .seg import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403
from .trackers import *  # noqa: F401,F403
from .video import *  # noqa: F401,F403
