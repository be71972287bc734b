# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""``KNetRunner``: mmengine's Runner plus K-Net's start-up checks.

Every K-Net config sets ``runner_type = 'KNetRunner'``, so ``tools/train.py``,
``tools/test.py``, ``mim train/test`` and the dist/slurm launchers all get
the same behaviour: data present (or generated, for the synthetic data),
class counts that agree with the dataset, unused K-Net options reported,
checkpoints that load completely or stop.

Each check is a function ``check(cfg) -> None`` in the module that owns the
concern; :data:`STARTUP_CHECKS` lists them in the order they run. A check
raises with a message that names the file or config key, or logs.
"""
from typing import Callable, List

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

# check functions, run in order by ``KNetRunner.from_cfg``; modules
# append to this list at import time through ``register_startup_check``.
STARTUP_CHECKS: List[Callable[[Config], None]] = []


def register_startup_check(fn: Callable[[Config], None]
                           ) -> Callable[[Config], None]:
    """Decorator: run ``fn(cfg)`` before every KNetRunner is built."""
    if fn not in STARTUP_CHECKS:
        STARTUP_CHECKS.append(fn)
    return fn


def run_startup_checks(cfg: Config) -> None:
    """Run every registered start-up check on ``cfg`` (in order)."""
    for check in STARTUP_CHECKS:
        check(cfg)


@RUNNERS.register_module()
class KNetRunner(Runner):
    """mmengine's ``Runner`` that runs :data:`STARTUP_CHECKS` first."""

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'KNetRunner':
        cfg = cfg.copy() if isinstance(cfg, Config) else Config(cfg)
        run_startup_checks(cfg)
        return super().from_cfg(cfg)


__all__ = ['KNetRunner', 'STARTUP_CHECKS', 'register_startup_check',
           'run_startup_checks']
