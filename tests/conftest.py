# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Shared pytest setup: deterministic seeds, CPU threads, the repo root.

Environment: ``KNET_TEST_THREADS=N`` runs every test with N intra-op threads
(default min(2, CPUs); tests that pick 1 for speed follow it too) and
``KNET_TEST_DETERMINISTIC=1`` turns on torch's deterministic algorithms.
"""
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _env_int(name: str, default: int) -> int:
    """A positive integer from the environment variable ``name``."""
    value = os.environ.get(name, '').strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f'environment variable {name}={value!r}: expected '
                         'a positive integer (e.g. 1 or 2); unset it for '
                         'the default')
    return int(value)


#: intra-op threads of the tests: KNET_TEST_THREADS (set 1 or 2 to check
#: that results do not depend on the thread count), else min(2, CPUs)
TEST_THREADS = _env_int('KNET_TEST_THREADS',
                        max(1, min(2, os.cpu_count() or 1)))
torch.set_num_threads(TEST_THREADS)
# KNET_TEST_DETERMINISTIC=1: torch's deterministic algorithms (an error for
# any op without a deterministic implementation)
if os.environ.get('KNET_TEST_DETERMINISTIC', '') not in ('', '0'):
    torch.use_deterministic_algorithms(True)


@pytest.fixture
def single_thread():
    """One intra-op thread (much faster than spinning threads when the CPU
    is shared with other jobs), unless KNET_TEST_THREADS asks for more."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(_env_int('KNET_TEST_THREADS', 1))
    yield
    torch.set_num_threads(num_threads)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def repo_root() -> str:
    return REPO_ROOT
