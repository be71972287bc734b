#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Evaluate a K-Net checkpoint (mmdet or mmseg config).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
                         [--show-dir DIR] [--cfg-options k=v ...]
                         [--launcher {none,pytorch,slurm,mpi}]
                         [--unsafe-load]
                         [--allow-partial]
                         [--eval M ...] [--eval-options k=v ...]
                         [--format-only]   (mmdet 2.x forms, mapped)

A checkpoint that does not fit the config's model (missing, unexpected or
mis-shaped keys) stops the test with the list of differences;
``--allow-partial`` evaluates it anyway. ``--show-dir DIR`` paints every
test image into DIR.
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
        '--show-dir',
        help='paint every test image into this folder (relative to the '
        'current directory)')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='evaluate even if the checkpoint does not fit the model '
        '(missing / unexpected / mis-shaped keys keep their initial '
        'weights); same as --cfg-options allow_partial_checkpoint=True')
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
    # mmdet 2.x / mmseg 0.x flags of the original K-Net README, mapped onto
    # test_evaluator (knet.engine.launch.legacy_eval_options)
    parser.add_argument(
        '--eval',
        nargs='+',
        help='2.x form: the metric (bbox, segm, pq, mIoU) must be the one '
        'of the config\'s test_evaluator; bbox/segm select CocoMetric '
        'metrics, mIoU/mDice/mFscore IoUMetric ones')
    parser.add_argument(
        '--eval-options',
        '--options',
        nargs='+',
        action=DictAction,
        help='2.x form: test_evaluator.<key>=<value> (jsonfile_prefix -> '
        'outfile_prefix, imgfile_prefix -> output_dir)')
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='write submission files only (test_evaluator.format_only=True;'
        ' to <work_dir>/results* unless --eval-options '
        'jsonfile_prefix=PREFIX)')
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
        # the closest existing config and the corrected command
        from knet.engine.launch import config_not_found_message
        here = osp.relpath(osp.abspath(__file__))
        argv = list(sys.argv[1:] if argv is None else argv)
        parser.error(config_not_found_message(args.config,
                                              ['python', here, *argv]))
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
    # K-Net's hooks paint every image into exactly this folder
    # (knet/visualization/hooks.py)
    hook['test_out_dir'] = osp.abspath(show_dir)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import knet  # noqa: F401
    from knet.engine import configure_launcher, default_work_dir
    from knet.engine.launch import legacy_eval_options, merge_cfg_options
    cfg = Config.fromfile(args.config)
    notes = []
    if args.cfg_options is not None:
        # also maps 2.x keys (data.test.*) and moves datasets on data_root=
        notes += merge_cfg_options(cfg, args.cfg_options)
    cfg.work_dir = args.work_dir or default_work_dir(cfg, args.config)
    if args.eval or args.eval_options or args.format_only:
        try:
            options, eval_notes = legacy_eval_options(
                cfg, args.eval, args.eval_options, args.format_only,
                cfg.work_dir)
        except ValueError as err:
            raise SystemExit(f'tools/test.py: {err}') from None
        cfg.merge_from_dict(options)
        notes += eval_notes
    for note in notes:
        print(f'[tools/test.py] {note}', file=sys.stderr)
    cfg.load_from = args.checkpoint
    if args.allow_partial:
        cfg.allow_partial_checkpoint = True
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
    from knet.engine.cli_errors import run_tool
    sys.exit(run_tool(main))
