# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Checkpoints load with torch's safe unpickler after ``import knet``: a
crafted ``.pth`` never runs its payload, the opt-in is explicit, nothing
changes for other ``torch.load`` calls, and broken files are named."""
import importlib.util
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

import knet  # noqa: F401  (registers the loader)
from knet.utils.checkpoint_compat import (UNSAFE_LOAD_ENV,
                                          CorruptCheckpointError,
                                          UnsafeCheckpointError,
                                          safe_torch_load)
from knet.utils.checkpoint_convert import check_destination

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _Payload:
    """Creates ``marker`` when unpickled with full pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _malicious(tmp_path):
    marker = str(tmp_path / 'PWNED')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'weight': torch.ones(2, 2)},
                'meta': {'note': _Payload(marker)}}, path)
    return path, marker


def _runner_like(tmp_path):
    buf = HistoryBuffer()
    buf.update(1.5)
    path = str(tmp_path / 'iter_10.pth')
    torch.save({
        'meta': {'epoch': 1, 'iter': 10, 'seed': np.int64(3),
                 'dataset_meta': ConfigDict(classes=('a', 'b'))},
        'state_dict': {'w': torch.ones(2)},
        'message_hub': {'log_scalars': {'loss': buf},
                        'runtime_info': {'lr': np.float64(0.1),
                                         'arr': np.arange(3)}},
    }, path)
    return path


def test_payload_is_refused_by_mmengine_load_checkpoint(tmp_path):
    path, marker = _malicious(tmp_path)
    model = nn.Linear(2, 2, bias=False)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(model, path, map_location='cpu')
    msg = str(err.value)
    assert path in msg and 'system' in msg and '--unsafe-load' in msg
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(path, map_location='cpu')
    assert not osp.exists(marker)


def test_unsafe_opt_in_loads_with_full_pickle(tmp_path, monkeypatch):
    path, marker = _malicious(tmp_path)
    with pytest.warns(UserWarning, match='full pickle'):
        safe_torch_load(path, unsafe=True)
    assert osp.exists(marker)  # the opt-in really is the old behaviour
    os.remove(marker)
    monkeypatch.setenv(UNSAFE_LOAD_ENV, '1')
    with pytest.warns(UserWarning, match='full pickle'):
        _load_checkpoint(path, map_location='cpu')
    assert osp.exists(marker)


def test_runner_types_load_safely_without_process_wide_change(tmp_path):
    path = _runner_like(tmp_path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['message_hub']['log_scalars']['loss'].current() == 1.5
    assert ckpt['meta']['seed'] == 3
    assert ckpt['meta']['dataset_meta'].classes == ('a', 'b')
    assert ckpt['message_hub']['runtime_info']['arr'].tolist() == [0, 1, 2]
    # plain torch.load in the same process is as strict as before
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    allowed = torch.serialization.get_safe_globals()
    assert HistoryBuffer not in allowed and ConfigDict not in allowed


@pytest.mark.parametrize('kind', ['empty', 'truncated', 'text'])
def test_broken_files_are_named(tmp_path, kind):
    path = str(tmp_path / f'{kind}.pth')
    if kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'truncated':
        full = _runner_like(tmp_path)
        with open(full, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    else:
        with open(path, 'w') as f:
            f.write('not a checkpoint\n')
    with pytest.raises(CorruptCheckpointError) as err:
        _load_checkpoint(path, map_location='cpu')
    assert path in str(err.value)


def test_convert_destination_rules(tmp_path):
    src = _runner_like(tmp_path)
    with pytest.raises(FileExistsError, match='source'):
        check_destination(src, src, force=True)
    link = str(tmp_path / 'link.pth')
    os.symlink(src, link)
    with pytest.raises(FileExistsError, match='source'):
        check_destination(src, link, force=True)
    other = str(tmp_path / 'other.pth')
    open(other, 'wb').close()
    with pytest.raises(FileExistsError, match='--force'):
        check_destination(src, other)
    check_destination(src, other, force=True)
    check_destination(src, str(tmp_path / 'new.pth'))


def _convert_main():
    spec = importlib.util.spec_from_file_location(
        'convert_checkpoint_tool', osp.join(REPO, 'tools',
                                            'convert_checkpoint.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_convert_tool_refuses_payload_and_in_place(tmp_path, capsys):
    main = _convert_main()
    path, marker = _malicious(tmp_path)
    assert main([path, str(tmp_path / 'out.pth')]) == 1
    err = capsys.readouterr().err
    assert 'system' in err and path in err and '--unsafe-load' in err
    assert not osp.exists(marker)
    assert not osp.exists(tmp_path / 'out.pth')

    src = _runner_like(tmp_path)
    before = open(src, 'rb').read()
    assert main([src, src]) == 1
    assert 'source' in capsys.readouterr().err
    assert main([src, src, '--force']) == 1
    assert open(src, 'rb').read() == before
    empty = str(tmp_path / 'empty.pth')
    open(empty, 'wb').close()
    assert main([empty, str(tmp_path / 'out.pth')]) == 1
    err = capsys.readouterr().err
    assert empty in err and 'empty' in err


class _GetattrProbe:
    """Pickles as ``getattr(HistoryBuffer, name)``."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return getattr, (HistoryBuffer, self.name)


def test_getattr_is_limited_to_history_buffer_methods(tmp_path):
    path = str(tmp_path / 'ok.pth')
    torch.save({'m': _GetattrProbe('mean')}, path)
    assert _load_checkpoint(path)['m'] is HistoryBuffer.mean
    path = str(tmp_path / 'probe.pth')
    torch.save({'m': _GetattrProbe('__init__')}, path)
    with pytest.raises(UnsafeCheckpointError, match='probe.pth'):
        _load_checkpoint(path)


@pytest.mark.parametrize('tool', ['train', 'test', 'demo'])
def test_tools_accept_unsafe_load(tool, tmp_path, monkeypatch):
    monkeypatch.setenv(UNSAFE_LOAD_ENV, '0')
    spec = importlib.util.spec_from_file_location(
        f'knet_tool_{tool}', osp.join(REPO, 'tools', f'{tool}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = osp.join(REPO, 'configs', 'toy', 'knet_s3_fcn_r18_toy-semantic.py')
    ckpt = _runner_like(tmp_path)
    args = {'train': [cfg], 'test': [cfg, ckpt],
            'demo': [ckpt, cfg, ckpt, '--out', str(tmp_path)]}[tool]
    module.parse_args(args)
    assert os.environ[UNSAFE_LOAD_ENV] == '0'
    module.parse_args(args + ['--unsafe-load'])
    assert os.environ[UNSAFE_LOAD_ENV] == '1'
