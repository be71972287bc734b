# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Checkpoint I/O for mmengine 0.10.7 on torch >= 2.6: safe and kill-safe.

* Loading: mmengine 0.10.7 calls ``torch.load`` with torch's default, which
  is ``weights_only=True`` since torch 2.6, and runner checkpoints (message
  hub, numpy scalars) then fail to load. K-Net registers a local-file loader
  that keeps torch's safe unpickler and allows exactly the types that
  mmengine / mmdet / mmseg checkpoints and resume states contain
  (:func:`checkpoint_safe_globals`), through the ``safe_globals`` context
  manager, so nothing changes for other ``torch.load`` calls in the process.
  A file that needs any other type stops with :class:`UnsafeCheckpointError`
  naming it; ``KNET_UNSAFE_LOAD=1`` (``--unsafe-load`` on the tools) or
  ``unsafe=True`` loads it with full pickle, with a warning.
* Saving: checkpoints are written to a hidden temporary file in the same
  folder and renamed into place, with the file mode the umask gives any
  other output, so a crash never leaves a truncated ``.pth``.

Both are applied once, on ``import knet``.
"""
import os
import os.path as osp
import pickle
import re
import tempfile
import warnings
import zipfile
from typing import Any, Callable, List, Optional, Tuple, Union

import torch
from mmengine.runner import checkpoint as mme_checkpoint

#: environment variable that opts in to full-pickle loading (``=1``)
UNSAFE_LOAD_ENV = 'KNET_UNSAFE_LOAD'

_APPLIED = False
_SAFE_GLOBALS: Optional[list] = None


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs a type outside K-Net's allow-list to load."""


class CorruptCheckpointError(RuntimeError):
    """A file is empty, truncated or not a PyTorch checkpoint."""


def unsafe_load_enabled() -> bool:
    """Whether ``KNET_UNSAFE_LOAD`` opts in to full-pickle loading."""
    return os.environ.get(UNSAFE_LOAD_ENV, '').strip().lower() in (
        '1', 'true', 'yes', 'on')


def enable_unsafe_load() -> None:
    """Opt in to full-pickle loading for this process and its children
    (``--unsafe-load``; every rank of a distributed run parses it)."""
    os.environ[UNSAFE_LOAD_ENV] = '1'


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """numpy arrays, scalars and dtypes as pickled by numpy 1.x and 2.x."""
    import numpy as np
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    out: List[Union[Callable, Tuple[Callable, str]]] = [np.dtype, np.ndarray]
    for fn in (multiarray.scalar, multiarray._reconstruct):
        out.append(fn)
        for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            out.append((fn, f'{mod}.{fn.__name__}'))
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        out += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
            and isinstance(getattr(dtypes, name), type)
        ]
    return out


