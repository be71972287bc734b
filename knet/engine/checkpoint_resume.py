# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Resuming K-Net training: pick a checkpoint that is really there.

mmengine 0.10.7 resumes from whatever ``last_checkpoint`` names, even a
file that no longer exists (``FileNotFoundError``), and errors during the
resume do not say which file was at fault. :func:`find_resume_checkpoint`
falls back to the newest readable ``epoch_N.pth`` / ``iter_N.pth`` and says
so; :func:`resume_error` names the file. The start-up check
:func:`use_knet_checkpoint_hook` makes every K-Net config save with
:class:`~knet.engine.checkpoint_hook.KNetCheckpointHook`.
"""
import glob
import os.path as osp
import re
from typing import List, Optional, Tuple

from mmengine.config import Config

from knet.utils.checkpoint_compat import (CorruptCheckpointError,
                                          check_checkpoint_file)
from .runner import register_startup_check

_STEP_RE = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


class CheckpointResumeError(RuntimeError):
    """A checkpoint cannot be resumed by this run (names the file)."""


def _is_readable(path: str) -> bool:
    try:
        check_checkpoint_file(path)
    except (OSError, CorruptCheckpointError):
        return False
    return True


def _step_checkpoints(folders: List[str]) -> List[Tuple[int, float, str]]:
    """(step, mtime, path) of every ``epoch_N.pth`` / ``iter_N.pth``."""
    found = {}
    for folder in folders:
        for path in glob.glob(osp.join(folder, '*.pth')):
            match = _STEP_RE.match(osp.basename(path))
            if match:
                found[osp.realpath(path)] = (int(match.group(2)),
                                             osp.getmtime(path), path)
    return sorted(found.values(), reverse=True)


def find_resume_checkpoint(work_dir: str,
                           logger=None) -> Optional[str]:
    """The checkpoint ``--resume`` (no path) should continue from.

    ``last_checkpoint`` when it names a readable file; otherwise the newest
    readable ``epoch_N.pth`` / ``iter_N.pth`` next to it or in ``work_dir``
    (logged as a warning); None when there is none.
    """
    def warn(msg):
        if logger is not None:
            logger.warning(msg)

    record = osp.join(work_dir, 'last_checkpoint')
    folders = [work_dir]
    named = None
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip()
        if named and '://' in named:
            return named  # remote: mmengine's loaders decide
        if named and _is_readable(named):
            return named
        if named:
            folders.insert(0, osp.dirname(named))
    for _, _, path in _step_checkpoints(folders):
        if _is_readable(path):
            if named:
                warn(f'{record} names {named}, which is missing or not a '
                     f'readable checkpoint; resuming from {path}, the newest '
                     'readable checkpoint, instead')
            else:
                warn(f'no {record}; resuming from {path}, the newest '
                     'readable checkpoint in the folder')
            return path
    if named:
        warn(f'{record} names {named}, which is missing or not a readable '
             'checkpoint, and no other checkpoint was found')
    return None


def resume_error(filename: str, err: BaseException) -> CheckpointResumeError:
    """An error for a checkpoint that does not fit the model / optimizer."""
    if isinstance(err, KeyError):
        why = (f'it has no {err} entry, so it is not a training checkpoint '
               'of mmengine (use it with load_from instead of --resume)')
    else:
        why = (f'its model or optimizer state does not fit this config, so '
               f'it probably belongs to another model ({type(err).__name__}: '
               f'{str(err).splitlines()[0] if str(err) else ""})')
    return CheckpointResumeError(
        f'cannot resume from {filename}: {why}. Pass the checkpoint of this '
        'config to --resume, or another --work-dir to start from scratch.')


@register_startup_check
def use_knet_checkpoint_hook(cfg: Config) -> None:
    """Save with ``KNetCheckpointHook`` (kill-safe) where a config names
    mmengine's ``CheckpointHook``."""
    hooks = cfg.get('default_hooks') or {}
    ckpt = hooks.get('checkpoint')
    if isinstance(ckpt, dict) and ckpt.get('type') in (
            'CheckpointHook', 'mmengine.CheckpointHook'):
        ckpt['type'] = 'KNetCheckpointHook'
    for hook in cfg.get('custom_hooks') or []:
        if isinstance(hook, dict) and hook.get('type') in (
                'CheckpointHook', 'mmengine.CheckpointHook'):
            hook['type'] = 'KNetCheckpointHook'


__all__ = ['CheckpointResumeError', 'find_resume_checkpoint', 'resume_error',
           'use_knet_checkpoint_hook']
