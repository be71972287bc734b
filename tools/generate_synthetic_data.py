# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Generate the deterministic synthetic datasets (no download, CPU only).

Examples::

    # everything (coco, panoptic, ade, step, ytvis, vspw) -> data/synthetic
    python tools/generate_synthetic_data.py
    python tools/generate_synthetic_data.py --tasks panoptic ade \\
        --num-train 500 --size 160 160 --difficulty 0.5

Tasks whose meta.json records the same parameters are skipped; a changed
parameter, a corrupt meta.json or a missing file regenerates the task;
``--force`` always regenerates; ``--if-missing`` keeps any complete folder
(whatever its parameters), as the start-up check of every training does.
Several concurrent runs on one folder are safe: one writes (under
``<out>/.<task>.lock``), the others wait and report ``skipped``.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os.path as osp
import sys
import time
import types

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _import_synthetic() -> types.ModuleType:
    """Import knet.datasets.synthetic without knet/__init__ (torch, mmdet).

    The generator needs numpy only, and importing the models takes ~10 s, so
    when ``knet`` is not imported yet a bare stand-in package pointing at the
    real folder is registered (this process never builds models).
    """
    if 'knet' not in sys.modules:
        pkg_dir = osp.join(REPO_ROOT, 'knet')
        if not osp.isdir(pkg_dir):  # installed package, not a checkout
            spec = importlib.util.find_spec('knet')
            if spec is not None and spec.submodule_search_locations:
                pkg_dir = list(spec.submodule_search_locations)[0]
        stub = types.ModuleType('knet')
        stub.__path__ = [pkg_dir]
        sys.modules['knet'] = stub
        # knet/datasets/__init__ registers the start-up data check (mmengine)
        datasets = types.ModuleType('knet.datasets')
        datasets.__path__ = [osp.join(pkg_dir, 'datasets')]
        sys.modules['knet.datasets'] = datasets
    import knet.datasets.synthetic as synthetic
    return synthetic


def parse_args(argv: list[str] | None,
               tasks: tuple[str, ...]) -> argparse.Namespace:
    """Command-line options (``None`` means the per-task default)."""
    p = argparse.ArgumentParser(
        description='Generate the deterministic synthetic datasets.')
    p.add_argument('--out', default='data/synthetic', help='output root')
    p.add_argument(
        '--seed', type=int, default=0, help='same seed => same bytes')
    p.add_argument(
        '--tasks',
        nargs='+',
        default=list(tasks),
        choices=list(tasks),
        help='tasks to generate (default: all)')
    p.add_argument('--num-train', type=int, help='train images / videos')
    p.add_argument('--num-val', type=int, help='val images / videos')
    p.add_argument(
        '--size', type=int, nargs=2, metavar=('H', 'W'), help='frame size')
    p.add_argument('--num-frames', type=int, help='frames per video')
    p.add_argument(
        '--classes-per-video',
        type=int,
        help='videos only: thing classes drawn per clip (default 0 = all); '
        'fewer classes, more same-class instances to associate')
    p.add_argument(
        '--difficulty',
        type=float,
        help='0 = learnable default .. 1 = hard (smaller, more, '
        'less colour-coded things)')
    p.add_argument('--thing-classes', nargs='+', help='thing class subset')
    p.add_argument('--stuff-classes', nargs='+', help='stuff class subset')
    p.add_argument(
        '--force', action='store_true', help='regenerate even if up to date')
    p.add_argument(
        '--if-missing',
        action='store_true',
        help='keep a complete folder made with other parameters')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate the requested tasks; print one status line per task."""
    synthetic = _import_synthetic()
    args = parse_args(argv, synthetic.TASKS)
    params = dict(
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        num_frames=args.num_frames,
        classes_per_video=args.classes_per_video,
        difficulty=args.difficulty,
        thing_classes=args.thing_classes,
        stuff_classes=args.stuff_classes)
    params = {k: v for k, v in params.items() if v is not None}
    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    total = time.perf_counter()
    done = set()
    for task in dict.fromkeys(args.tasks):
        folder = synthetic.task_dir(task, args.out)
        if folder in done:  # panoptic shares the coco unit
            print(f'[shared]    {task:9s} -> {folder}')
            continue
        done.add(folder)
        task_params = dict(params)
        if task not in synthetic.VIDEO_TASKS:
            task_params.pop('num_frames', None)
            task_params.pop('classes_per_video', None)
        start = time.perf_counter()
        try:
            _, fresh = synthetic.generate_with_status(
                task,
                args.out,
                args.seed,
                force=args.force,
                progress=not args.quiet,
                keep_complete=args.if_missing,
                **task_params)
        except (FileExistsError, ValueError) as err:
            print(f'error: {task}: {err}', file=sys.stderr)
            return 2
        status = 'generated' if fresh else 'skipped'
        took = time.perf_counter() - start
        print(f'[{status}] {task:9s} -> {folder} ({took:.1f}s)')
    print(f'done in {time.perf_counter() - total:.1f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
