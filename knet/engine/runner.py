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
        try:
            check(cfg)
        except Exception as err:
            # marks the error as the user's (bad config / data): the tools
            # print its message without a traceback (knet.engine.cli_errors)
            setattr(err, '_knet_startup_check', check.__name__)
            raise


@RUNNERS.register_module()
class KNetRunner(Runner):
    """mmengine's ``Runner`` that runs :data:`STARTUP_CHECKS` first."""

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'KNetRunner':
        cfg = cfg.copy() if isinstance(cfg, Config) else Config(cfg)
        run_startup_checks(cfg)
        return super().from_cfg(cfg)

    def build_visualizer(self, visualizer=None):
        """mmengine's, but each runner gets its own visualizer: configs name
        it ``'visualizer'`` and mmengine returns an existing instance of that
        name, so a second runner in one process (tests, notebooks) would
        draw with the first one's (e.g. a det visualizer for a seg model)."""
        if isinstance(visualizer, dict) and visualizer.get('name'):
            visualizer = dict(visualizer)
            visualizer['name'] = f"{visualizer['name']}_" \
                f'{self._experiment_name}'
        return super().build_visualizer(visualizer)

    def load_or_resume(self) -> None:
        """``--resume`` without a path: resume from the newest readable
        checkpoint (see :mod:`knet.engine.checkpoint_resume`)."""
        if not self._has_loaded and self._resume and self._load_from is None:
            from .checkpoint_resume import find_resume_checkpoint
            found = find_resume_checkpoint(self.work_dir, self.logger)
            if found is None:
                self.logger.info(f'--resume: no checkpoint in {self.work_dir}'
                                 '; training starts from scratch')
                return
            self.logger.info(f'resuming from {found}')
            self._load_from = found
        super().load_or_resume()

    def resume(self, filename: str, *args, **kwargs) -> None:
        """mmengine's ``resume``; errors name the checkpoint file."""
        from knet.utils.checkpoint_compat import (CorruptCheckpointError,
                                                  UnsafeCheckpointError)
        try:
            super().resume(filename, *args, **kwargs)
        except (CorruptCheckpointError, UnsafeCheckpointError,
                FileNotFoundError):
            raise
        except (KeyError, ValueError, RuntimeError, TypeError) as err:
            if str(filename) in str(err):
                raise  # already names the file
            from .checkpoint_resume import resume_error
            raise resume_error(filename, err) from err

    def load_checkpoint(self,
                        filename: str,
                        map_location='cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):
        """mmengine's ``load_checkpoint`` that refuses, in test / val runs,
        a checkpoint that does not fit the model (see
        :mod:`knet.engine.checkpoint_match`); training logs a summary."""
        from mmengine.model import is_model_wrapper
        from mmengine.runner.base_loop import BaseLoop
        from mmengine.runner.checkpoint import (_load_checkpoint,
                                                _load_checkpoint_to_model)

        from .checkpoint_match import (ALLOW_PARTIAL_KEY,
                                       check_checkpoint_matches)
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        training = isinstance(self._train_loop, BaseLoop)
        check_checkpoint_matches(
            model, checkpoint, filename,
            allow_partial=strict is False and (
                training or bool(self.cfg.get(ALLOW_PARTIAL_KEY, False))),
            config=getattr(self.cfg, 'filename', None),
            revise_keys=revise_keys)
        checkpoint = _load_checkpoint_to_model(
            model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint


_CURRENT_FROM_CFG = Runner.__dict__['from_cfg'].__func__
_MMENGINE_FROM_CFG = getattr(_CURRENT_FROM_CFG, '_knet_original',
                             _CURRENT_FROM_CFG)


def _from_cfg_honouring_runner_type(cls, cfg):
    """``Runner.from_cfg`` that builds ``cfg.runner_type`` when it names a
    KNetRunner: mmseg's tools/test.py (``mim test mmseg``) calls
    ``Runner.from_cfg`` directly and would skip K-Net's checks."""
    runner_type = cfg.get('runner_type') if hasattr(cfg, 'get') else None
    if cls is Runner and isinstance(runner_type, str):
        target = RUNNERS.get(runner_type)
        if isinstance(target, type) and issubclass(target, KNetRunner):
            return target.from_cfg(cfg)
    return _MMENGINE_FROM_CFG(cls, cfg)


_from_cfg_honouring_runner_type._knet_original = _MMENGINE_FROM_CFG
Runner.from_cfg = classmethod(_from_cfg_honouring_runner_type)

__all__ = ['KNetRunner', 'STARTUP_CHECKS', 'register_startup_check',
           'run_startup_checks']
