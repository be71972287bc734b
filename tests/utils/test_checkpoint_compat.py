# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
import os

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint
from packaging.version import Version

import knet  # noqa: F401  (applies the fixes)
from knet.utils import atomic_torch_save


def _runner_like_checkpoint():
    buf = HistoryBuffer()
    buf.update(1.5)
    return {
        'meta': {'epoch': 1, 'iter': 10, 'seed': np.int64(3)},
        'state_dict': {'w': torch.ones(2)},
        'message_hub': {'log_scalars': {'loss': buf},
                        'runtime_info': {'lr': np.float64(0.1)}},
    }


def test_runner_checkpoint_loads_through_mmengine(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(_runner_like_checkpoint(), path)
    if Version(torch.__version__.split('+')[0]) >= Version('2.6'):
        # what mmengine 0.10.7 does without the fix
        with pytest.raises(Exception, match='[Ww]eights only'):
            torch.load(path, weights_only=True)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['message_hub']['log_scalars']['loss'].current() == 1.5
    assert ckpt['meta']['seed'] == 3


class _Exploding:

    def __reduce__(self):
        raise RuntimeError('disk full')


def test_save_is_atomic(tmp_path):
    path = tmp_path / 'ckpt.pth'
    save_checkpoint({'state_dict': {'w': torch.zeros(1)}}, str(path))
    assert torch.load(path)['state_dict']['w'].item() == 0
    with pytest.raises(RuntimeError, match='disk full'):
        save_checkpoint({'bad': _Exploding()}, str(path))
    # the old checkpoint is intact and no temporary file is left behind
    assert torch.load(path)['state_dict']['w'].item() == 0
    assert os.listdir(tmp_path) == ['ckpt.pth']
    with pytest.raises(RuntimeError):
        atomic_torch_save({'bad': _Exploding()}, str(tmp_path / 'new.pth'))
    assert os.listdir(tmp_path) == ['ckpt.pth']
