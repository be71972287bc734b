# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Command-line front ends behind ``tools/eval_*.py``.

Convention for every tool: the printed tables show scores in percent (x100,
two decimals, like the original scripts); the ``--json`` file holds
fractions in [0, 1] and says so in its ``"units"`` field. JSON files are
written atomically.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from ._utils import dump_json_atomic
from .video_eval import (KITTI_STEP, VIPSEG, EvalSettings, default_windows,
                         evaluate_stq, evaluate_vpq, step_sequences,
                         vipseg_sequences)
from .video_protocol import OFFICIAL, PROTOCOLS, check_windows, get_protocol

__all__ = [
    'panoptic_main', 'dstq_step_main', 'dvpq_step_main', 'dstq_vipseg_main',
    'dvpq_vipseg_main'
]

UNITS = 'fraction in [0, 1] (printed tables show percent)'
STEP_FORMATS = """\
folders:
  GT_DIR and PRED_DIR hold {seq}/{frame}.png
  (KITTI-STEP: {seq:04d}/{frame:06d}.png),
  STEP panoptic PNGs: 8-bit RGB, R = class id, G*256+B = instance id, class
  255 = void. PRED_DIR may also be a Video K-Net output root: sequence
  {seq} is then read from final/{seq:04d}/ (STEP PNGs) or panoptic/{int(seq)}/
  (*_cat.png / *_ins.png dumps). Frames pair by identical names or by frame
  number (the last digits of the name: 7.png = 000007.png), never by text
  order. Missing, extra or ambiguous frames, size mismatches and unknown
  class ids are errors.
defaults:
  KITTI-STEP: 19 classes, things 11 (person) and 13 (car), ignore 255.
  Video K-Net's own STQ script used things 11..18; pass
  --thing-ids 11 12 13 14 15 16 17 18 to reproduce it.
"""
VIP_FORMATS = """\
folders:
  GT_DIR is the VIP-Seg root: panomasks/<video>/*.png and <split>.txt.
  Raw GT values (0 void, stuff c+1, thing (c+1)*100+k) are mapped to the
  "stuff first" space of Video K-Net: stuff 0-65, things 66-123
  (instance k+1), void 255.
  Predictions of the i-th video of the split file (same class space) are read
  from PRED_DIR/panoptic/<i>/ (Video K-Net dump), PRED_DIR/<i>/,
  PRED_DIR/<i:04d>/ or PRED_DIR/<video>/, as *_cat.png + *_ins.png pairs or
  STEP RGB PNGs, paired with the GT frames by name or frame number (a
  panoptic/<i>/ dump numbered 0..n-1 by frame index pairs by position). Unlike
  the original eval_dvpq_vipseg.py, the real instance map (*_ins.png) is used.
"""
PROTOCOL_HELP = """protocols (--protocol, printed in the report and the --json file):
  official   (default) the benchmarks' scorers: STQ on whole frames (deeplab2
             STQuality; VIP-Seg segments numbered per video from 0 as
             eval_stq_vspw.py does, so a thing numbered 0 is crowd); VPQ
             windows KITTI-STEP 1 2 3 4, VIP-Seg 1 2 4 6 8 (eval_vpq_vspw.py),
             a sequence shorter than k contributes nothing at k.
  videoknet  Video K-Net's eval scripts: STQ removes GT-void pixels first and
             numbers instances from 1; VPQ VIP-Seg windows 1 2 4 6, a
             sequence shorter than k is scored as one shorter window.
  --keep-gt-void (STQ) scores whole frames under either protocol (the
  official default already does); --windows replaces the protocol's windows.
"""

_SCALE_NOTE = ('Printed scores are percentages (x100); the --json file holds '
               'fractions in [0, 1].')


def _pct(x: float) -> str:
    return f'{100.0 * x:6.2f}'


def _fail(err: Exception) -> int:
    print(f'error: {err}', file=sys.stderr)
    return 1


@contextlib.contextmanager
def _plain_warnings():
    """Show warnings as ``warning: message`` lines (no source line)."""
    old = warnings.formatwarning
    warnings.formatwarning = (
        lambda message, *args, **kwargs: f'warning: {message}\n')
    try:
        yield
    finally:
        warnings.formatwarning = old


# --------------------------------------------------------------------------
# image PQ


