# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Runner checkpoints (iteration / epoch based, optimizer, scheduler, AMP
loss scaler) save, resume and ``load_from`` with K-Net's safe loader, and
``KNetCheckpointHook`` / ``KNetRunner`` survive a kill during a save."""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

import knet  # noqa: F401
from knet.engine import KNetRunner
from knet.engine.checkpoint_resume import find_resume_checkpoint
from knet.utils.checkpoint_compat import checkpoint_safe_globals

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from runner_toys import runner_kwargs  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _allowed_names():
    names = set()
    for item in checkpoint_safe_globals():
        if isinstance(item, tuple):
            names.add(item[1])
        else:
            names.add(f'{item.__module__}.{item.__qualname__}')
    return names


def _train(**kwargs):
    runner = KNetRunner(**runner_kwargs(**kwargs))
    runner.train()
    return runner


def _tmp_files(folder):
    return glob.glob(osp.join(folder, '.*.tmp'))


@pytest.mark.parametrize('by_epoch,amp', [(False, False), (True, False),
                                          (False, True)])
def test_runner_checkpoints_resume_and_load_safely(tmp_path, by_epoch, amp):
    work = str(tmp_path / 'work')
    old_mask = os.umask(0o022)
    try:
        _train(work_dir=work, by_epoch=by_epoch, total=3, amp=amp)
    finally:
        os.umask(old_mask)
    name = 'epoch_3.pth' if by_epoch else 'iter_3.pth'
    ckpt = osp.join(work, name)
    # max_keep_ckpts=1: only the newest, no temp files, readable mode
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == [name]
    assert not _tmp_files(work)
    assert os.stat(ckpt).st_mode & 0o777 == 0o644
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == ckpt
    # everything in the file is plain or on the allow-list
    needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(ckpt))
    assert needed <= _allowed_names(), needed - _allowed_names()
    saved = _load_checkpoint(ckpt, map_location='cpu')
    assert {'optimizer', 'param_schedulers', 'message_hub'} <= set(saved)
    assert saved['meta']['dataset_meta']['classes'] == ('a', 'b')

    resumed = _train(work_dir=work, by_epoch=by_epoch, total=5, amp=amp,
                     resume=True)
    assert (resumed.epoch if by_epoch else resumed.iter) == 5
    last = osp.join(work, 'epoch_5.pth' if by_epoch else 'iter_5.pth')
    assert osp.isfile(last) and not osp.exists(ckpt)
    assert _load_checkpoint(last)['meta']['epoch' if by_epoch else 'iter'] \
        == 5

    loaded = KNetRunner(**runner_kwargs(
        work_dir=str(tmp_path / 'load'), by_epoch=by_epoch, total=1,
        load_from=last))
    loaded.load_or_resume()
    want = _load_checkpoint(last)['state_dict']['linear.weight']
    assert torch.equal(loaded.model.linear.weight.detach(), want)


def test_resume_restores_optimizer_and_step(tmp_path):
    work = str(tmp_path / 'work')
    first = _train(work_dir=work, by_epoch=False, total=2)
    momentum = first.optim_wrapper.optimizer.state_dict()['state'][0][
        'momentum_buffer'].clone()
    runner = KNetRunner(**runner_kwargs(work_dir=work, by_epoch=False,
                                        total=4, resume=True))
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.param_schedulers = runner.build_param_scheduler(
        runner.param_schedulers)
    runner.load_or_resume()
    assert runner.iter == 2
    state = runner.optim_wrapper.optimizer.state_dict()['state'][0]
    assert torch.equal(state['momentum_buffer'], momentum)


def test_grad_scaler_state_round_trips(tmp_path):
    """What mmengine's AmpOptimWrapper stores (CUDA only), made by hand."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler('cpu', init_scale=256.0, growth_interval=1)
    scaler.scale(model(torch.ones(1, 2)).sum()).backward()
    scaler.step(opt)
    scaler.update()
    state = dict(opt.state_dict(), loss_scaler=scaler.state_dict())
    path = str(tmp_path / 'amp.pth')
    save_checkpoint({'optimizer': state, 'meta': {'iter': 1}}, path)
    back = _load_checkpoint(path)['optimizer']['loss_scaler']
    assert back == scaler.state_dict() and back['scale'] == 512.0


def test_resume_without_checkpoint_starts_from_scratch(tmp_path, caplog):
    work = str(tmp_path / 'empty')
    runner = _train(work_dir=work, by_epoch=False, total=1, resume=True)
    assert runner.iter == 1
    log = open(glob.glob(osp.join(work, '*', '*.log'))[0]).read()
    assert 'starts from scratch' in log


def test_stale_last_checkpoint_falls_back(tmp_path):
    work = str(tmp_path / 'work')
    _train(work_dir=work, by_epoch=False, total=2, max_keep_ckpts=-1)
    # a later save was killed: last_checkpoint names a missing file and
    # an empty iter_4.pth is there
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'iter_3.pth'))
    open(osp.join(work, 'iter_4.pth'), 'wb').close()
    assert find_resume_checkpoint(work) == osp.join(work, 'iter_2.pth')
    runner = _train(work_dir=work, by_epoch=False, total=3, resume=True,
                    max_keep_ckpts=-1)
    assert runner.iter == 3
    logs = sorted(glob.glob(osp.join(work, '*', '*.log')))
    assert 'newest readable checkpoint' in open(logs[-1]).read()


def test_resume_of_another_model_names_the_file(tmp_path):
    work = str(tmp_path / 'work')
    _train(work_dir=work, by_epoch=False, total=1)
    ckpt = osp.join(work, 'iter_1.pth')
    with pytest.raises(Exception) as err:
        _train(work_dir=work, by_epoch=False, total=2, extra=True,
               resume=True, load_from=ckpt)
    assert ckpt in str(err.value)
    assert not isinstance(err.value, FileNotFoundError)


_KILL_SCRIPT = textwrap.dedent('''
    import os, sys, time
    import torch
    sys.path.insert(0, {here!r})
    import knet
    from knet.engine import KNetRunner
    from runner_toys import runner_kwargs
    real_save = torch.save
    calls = []

    def slow_save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) < 3:
            return real_save(obj, f, *a, **k)
        f.write(b'PK' + b'0' * 4096)   # half-written checkpoint 3
        f.flush()
        open({ready!r}, 'w').close()
        time.sleep(120)

    torch.save = slow_save
    KNetRunner(**runner_kwargs(work_dir={work!r}, by_epoch=False,
                               total=5)).train()
''')


@pytest.mark.slow
def test_kill_during_save_keeps_a_resumable_checkpoint(tmp_path):
    work, ready = str(tmp_path / 'work'), str(tmp_path / 'ready')
    script = tmp_path / 'train.py'
    script.write_text(_KILL_SCRIPT.format(
        here=osp.dirname(osp.abspath(__file__)), ready=ready, work=work))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not osp.exists(ready):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, 'the save of iter 3 never started'
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    # iter_2 is still there and named by last_checkpoint; a temp file too
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    assert not osp.exists(osp.join(work, 'iter_3.pth'))
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'iter_2.pth')
    assert len(_tmp_files(work)) == 1
    runner = _train(work_dir=work, by_epoch=False, total=4, resume=True)
    assert runner.iter == 4
    assert not _tmp_files(work)
    assert [p for p in os.listdir(work) if p.endswith('.pth')] == [
        'iter_4.pth']
