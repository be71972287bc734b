# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""DataLoader workers that die with the training process.

After ``kill -9`` of a training process its DataLoader workers
(``persistent_workers=True``) kept running as orphans. Every K-Net config
runs :class:`~knet.engine.runner.KNetRunner`, whose start-up check
:func:`wire_worker_init` gives each dataloader with workers the
``worker_init_fn`` :func:`knet_worker_init_fn`: it asks the kernel to send
SIGKILL to the worker when its parent dies (Linux ``PR_SET_PDEATHSIG``) and
then seeds exactly like mmengine's default ``worker_init_fn``.
"""
import ctypes
import multiprocessing
import os
import random
import signal
import sys
from typing import Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import worker_init_fn as mmengine_worker_init_fn
from mmengine.dist import get_rank
from mmengine.registry import FUNCTIONS

from .runner import register_startup_check

_PR_SET_PDEATHSIG = 1
LOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def die_with_parent() -> bool:
    """Make the kernel SIGKILL this process when its parent exits (Linux).

    Returns whether it was set; exits at once if the parent is already gone.
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)  # the parent died before prctl took effect
    return True


@FUNCTIONS.register_module()
def knet_worker_init_fn(worker_id: int,
                        num_workers: int,
                        seed: Optional[int] = None,
                        diff_rank_seed: bool = False,
                        disable_subprocess_warning: bool = False) -> None:
    """Worker start: die with the parent, then seed like mmengine does."""
    die_with_parent()
    rank = get_rank()
    if seed is not None:
        mmengine_worker_init_fn(
            worker_id,
            num_workers=num_workers,
            rank=rank,
            seed=seed + rank if diff_rank_seed else seed,
            disable_subprocess_warning=disable_subprocess_warning)
        return
    # no fixed seed: torch seeded this worker already; derive the others
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


@register_startup_check
def wire_worker_init(cfg: Config) -> None:
    """Give every dataloader with workers :func:`knet_worker_init_fn`."""
    randomness = cfg.get('randomness') or {}
    for key in LOADER_KEYS:
        loader = cfg.get(key)
        if not isinstance(loader, dict) or 'worker_init_fn' in loader \
                or not loader.get('num_workers'):
            continue
        disable_warning = loader.pop('disable_subprocess_warning', False)
        loader['worker_init_fn'] = dict(
            type='knet_worker_init_fn',
            num_workers=loader['num_workers'],
            seed=randomness.get('seed'),
            diff_rank_seed=bool(randomness.get('diff_rank_seed', False)),
            disable_subprocess_warning=disable_warning)


__all__ = ['die_with_parent', 'knet_worker_init_fn', 'wire_worker_init']