def panoptic_main(argv: Sequence[str] | None = None) -> int:
    """``tools/eval_panoptic.py``: COCO panoptic PQ of a prediction set."""
    from .panoptic_quality import pq_compute
    parser = argparse.ArgumentParser(
        prog='eval_panoptic.py',
        description='COCO panoptic quality (same numbers as panopticapi). '
        + _SCALE_NOTE)
    parser.add_argument('--gt-json', required=True)
    parser.add_argument('--pred-json', required=True)
    parser.add_argument('--gt-dir', help='GT PNG folder (default: gt json '
                        'path without .json)')
    parser.add_argument('--pred-dir', help='prediction PNG folder (default: '
                        'pred json path without .json)')
    parser.add_argument('--nproc', type=int, default=1,
                        help='ignored (kept for panopticapi-style command '
                        'lines): hotcoco uses every core; set '
                        'RAYON_NUM_THREADS=N to limit it')
    parser.add_argument('--json', dest='json_out',
                        help='write the results (fractions) here')
    args = parser.parse_args(argv)
    try:
        res = pq_compute(args.gt_json, args.pred_json, args.gt_dir,
                         args.pred_dir, nproc=args.nproc)
    except (OSError, KeyError, ValueError) as err:
        return _fail(err)
    print(f'{"":<8}{"PQ":>8}{"SQ":>8}{"RQ":>8}{"N":>6}')
    for name in ('All', 'Things', 'Stuff'):
        r = res[name]
        print(f'{name:<8}{_pct(r["pq"]):>8}{_pct(r["sq"]):>8}'
              f'{_pct(r["rq"]):>8}{r["n"]:>6d}')
    if args.json_out:
        out = {k: res[k] for k in ('All', 'Things', 'Stuff')}
        out['per_class'] = {str(k): v for k, v in res['per_class'].items()}
        out['units'] = UNITS
        dump_json_atomic(out, args.json_out)
    return 0


# --------------------------------------------------------------------------
# video metrics


