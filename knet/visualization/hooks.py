# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""``--show-dir DIR`` draws every test image into DIR, for every task.

mmdet's ``DetVisualizationHook`` joins ``test_out_dir`` under
``work_dir/timestamp`` (again at every batch) and mmseg's
``SegVisualizationHook`` draws only every 50th batch, into the visualizer's
backend folder. The two hooks below write one painted image per test image
into the folder itself (relative paths are taken from the current
directory) and log where. :func:`route_show_dir`, a start-up check of
:class:`~knet.engine.KNetRunner`, turns the settings that tools/test.py,
mmdet's and mmseg's ``tools/test.py`` (``mim test``) make for
``--show-dir`` into these hooks.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmdet.engine.hooks import DetVisualizationHook
from mmdet.registry import HOOKS as DET_HOOKS
from mmengine.config import Config
from mmengine.fileio import get
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS as SEG_HOOKS

from knet.engine.runner import register_startup_check

_DET_HOOK_TYPES = ('DetVisualizationHook', 'mmdet.DetVisualizationHook')
_SEG_HOOK_TYPES = ('SegVisualizationHook', 'mmseg.SegVisualizationHook')


class _DrawEveryTestImage:
    """Mixin (before mmdet's / mmseg's hook): with ``test_out_dir`` set,
    paint every test image into exactly that folder."""

    def __init__(self, *args, test_out_dir: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.test_out_dir = osp.abspath(test_out_dir) \
            if test_out_dir else None
        self._written = set()

    def _draw_kwargs(self) -> dict:
        """Extra ``add_datasample`` arguments of the task."""
        return {}

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence) -> None:
        if not self.draw or not self.test_out_dir:
            return super().after_test_iter(runner, batch_idx, data_batch,
                                           outputs)
        self._draw_all(outputs, **self._draw_kwargs())

    def before_test(self, runner) -> None:
        if self.draw and self.test_out_dir:
            os.makedirs(self.test_out_dir, exist_ok=True)
            runner.logger.info(
                f'--show-dir: drawing every test image into '
                f'{self.test_out_dir}')

    def after_test(self, runner) -> None:
        if self.draw and self.test_out_dir:
            runner.logger.info(
                f'--show-dir: {len(self._written)} painted test image(s) '
                f'written to {self.test_out_dir}')

    def _out_file(self, img_path: str) -> str:
        """``DIR/<image name>``; a repeated name gets its index appended."""
        name = osp.basename(img_path)
        if name in self._written:
            stem, ext = osp.splitext(name)
            name = f'{stem}_{len(self._written)}{ext}'
        self._written.add(name)
        return osp.join(self.test_out_dir, name)

    def _draw_all(self, outputs: Sequence, **draw_kwargs) -> None:
        for sample in outputs:
            img = mmcv.imfrombytes(
                get(sample.img_path, backend_args=self.backend_args),
                channel_order='rgb')
            out_file = self._out_file(sample.img_path)
            self._visualizer.add_datasample(
                osp.basename(sample.img_path) if self.show else 'test_img',
                img,
                data_sample=sample,
                show=self.show,
                wait_time=self.wait_time,
                out_file=out_file,
                step=len(self._written),
                **draw_kwargs)


@DET_HOOKS.register_module()
class KNetDetVisualizationHook(_DrawEveryTestImage, DetVisualizationHook):
    """mmdet's hook; ``test_out_dir`` is the folder itself (not joined
    under the work dir) and receives every test image."""

    def _draw_kwargs(self) -> dict:
        return dict(pred_score_thr=self.score_thr)


@SEG_HOOKS.register_module()
class KNetSegVisualizationHook(_DrawEveryTestImage, SegVisualizationHook):
    """mmseg's hook plus ``test_out_dir``: every test image painted into
    that folder (mmseg draws every ``interval``-th batch into the
    visualizer's backend)."""


@register_startup_check
def route_show_dir(cfg: Config) -> None:
    """Turn ``--show-dir`` settings into the K-Net hooks above.

    mmdet's test.py sets ``default_hooks.visualization.test_out_dir``;
    mmseg's sets ``visualizer.save_dir`` (its hook has no output folder):
    both become ``test_out_dir`` of the K-Net hook, as an absolute path.
    """
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if not hook or not hook.get('draw'):
        return
    if hook.get('type') in _DET_HOOK_TYPES:
        hook['type'] = 'mmdet.KNetDetVisualizationHook'
    elif hook.get('type') in _SEG_HOOK_TYPES:
        hook['type'] = 'mmseg.KNetSegVisualizationHook'
        visualizer = cfg.get('visualizer') or {}
        if not hook.get('test_out_dir') and visualizer.get('save_dir'):
            # mmseg's --show-dir: the folder the user asked for, not a
            # vis backend folder
            hook['test_out_dir'] = visualizer.pop('save_dir')
    if hook.get('test_out_dir') and hook.get('type', '').startswith(
            ('mmdet.KNet', 'mmseg.KNet', 'KNet')):
        hook['test_out_dir'] = osp.abspath(
            osp.expanduser(hook['test_out_dir']))


__all__ = ['KNetDetVisualizationHook', 'KNetSegVisualizationHook',
           'route_show_dir']