def _history_buffer_method(obj: Any, name: str) -> Callable:
    """``getattr`` as a pickle needs it for a ``HistoryBuffer``: only its
    public statistics methods (``min``, ``mean``, ...), nothing else."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) \
            and not name.startswith('_') and name in vars(HistoryBuffer) \
            and callable(vars(HistoryBuffer)[name]):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, '
        f'{name!r}) is not allowed in a checkpoint')


def checkpoint_safe_globals() -> list:
    """The types runner checkpoints of mmengine / mmdet / mmseg contain.

    Found by saving and loading real Runner checkpoints (iteration and
    epoch based, with optimizer, schedulers and AMP loss scaler state):
    numpy scalars, arrays and dtypes (message hub, seeds, metrics; ``bytes``
    for empty arrays), mmengine's ``HistoryBuffer`` (message hub; it pickles
    its statistics methods as ``getattr(HistoryBuffer, 'mean')``, allowed
    for exactly that) and ``ConfigDict`` (dataset meta given in a config).
    """
    global _SAFE_GLOBALS
    if _SAFE_GLOBALS is None:
        from mmengine.config import ConfigDict
        from mmengine.logging import HistoryBuffer
        _SAFE_GLOBALS = _numpy_globals() + [
            HistoryBuffer, ConfigDict, bytes,
            (_history_buffer_method, 'builtins.getattr')
        ]
    return list(_SAFE_GLOBALS)


_GLOBAL_RE = re.compile(r'GLOBAL ([\w.]+)')


def _describe_failure(filename: str,
                      err: BaseException) -> Optional[BaseException]:
    """An error naming file and cause for a refused or broken checkpoint
    (None for other failures, which are raised as they are)."""
    msg = str(err)
    if 'Weights only load failed' in msg:
        found = _GLOBAL_RE.search(msg)
        detail = [line.strip() for line in msg.splitlines()
                  if 'WeightsUnpickler error' in line or 'Unsupported' in line
                  or 'Can only' in line]
        what = (f'type `{found.group(1)}`' if found else
                'an object that is not plain tensors / containers'
                + (f' ({detail[0]})' if detail else ''))
        return UnsafeCheckpointError(
            f'{filename} contains {what}, which is not on K-Net\'s '
            'allow-list of checkpoint types, so it was not loaded '
            '(unpickling it could run code from the file). If you '
            'trust this file, load it with --unsafe-load (tools), '
            f'{UNSAFE_LOAD_ENV}=1 (mim, launchers) or '
            'load_local_checkpoint(..., unsafe=True).')
    broken = isinstance(err, (EOFError, pickle.UnpicklingError)) or any(
        word in msg for word in ('PytorchStreamReader', 'zip archive',
                                 'invalid load key', 'EOF'))
    if not broken:
        return None
    return CorruptCheckpointError(
        f'{filename} is not a readable checkpoint (truncated, still being '
        f'written, or not a PyTorch .pth file): {type(err).__name__}: '
        f'{msg.splitlines()[0] if msg else ""}')


def check_checkpoint_file(filename: str) -> None:
    """Fail early, naming the file, for a missing, empty or non-.pth file."""
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    size = osp.getsize(filename)
    if size == 0:
        raise CorruptCheckpointError(
            f'{filename} is empty (0 bytes): the run that wrote it was '
            'probably killed; use another checkpoint')
    if zipfile.is_zipfile(filename):
        try:
            with zipfile.ZipFile(filename) as zf:
                zf.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise CorruptCheckpointError(
                f'{filename} is a truncated or damaged checkpoint: {err}'
            ) from err
        return
    with open(filename, 'rb') as f:
        head = f.read(2)
    if head[:1] != b'\x80':  # neither a zip nor a (legacy) pickle
        raise CorruptCheckpointError(
            f'{filename} is not a PyTorch checkpoint (neither the zip format '
            'of torch.save nor a pickle); is it truncated or another file?')


def safe_torch_load(filename: str,
                    map_location: Any = None,
                    unsafe: Optional[bool] = None) -> Any:
    """``torch.load`` a local file with the allow-listed safe unpickler.

    ``unsafe=True`` (or ``KNET_UNSAFE_LOAD=1`` when ``unsafe`` is None)
    loads with full pickle instead, with a warning: only for trusted files.
    """
    filename = osp.expanduser(str(filename))
    check_checkpoint_file(filename)
    if unsafe is None:
        unsafe = unsafe_load_enabled()
    if unsafe:
        warnings.warn(
            f'loading {filename} with full pickle (--unsafe-load / '
            f'{UNSAFE_LOAD_ENV}=1): this runs any code the file contains; '
            'only do it for files you trust', stacklevel=2)
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=False)
        except (pickle.UnpicklingError, EOFError, RuntimeError) as err:
            described = _describe_failure(filename, err)
            if described is None:
                raise
            raise described from err
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=True)
        except (pickle.UnpicklingError, EOFError, RuntimeError,
                ValueError) as err:
            described = _describe_failure(filename, err)
            if described is None:
                raise
            raise described from err


def load_local_checkpoint(filename: str,
                          map_location: Any = None,
                          logger: Any = None,
                          unsafe: Optional[bool] = None) -> Any:
    """mmengine's ``load_from_local`` with the safe, allow-listed loader."""
    return safe_torch_load(filename, map_location, unsafe)


def _file_mode() -> int:
    """0666 minus the process umask: the mode ``open()`` would give."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename.

    The temporary file is hidden (``.NAME.XXXX.tmp``), gets the umask file
    mode and is removed if ``write`` fails.
    """
    path = osp.abspath(osp.expanduser(path))
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to ``path`` through a temporary file and a rename."""
    atomic_write(path, lambda f: torch.save(obj, f))


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
    """Register the safe loader and the atomic saver (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    mme_checkpoint.CheckpointLoader.register_scheme(
        prefixes='', force=True)(load_local_checkpoint)
    mme_checkpoint.save_checkpoint = _save_checkpoint
    from mmengine.runner import runner as mme_runner
    mme_runner.save_checkpoint = _save_checkpoint
    _APPLIED = True


__all__ = [
    'CorruptCheckpointError', 'UNSAFE_LOAD_ENV', 'UnsafeCheckpointError',
    'apply_checkpoint_fixes', 'atomic_torch_save', 'atomic_write',
    'checkpoint_safe_globals', 'enable_unsafe_load', 'load_local_checkpoint',
    'safe_torch_load', 'unsafe_load_enabled'
]
