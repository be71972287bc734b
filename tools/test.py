#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Evaluate a K-Net checkpoint (mmdet or mmseg config).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
                         [--show-dir DIR] [--cfg-options k=v ...]
                         [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import os
import os.path as osp
import sys


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Evaluate a K-Net model (mmdet or mmseg config)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--out', help='dump the raw predictions to this pickle file')
    parser.add_argument(
        '--show-dir', help='save painted predictions to this folder')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. test_dataloader.batch_size=2')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        parser.error('--out must be a .pkl or .pickle file')
    return args


def _enable_visualization(cfg, show_dir: str) -> None:
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise KeyError('--show-dir needs default_hooks.visualization in the '
                       'config')
    hook['draw'] = True
    if cfg.get('default_scope') == 'mmseg':
        cfg.visualizer['save_dir'] = show_dir
    else:
        hook['test_out_dir'] = osp.abspath(show_dir)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import knet  # noqa: F401
    from knet.engine import configure_launcher, default_work_dir
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or default_work_dir(cfg, args.config)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        _enable_visualization(cfg, args.show_dir)
    configure_launcher(cfg, args.launcher)

    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    tmp_out = None
    if args.out:
        if cfg.get('default_scope') == 'mmdet':
            from mmdet.evaluation import DumpDetResults as Dump
        else:
            from mmengine.evaluator import DumpResults as Dump
        # written next to the target, renamed when the test has finished
        tmp_out = args.out + '.tmp.pkl'
        runner.test_evaluator.metrics.append(Dump(out_file_path=tmp_out))
    try:
        runner.test()
    except BaseException:
        if tmp_out and osp.exists(tmp_out):
            os.remove(tmp_out)
        raise
    if tmp_out and osp.exists(tmp_out):
        os.replace(tmp_out, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
