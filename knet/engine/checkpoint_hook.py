# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""``KNetCheckpointHook``: mmengine's CheckpointHook, safe against kill -9.

mmengine 0.10.7 deletes the oldest checkpoint *before* writing the new one
and then writes ``last_checkpoint`` in place; with ``max_keep_ckpts=1`` a
kill during the save leaves no checkpoint at all and a ``last_checkpoint``
naming a deleted file. Here the new checkpoint is written (atomically, see
:mod:`knet.utils.checkpoint_compat`), then ``last_checkpoint`` is replaced
atomically, and only then are outdated checkpoints removed. Temporary files
left in the checkpoint folder by a killed save are removed at start.
"""
import os
import os.path as osp
import re

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from knet.utils.checkpoint_compat import atomic_write

#: hidden temporary files of ``atomic_write`` (``.NAME.XXXXXXXX.tmp``)
_TMP_RE = re.compile(r'^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$')


def remove_stale_temp_files(folder: str) -> list:
    """Remove temporary checkpoint files a killed save left in ``folder``.

    Only names written by :func:`knet.utils.checkpoint_compat.atomic_write`
    for ``*.pth`` or ``last_checkpoint`` are touched. Returns the paths.
    """
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in os.listdir(folder):
        match = _TMP_RE.match(name)
        if match and (match['name'].endswith('.pth')
                      or match['name'] == 'last_checkpoint'):
            path = osp.join(folder, name)
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


def write_last_checkpoint(work_dir: str, ckpt_path: str) -> None:
    """Point ``work_dir/last_checkpoint`` at ``ckpt_path`` atomically."""
    atomic_write(
        osp.join(work_dir, 'last_checkpoint'),
        lambda f: f.write(str(ckpt_path).encode()))


@HOOKS.register_module()
class KNetCheckpointHook(CheckpointHook):
    """CheckpointHook that removes old checkpoints only after the new one
    is complete and ``last_checkpoint`` points to it."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and '://' not in str(self.out_dir):
            for path in remove_stale_temp_files(str(self.out_dir)):
                runner.logger.info(
                    f'removed {path}, left by a save that was interrupted')

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        outdated = []
        keep = self.keep_ckpt_ids if self.max_keep_ckpts > 0 else None
        if keep is not None and not (keep and keep[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        write_last_checkpoint(runner.work_dir, self.last_ckpt)
        for old_step in outdated:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(old_step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints
                self.file_backend.rmtree(path)


__all__ = ['KNetCheckpointHook', 'remove_stale_temp_files',
           'write_last_checkpoint']
