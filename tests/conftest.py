# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Shared pytest setup: deterministic seeds, CPU threads, the repo root."""
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def repo_root() -> str:
    return REPO_ROOT
