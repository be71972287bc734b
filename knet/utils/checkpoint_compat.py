# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Checkpoint I/O fixes for mmengine 0.10.7 on torch >= 2.6.

* torch >= 2.6 loads with ``weights_only=True`` by default; runner
  checkpoints (message hub, numpy scalars) then fail to load, so ``--resume``
  and ``load_from`` break. mmengine fixed this after 0.10.7 (commit
  151a87ab, unreleased) by passing ``weights_only=False``; this module
  registers the same local-file loader.
* mmengine writes checkpoints in place, so a crash mid-write leaves a
  truncated ``.pth``. Runner checkpoints are written to a temporary file in
  the same folder and renamed into place.

Both are applied once, on ``import knet``.
"""
import os
import os.path as osp
import tempfile

import torch
from mmengine.runner import checkpoint as mme_checkpoint

_APPLIED = False


def load_local_checkpoint(filename: str, map_location=None, logger=None):
    """``load_from_local`` of mmengine, trusting local files as torch < 2.6
    did (checkpoints are pickles; only load files you trust)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to ``path`` through a temporary file and a rename."""
    path = osp.abspath(osp.expanduser(path))
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _save_checkpoint(checkpoint, filename, file_client_args=None,
                     backend_args=None):
    """mmengine's ``save_checkpoint``, atomic for local paths."""
    if (file_client_args is None and backend_args is None
            and '://' not in str(filename)):
        atomic_torch_save(checkpoint, str(filename))
        return
    return _ORIGINAL_SAVE(checkpoint, filename, file_client_args,
                          backend_args)


_ORIGINAL_SAVE = mme_checkpoint.save_checkpoint


def apply_checkpoint_fixes() -> None:
    """Register the loader and the atomic saver (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    mme_checkpoint.CheckpointLoader.register_scheme(
        prefixes='', force=True)(load_local_checkpoint)
    mme_checkpoint.save_checkpoint = _save_checkpoint
    from mmengine.runner import runner as mme_runner
    mme_runner.save_checkpoint = _save_checkpoint
    _APPLIED = True


__all__ = ['apply_checkpoint_fixes', 'atomic_torch_save',
           'load_local_checkpoint']
