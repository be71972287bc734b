# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""One clear line instead of a traceback for the user's own mistakes.

The tools (``tools/train.py``, ``tools/test.py``) end through
:func:`run_tool`: a bad dataset folder, config key or checkpoint stops with
``error: <message naming the file or key>`` and exit status 1. Bugs still
show their traceback; ``KNET_TRACEBACK=1`` shows it for everything.
"""
import os
import sys
from typing import Callable, Optional, Sequence

STARTUP_CHECK_ATTR = '_knet_startup_check'


def _user_error_types() -> tuple:
    from knet.datasets.data_checks import DataCheckError
    from knet.engine.checkpoint_resume import CheckpointResumeError
    from knet.utils.checkpoint_compat import (CorruptCheckpointError,
                                              UnsafeCheckpointError)
    from knet.utils.checkpoint_convert import CheckpointMismatchError
    return (DataCheckError, CheckpointResumeError, CorruptCheckpointError,
            UnsafeCheckpointError, CheckpointMismatchError)


def is_user_error(err: BaseException) -> bool:
    """True for errors about the user's data, config or checkpoint, whose
    message already says what is wrong and how to fix it."""
    if getattr(err, STARTUP_CHECK_ATTR, None):
        return True
    try:
        return isinstance(err, _user_error_types())
    except ImportError:  # knet only partly importable: show the traceback
        return False


def run_tool(main: Callable[[Optional[Sequence[str]]], int],
             argv: Optional[Sequence[str]] = None) -> int:
    """``main(argv)``; a user error prints one ``error:`` line (exit 1)."""
    try:
        return main(argv)
    except Exception as err:  # noqa: BLE001 (re-raised unless a user error)
        if os.environ.get('KNET_TRACEBACK') == '1' or not is_user_error(err):
            raise
        print(f'error: {err}', file=sys.stderr)
        return 1


__all__ = ['STARTUP_CHECK_ATTR', 'is_user_error', 'run_tool']
