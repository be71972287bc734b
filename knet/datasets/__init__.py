# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net datasets: :mod:`knet.datasets.synthetic` makes the built-in data;
:mod:`knet.datasets.data_checks` is the start-up data check of every run
(synthetic data generated when missing, real data checked up front)."""
from . import data_checks  # noqa: F401  (registers the start-up check)
from .data_checks import AnnotationFileError, DataCheckError, MissingDataError
from .kitti_step import KITTISTEPDataset, STEPLayoutError  # noqa: F401
from . import step_pairs  # noqa: F401  (registers the pair transforms)
from .cityscapes_step import CityscapesSTEPDataset  # noqa: F401
from . import step_loading  # noqa: F401  (registers the STEP loaders)
from . import video_packing  # noqa: F401  (registers PackVideoSegInputs)
from .label_maps import ModelLabelMap  # noqa: F401
from .vipseg import VIPSegDataset  # noqa: F401  (+ its loader)

__all__ = [
    'AnnotationFileError', 'DataCheckError', 'MissingDataError', 'data_checks'
]
