#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Train a K-Net model (mmdet or mmseg config) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--auto-scale-lr] [--cfg-options k=v ...]
                                 [--launcher {none,pytorch,slurm,mpi}]
                                 [--unsafe-load]
"""
import argparse
import os
import os.path as osp
import sys


LEGACY_TRAIN_FLAGS = ('--resume-from', '--load-from', '--seed',
                      '--deterministic', '--gpus', '--gpu-ids', '--gpu-id',
                      '--no-validate')


def translate_legacy_argv(argv):
    """mmdet 2.x train flags (``--resume-from``, ``--no-validate``, ...)
    in their 3.x form (:func:`knet.engine.launch.translate_train_argv`), so
    the original README's command lines run here and in the launchers."""
    if not argv or argv[0].startswith('-') or not any(
            a.split('=', 1)[0] in LEGACY_TRAIN_FLAGS for a in argv[1:]):
        return argv
    from knet.engine.launch import translate_train_argv
    new, notes = translate_train_argv(argv[0], list(argv[1:]))
    if os.environ.get('RANK', '0') == '0':
        for note in notes:
            print(f'[train.py] {note}', file=sys.stderr)
    return [argv[0], *new]


def exit_if_config_missing(argv, tool: str) -> None:
    """Stop before anything else reads a missing config, printing the
    closest existing one and the corrected command (README typos such as
    ``knet_cityscapes_ste``)."""
    if not argv or argv[0].startswith('-') or osp.isfile(argv[0]):
        return
    from knet.engine.launch import config_not_found_message
    here = osp.relpath(osp.abspath(tool))
    print(f'usage: python {here} CONFIG [options]  (--help lists them)\n'
          f'{here}: error: ' + config_not_found_message(
              argv[0], ['python', here, *argv]), file=sys.stderr)
    raise SystemExit(2)


def parse_args(argv=None):
    from mmengine.config import DictAction
    argv = list(sys.argv[1:] if argv is None else argv)
    exit_if_config_missing(argv, __file__)
    argv = translate_legacy_argv(argv)
    parser = argparse.ArgumentParser(
        description='Train a K-Net model (mmdet or mmseg config)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: fp16 + dynamic loss scale on CUDA, bf16 '
        'autocast on CPU')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by total batch size / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work dir '
        'when no path is given')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='load checkpoints with full pickle (runs code in the file: '
        'trusted files only); same as KNET_UNSAFE_LOAD=1')
    args = parser.parse_args(argv)
    if args.unsafe_load:  # every rank parses its args; children inherit
        os.environ['KNET_UNSAFE_LOAD'] = '1'
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    return args


def build_cfg(args):
    from mmengine.config import Config

    import knet  # noqa: F401  (registers modules, checkpoint fixes)
    from knet.engine import configure_launcher, default_work_dir, enable_amp
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        # also maps 2.x keys (data.train.*) and moves datasets on data_root=
        from knet.engine.launch import merge_cfg_options
        for note in merge_cfg_options(cfg, args.cfg_options):
            print(f'[tools/train.py] {note}', file=sys.stderr)
    cfg.work_dir = args.work_dir or default_work_dir(cfg, args.config)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in \
                cfg.auto_scale_lr:
            raise KeyError('--auto-scale-lr needs `auto_scale_lr = dict('
                           f'enable=..., base_batch_size=...)` in {args.config}')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: '
                                    f'{args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    configure_launcher(cfg, args.launcher)
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = build_cfg(args)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()
    return 0


if __name__ == '__main__':
    from knet.engine.cli_errors import run_tool
    sys.exit(run_tool(main))