def _video_parser(prog: str, description: str, settings: EvalSettings,
                  vip: bool,
                  windows: tuple[Sequence[int], Sequence[int]] | None
                  ) -> argparse.ArgumentParser:
    """Shared options; ``windows`` = (official, videoknet) VPQ defaults."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description + ' ' + _SCALE_NOTE,
        epilog=(VIP_FORMATS if vip else STEP_FORMATS) + PROTOCOL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('pred_dir', help='prediction root folder')
    if vip:
        parser.add_argument(
            'gt_dir', help='VIP-Seg root with panomasks/ and <split>.txt')
        parser.add_argument('--split', default='val')
    else:
        parser.add_argument('gt_dir',
                            help='ground-truth root with {seq}/{frame}.png')
    parser.add_argument('--num-classes', type=int,
                        default=settings.num_classes)
    parser.add_argument('--thing-ids', type=int, nargs='+',
                        default=list(settings.thing_ids))
    parser.add_argument('--ignore-label', type=int,
                        default=settings.ignore_label)
    parser.add_argument(
        '--protocol', choices=PROTOCOLS, default=OFFICIAL,
        help='official (default): the benchmarks\' scorers; videoknet: '
        'Video K-Net\'s eval scripts (see below)')
    if windows:
        parser.add_argument(
            '--windows', type=int, nargs='+', default=None,
            help='window sizes k (frames per window); default: the '
            'protocol\'s (official: ' + ' '.join(map(str, windows[0])) +
            ', videoknet: ' + ' '.join(map(str, windows[1])) + ')')
    else:
        parser.add_argument(
            '--keep-gt-void', action='store_true',
            help='score GT-void pixels (whole frames, deeplab2 STQuality) '
            'also under --protocol videoknet, which removes them first; the '
            'official protocol always scores them')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes over sequences')
    parser.add_argument('--json', dest='json_out',
                        help='write the results (fractions) here')
    parser.add_argument('--no-progress', action='store_true')
    return parser


def _settings(args: argparse.Namespace,
              base: EvalSettings) -> EvalSettings:
    return EvalSettings(args.num_classes, tuple(args.thing_ids),
                        args.ignore_label, base.dataset)


def _stq_main(argv: Sequence[str] | None, prog: str, title: str,
              settings: EvalSettings, vip: bool) -> int:
    parser = _video_parser(
        prog, f'STQ (segmentation and tracking quality, deeplab2 STQuality) '
        f'for {title}.', settings, vip, None)
    args = parser.parse_args(argv)
    settings = _settings(args, settings)
    rules = get_protocol(args.protocol)
    drop_gt_void = rules.drop_gt_void and not args.keep_gt_void
    try:
        seqs = (vipseg_sequences(args.pred_dir, args.gt_dir, args.split)
                if vip else step_sequences(args.pred_dir, args.gt_dir))
        with _plain_warnings():
            res = evaluate_stq(seqs, settings, nproc=args.nproc,
                               drop_gt_void=drop_gt_void,
                               progress=not args.no_progress,
                               protocol=rules.name)
    except (OSError, ValueError, KeyError) as err:
        return _fail(err)
    width = max([8] + [len(s) for s in res['per_sequence']])
    void = 'GT void removed' if drop_gt_void else 'whole frames'
    print(f'STQ on {title}: {len(seqs)} sequences (scores in %), protocol '
          f'{rules.name} ({void})')
    print(f'{"sequence":<{width}}{"frames":>8}{"STQ":>8}{"AQ":>8}{"SQ":>8}')
    for sid, r in res['per_sequence'].items():
        print(f'{sid:<{width}}{r["num_frames"]:>8d}{_pct(r["STQ"]):>8}'
              f'{_pct(r["AQ"]):>8}{_pct(r["SQ"]):>8}')
    frames = sum(r['num_frames'] for r in res['per_sequence'].values())
    print(f'{"all":<{width}}{frames:>8d}{_pct(res["STQ"]):>8}'
          f'{_pct(res["AQ"]):>8}{_pct(res["SQ"]):>8}')
    if args.json_out:
        res = dict(res)
        res['units'] = UNITS
        res['settings'] = _settings_dict(settings, rules.name)
        res['settings']['drop_gt_void'] = drop_gt_void
        res['settings']['zero_numbered_crowd'] = (
            vip and rules.zero_numbered_crowd)
        dump_json_atomic(res, args.json_out)
    return 0


def _settings_dict(settings: EvalSettings, protocol: str) -> dict[str, Any]:
    return {'protocol': protocol,
            'num_classes': settings.num_classes,
            'thing_ids': list(settings.thing_ids),
            'ignore_label': settings.ignore_label}


def _vpq_main(argv: Sequence[str] | None, prog: str, title: str,
              settings: EvalSettings, vip: bool) -> int:
    windows = (default_windows(settings, OFFICIAL),
               default_windows(settings, 'videoknet'))
    parser = _video_parser(
        prog, f'VPQ (video panoptic quality over windows of k frames, mean '
        f'over k) for {title}.', settings, vip, windows)
    args = parser.parse_args(argv)
    settings = _settings(args, settings)
    rules = get_protocol(args.protocol)
    if args.windows is None:
        args.windows = default_windows(settings, rules.name)
    try:
        args.windows = check_windows(args.windows)
    except ValueError as err:
        parser.error(f'--windows: {err}')
    try:
        seqs = (vipseg_sequences(args.pred_dir, args.gt_dir, args.split)
                if vip else step_sequences(args.pred_dir, args.gt_dir))
        with _plain_warnings():
            res = evaluate_vpq(seqs, settings, windows=args.windows,
                               nproc=args.nproc,
                               progress=not args.no_progress,
                               protocol=rules.name)
    except (OSError, ValueError, KeyError) as err:
        return _fail(err)
    short = ('one shorter window' if rules.clip_short_sequences else
             'skipped')
    print(f'VPQ on {title}: {len(seqs)} sequences (scores in %), protocol '
          f'{rules.name} (windows {" ".join(map(str, args.windows))}; '
          f'sequences shorter than k: {short})')
    print(f'{"k":<8}{"PQ":>8}{"PQ_th":>8}{"PQ_st":>8}')
    for k, r in res['per_window'].items():
        print(f'{k:<8}{_pct(r["PQ"]):>8}{_pct(r["PQ_th"]):>8}'
              f'{_pct(r["PQ_st"]):>8}')
    print(f'{"VPQ":<8}{_pct(res["VPQ"]):>8}{_pct(res["VPQ_th"]):>8}'
          f'{_pct(res["VPQ_st"]):>8}')
    if args.json_out:
        out = dict(res)
        out['units'] = UNITS
        out['settings'] = _settings_dict(settings, rules.name)
        out['settings']['windows'] = list(args.windows)
        out['settings']['clip_short_sequences'] = rules.clip_short_sequences
        dump_json_atomic(out, args.json_out)
    return 0


def dstq_step_main(argv: Sequence[str] | None = None) -> int:
    """``tools/eval_dstq_step.py``."""
    return _stq_main(argv, 'eval_dstq_step.py', 'KITTI-STEP', KITTI_STEP,
                     vip=False)


def dvpq_step_main(argv: Sequence[str] | None = None) -> int:
    """``tools/eval_dvpq_step.py``."""
    return _vpq_main(argv, 'eval_dvpq_step.py', 'KITTI-STEP', KITTI_STEP,
                     vip=False)


def dstq_vipseg_main(argv: Sequence[str] | None = None) -> int:
    """``tools/eval_dstq_vipseg.py``."""
    return _stq_main(argv, 'eval_dstq_vipseg.py', 'VIP-Seg', VIPSEG,
                     vip=True)


def dvpq_vipseg_main(argv: Sequence[str] | None = None) -> int:
    """``tools/eval_dvpq_vipseg.py``."""
    return _vpq_main(argv, 'eval_dvpq_vipseg.py', 'VIP-Seg', VIPSEG,
                     vip=True)
