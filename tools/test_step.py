#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video panoptic test: write result files, resume, score (spec §2.10).

    python tools/test_step.py CONFIG CHECKPOINT [--show-dir OUT]
        [--formats step catins vipseg] [--no-resume] [--no-eval | --eval]
        [--protocol official|videoknet] [--json FILE] [--work-dir DIR]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Runs the model online over every test sequence (``TrackImgSampler``: one
frame at a time, whole sequences per process) and writes, under ``OUT``
(default ``./out``, the original's):

* ``step``   ``OUT/final/{seq:04d}/{frame:06d}.png`` (KITTI-STEP submission;
             void R = 255),
* ``catins`` ``OUT/panoptic/{seq}/{seq:06d}_{frame:06d}_{cat,ins}.png``,
* ``vipseg`` ``OUT/pan_pred/<video>/<frame>.png`` + ``OUT/pred.json``.

Resume (default): a sequence is written completely before its marker
``OUT/.done/<seq>.json`` appears; a rerun with the same checkpoint and
formats skips the marked sequences, so a killed run continues where it
stopped. Markers of another checkpoint stop the run (use another
``--show-dir`` or ``--no-resume``, which clears the markers).

Scoring: when every test frame has ground truth (``seg_map_path``), the
written files of the *whole* split (this run + earlier runs) are scored
with the STQ / VPQ of ``tools/eval_d{stq,vpq}_*.py`` (official protocol by
default) and printed; the numbers (fractions) go to ``OUT/metrics.json``
(or ``--json``). ``--eval`` (with or without the original's metric
names, e.g. ``--eval dummy``) insists on scoring; ``--no-eval`` skips it.
"""
import argparse
import os
import os.path as osp
import shutil
import sys

FORMATS = ('step', 'catins', 'vipseg')


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Video panoptic test: result files (resumable) + '
        'STQ / VPQ of the written files')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--show-dir', default='./out',
                        help='output root OUT (default ./out)')
    parser.add_argument('--formats', nargs='+', choices=FORMATS,
                        default=None,
                        help='files to write (default: step catins; '
                        'vipseg for VIP-Seg datasets)')
    parser.add_argument(
        '--class-space', choices=('dataset', 'stuff_first'), default=None,
        help='class ids of the step / catins files (default: dataset; '
        'stuff_first for VIP-Seg, what tools/eval_d*_vipseg.py read)')
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument('--resume', action='store_true', default=True,
                        help='skip sequences already marked done in OUT '
                        '(default)')
    resume.add_argument('--no-resume', dest='resume', action='store_false',
                        help='redo every sequence (clears OUT/.done)')
    scoring = parser.add_mutually_exclusive_group()
    scoring.add_argument('--eval', nargs='*', default=None, metavar='METRIC',
                         help='score the files (an error without ground '
                         'truth); metric names of the original are ignored')
    scoring.add_argument('--no-eval', action='store_true',
                         help='write the files only')
    parser.add_argument('--protocol', choices=('official', 'videoknet'),
                        default='official',
                        help='STQ / VPQ rules (see tools/eval_dstq_step.py '
                        '--help)')
    parser.add_argument('--json', dest='json_out',
                        help='scores file (default OUT/metrics.json)')
    parser.add_argument('--work-dir', help='logs folder')
    parser.add_argument('--allow-partial', action='store_true',
                        help='test even if the checkpoint does not fit '
                        'the model')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load checkpoints with full pickle (trusted '
                        'files only)')
    args = parser.parse_args(argv)
    if args.unsafe_load:
        os.environ['KNET_UNSAFE_LOAD'] = '1'
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    return args


# --------------------------------------------------------------------------
def _is_vipseg(dataset) -> bool:
    return 'vip' in type(dataset).__name__.lower()


def _fingerprint(checkpoint: str) -> str:
    """Checkpoint identity stored in the markers (name and size: stable
    across copies and mounts)."""
    return f'{osp.basename(checkpoint)}:{osp.getsize(checkpoint)}'


def _data_list_dataset(dataset_cfg):
    """The test dataset without its pipeline (only its data list)."""
    import copy

    from mmdet.registry import DATASETS
    cfg = copy.deepcopy(dataset_cfg)
    cfg['pipeline'] = []
    cfg['serialize_data'] = False  # keep ``data_list``
    cfg['lazy_init'] = False
    cfg.pop('indices', None)
    dataset = DATASETS.build(cfg)
    if not dataset.data_list:
        raise SystemExit(f'error: the test dataset ({cfg.get("type")}, '
                         f'data_root {cfg.get("data_root")}) has no video')
    return dataset


def _video_names(videos: list) -> dict:
    """``{video_id: name}`` of the VIP-Seg files (``video_name`` of the
    data list, else ``{video_id:04d}``)."""
    from knet.evaluation.video_writers import default_video_name
    names = {}
    for video in videos:
        first = video['images'][0] if video.get('images') else {}
        names[video['video_id']] = (video.get('video_name')
                                    or first.get('video_name')
                                    or default_video_name(video['video_id']))
    return names


def _pending(out_dir: str, videos: list, formats, class_space: str,
             fingerprint: str, resume: bool) -> list:
    """Indices of the videos still to write (rank 0 only)."""
    from knet.evaluation.video_writers import (DONE_DIR, PARTS_DIR,
                                               read_markers, sequence_key)
    if not resume:
        for sub in (DONE_DIR, PARTS_DIR):
            shutil.rmtree(osp.join(out_dir, sub), ignore_errors=True)
        return list(range(len(videos)))
    markers = read_markers(out_dir)
    for key, marker in markers.items():
        if marker.get('fingerprint') != fingerprint:
            raise ValueError(
                f'{osp.join(out_dir, DONE_DIR, key + ".json")} marks a '
                f'sequence written with checkpoint '
                f'{marker.get("fingerprint")!r}, not {fingerprint!r}; use '
                f'another --show-dir, or --no-resume to overwrite')
    done = {
        key for key, m in markers.items()
        if set(formats) <= set(m.get('formats', ()))
        and m.get('class_space', 'dataset') == class_space
    }
    return [i for i, v in enumerate(videos)
            if sequence_key(v['video_id']) not in done]


def _score(out_dir: str, dataset, formats, protocol: str) -> dict:
    """STQ + VPQ of the written files of the whole split."""
    from knet.evaluation import (VIPSEG, EvalSettings, evaluate_stq,
                                 evaluate_vpq)
    from knet.evaluation.video_writers import written_sequences
    vip = _is_vipseg(dataset)
    fmt = 'step' if 'step' in formats else 'catins'
    if vip:
        settings = VIPSEG
    else:
        meta = dataset.metainfo
        settings = EvalSettings(len(meta['classes']),
                                tuple(meta['thing_ids']), 255, 'kitti-step')
    seqs = written_sequences(out_dir, dataset.data_list, fmt,
                             'vipseg' if vip else 'step')
    stq = evaluate_stq(seqs, settings, protocol=protocol)
    vpq = evaluate_vpq(seqs, settings, protocol=protocol)
    return {'STQ': stq['STQ'], 'AQ': stq['AQ'], 'SQ': stq['SQ'],
            'VPQ': vpq['VPQ'], 'VPQ_th': vpq['VPQ_th'],
            'VPQ_st': vpq['VPQ_st'],
            'per_window': vpq['per_window'],
            'per_sequence': stq['per_sequence'], 'protocol': protocol,
            'files': fmt, 'num_classes': settings.num_classes,
            'thing_ids': list(settings.thing_ids),
            'units': 'fraction in [0, 1] (printed in percent)'}


def _print_scores(res: dict) -> None:
    print(f'VPS scores of the written files ({res["files"]}, protocol '
          f'{res["protocol"]}, %): STQ {100 * res["STQ"]:.2f}  AQ '
          f'{100 * res["AQ"]:.2f}  SQ {100 * res["SQ"]:.2f}  VPQ '
          f'{100 * res["VPQ"]:.2f} (th {100 * res["VPQ_th"]:.2f}, st '
          f'{100 * res["VPQ_st"]:.2f})')


def _add_writer(runner, writer: dict) -> None:
    """Append the writer to the (not yet built) test evaluator config."""
    ev = runner._test_evaluator
    if ev is None:
        runner._test_evaluator = [writer]
    elif isinstance(ev, (list, tuple)):
        runner._test_evaluator = list(ev) + [writer]
    elif 'metrics' in ev:  # Evaluator dict
        metrics = ev['metrics']
        metrics = list(metrics) if isinstance(metrics, (list, tuple)) \
            else [metrics]
        ev['metrics'] = metrics + [writer]
    else:
        runner._test_evaluator = [ev, writer]


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.dist import broadcast_object_list, get_world_size
    from mmengine.dist import is_main_process
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import knet  # noqa: F401
    from knet.engine import configure_launcher, default_work_dir
    from knet.engine.launch import merge_cfg_options
    from knet.evaluation._utils import dump_json_atomic
    from knet.evaluation.video_writers import assemble_pred_json
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        for note in merge_cfg_options(cfg, args.cfg_options):
            print(f'[tools/test_step.py] {note}', file=sys.stderr)
    cfg.work_dir = args.work_dir or default_work_dir(cfg, args.config)
    cfg.load_from = args.checkpoint
    if args.allow_partial:
        cfg.allow_partial_checkpoint = True
    configure_launcher(cfg, args.launcher)
    if cfg.get('test_dataloader') is None:
        raise SystemExit(f'error: {args.config} has no test_dataloader')
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)

    out_dir = osp.abspath(args.show_dir)
    dataset = _data_list_dataset(runner._test_dataloader['dataset'])
    vip = _is_vipseg(dataset)
    formats = tuple(args.formats or (('vipseg', 'catins') if vip else
                                     ('step', 'catins')))
    class_space = args.class_space or ('stuff_first' if vip else 'dataset')
    fingerprint = _fingerprint(args.checkpoint)
    videos = dataset.data_list
    box = [None]
    if is_main_process():
        try:
            box = [_pending(out_dir, videos, formats, class_space,
                            fingerprint, args.resume)]
        except ValueError as err:
            box = [str(err)]
    broadcast_object_list(box)
    if isinstance(box[0], str):
        raise SystemExit(f'error: {box[0]}')
    pending = box[0]
    skipped = len(videos) - len(pending)
    if skipped and is_main_process():
        print(f'[tools/test_step.py] resuming: {skipped} of {len(videos)} '
              f'sequences already written in {out_dir}', file=sys.stderr)
    if pending and len(pending) < get_world_size():
        raise SystemExit(
            f'error: {len(pending)} sequence(s) left for {get_world_size()} '
            f'processes; rerun with at most {len(pending)} processes')
    if pending:
        runner._test_dataloader['dataset']['indices'] = pending
        meta = dataset.metainfo
        _add_writer(runner, dict(
            type='VideoPanopticWriter', out_dir=out_dir,
            num_classes=len(meta['classes']),
            thing_ids=list(meta['thing_ids']), formats=list(formats),
            class_space=class_space, fingerprint=fingerprint,
            video_names=_video_names(videos)))
        runner.test()
    elif is_main_process() and 'vipseg' in formats:
        assemble_pred_json(out_dir)
    if not is_main_process():
        return 0

    has_gt = all(img.get('seg_map_path') for v in videos
                 for img in v['images'])
    if args.no_eval or (args.eval is None and not has_gt):
        if args.eval is None and not args.no_eval:
            print('[tools/test_step.py] no ground truth: files written, '
                  'not scored', file=sys.stderr)
        return 0
    if not has_gt:
        raise SystemExit('error: --eval needs ground truth (seg_map_path) '
                         'for every test frame; this split has none')
    if not {'step', 'catins'} & set(formats):
        print('[tools/test_step.py] only vipseg files written: score them '
              'with the official VIP-Seg scripts (eval_vpq_vspw.py '
              '--submit_dir OUT)', file=sys.stderr)
        return 0
    if class_space != ('stuff_first' if _is_vipseg(dataset) else 'dataset'):
        print(f'[tools/test_step.py] --class-space {class_space}: the eval '
              f'tools read the other space; files written, not scored',
              file=sys.stderr)
        return 0
    res = _score(out_dir, dataset, formats, args.protocol)
    _print_scores(res)
    dump_json_atomic(res, args.json_out or osp.join(out_dir, 'metrics.json'))
    return 0


if __name__ == '__main__':
    from knet.engine.cli_errors import run_tool
    sys.exit(run_tool(main))
