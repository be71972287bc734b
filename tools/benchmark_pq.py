# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Benchmark knet's PQ (hotcoco) against panopticapi on generated data.

Comparisons on the same synthetic COCO-panoptic set, in the same run:

* default arguments: ``knet pq_compute(...)`` (hotcoco, threads on all
  CPUs) vs ``panopticapi.evaluation.pq_compute`` (one process per CPU);
* single core, in-process: knet in a child process with
  ``RAYON_NUM_THREADS=1`` vs panopticapi's ``pq_compute_single_core``
  (json loading and averaging included on both sides);
* ``hotcoco_only``: hotcoco's ``PanopticEval`` on the paths, to show what
  knet's checks (json, PNG headers, file names in errors) cost on top.

Every number must agree with panopticapi to 1e-9, and the default speed-up
must reach ``--min-speedup``, or the script exits with status 1.

Example::

    python tools/benchmark_pq.py --json work_dirs/pq_bench.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from eval_bootstrap import load

dump_json_atomic = load('_utils').dump_json_atomic
pq_compute = load('panoptic_quality').pq_compute
make_coco_panoptic = load('synthetic').make_coco_panoptic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--num-images', type=int, default=400)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--num-segments', type=int, default=15)
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed runs per method; the median is reported')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-speedup', type=float, default=0.0,
                        help='fail when the default-arguments speed-up is '
                        'lower (e.g. 3)')
    parser.add_argument('--json', dest='json_out', help='write results here')
    parser.add_argument('--time-knet', nargs=4, metavar='PATH',
                        help=argparse.SUPPRESS)  # child process mode
    return parser.parse_args(argv)


def _panopticapi_single_core(gt_json_file: str, pred_json_file: str,
                             gt_folder: str, pred_folder: str) -> dict:
    """panopticapi's pq_compute with the multi-core step done in-process."""
    from panopticapi.evaluation import pq_compute_single_core
    with open(gt_json_file) as f:
        gt_json = json.load(f)
    with open(pred_json_file) as f:
        pred_json = json.load(f)
    categories = {el['id']: el for el in gt_json['categories']}
    preds = {el['image_id']: el for el in pred_json['annotations']}
    matched = [(a, preds[a['image_id']]) for a in gt_json['annotations']]
    pq_stat = pq_compute_single_core(0, matched, gt_folder, pred_folder,
                                     categories)
    results = {}
    for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
        results[name], per_class = pq_stat.pq_average(categories, isthing)
        if name == 'All':
            results['per_class'] = per_class
    return results


def _hotcoco_only(gt_json_file: str, pred_json_file: str, gt_folder: str,
                  pred_folder: str) -> dict:
    """hotcoco on the paths, without knet's checks (not printed)."""
    from hotcoco.panoptic import PanopticEval
    evaluator = PanopticEval(gt_json_file, pred_json_file,
                             gt_folder=gt_folder, pred_folder=pred_folder)
    evaluator.evaluate()
    return evaluator.results()


def _time_interleaved(methods: dict[str, Callable[[], Any]],
                      repeats: int) -> tuple[dict, dict]:
    """Median wall time of each method, runs interleaved so that load from
    other processes affects all methods alike."""
    outs = {}
    wall = {name: [] for name in methods}
    with contextlib.redirect_stdout(io.StringIO()):  # panopticapi prints
        for name, fn in methods.items():  # warm-up: file cache, imports
            outs[name] = fn()
        for _ in range(repeats):
            for name, fn in methods.items():
                start = time.perf_counter()
                outs[name] = fn()
                wall[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in wall.items()}, outs


def _knet_one_thread(files: tuple, repeats: int) -> tuple[float, dict]:
    """knet's median time and result with hotcoco on one thread (a child
    process: the thread count is fixed when hotcoco first runs)."""
    env = dict(os.environ, RAYON_NUM_THREADS='1')
    cmd = [sys.executable, os.path.abspath(__file__), '--repeats',
           str(repeats), '--time-knet', *files]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out['result']['per_class'] = {
        int(k): v for k, v in out['result']['per_class'].items()
    }
    return out['seconds'], out['result']


def _max_diff(a: dict, b: dict) -> float:
    diff = 0.0
    for key in ('All', 'Things', 'Stuff'):
        for m in ('pq', 'sq', 'rq', 'n'):
            diff = max(diff, abs(float(a[key][m]) - float(b[key][m])))
    if set(a['per_class']) != set(b['per_class']):
        return float('inf')
    for cat, vals in b['per_class'].items():
        for m in ('pq', 'sq', 'rq'):
            diff = max(diff, abs(float(a['per_class'][cat][m]) -
                                 float(vals[m])))
    return diff


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.time_knet:  # child: time knet only, print one json line
        secs, outs = _time_interleaved(
            {'knet': lambda: pq_compute(*args.time_knet)}, args.repeats)
        print(json.dumps({'seconds': secs['knet'], 'result': outs['knet']}))
        return 0
    try:
        import panopticapi.evaluation as pe
    except ImportError:
        print('panopticapi is required for the comparison '
              '(pip install panopticapi-lite --no-deps)', file=sys.stderr)
        return 2
    ncpu = multiprocessing.cpu_count()
    with tempfile.TemporaryDirectory() as root:
        paths = make_coco_panoptic(
            root, num_images=args.num_images, height=args.height,
            width=args.width, num_segments=args.num_segments, seed=args.seed)
        files = (paths['gt_json'], paths['pred_json'], paths['gt_folder'],
                 paths['pred_folder'])
        methods = {
            'panopticapi_default': lambda: pe.pq_compute(*files),
            'knet_default': lambda: pq_compute(*files),
            'hotcoco_only': lambda: _hotcoco_only(*files),
            'panopticapi_single_core':
            lambda: _panopticapi_single_core(*files),
        }
        secs, outs = _time_interleaved(methods, args.repeats)
        secs['knet_single_core'], outs['knet_single_core'] = \
            _knet_one_thread(files, args.repeats)
    ref_1, ref_n = outs['panopticapi_single_core'], outs['panopticapi_default']
    diffs = {
        name: _max_diff(outs[name], ref_1 if 'single' in name else ref_n)
        for name in ('knet_single_core', 'knet_default')
    }
    diffs['panopticapi_single_vs_default'] = _max_diff(ref_1, ref_n)
    rows = [
        ('default arguments', 'panopticapi_default', 'knet_default'),
        ('hotcoco without knet', 'panopticapi_default', 'hotcoco_only'),
        ('single core, in-process', 'panopticapi_single_core',
         'knet_single_core'),
    ]
    n = args.num_images
    print(f'{n} images {args.height}x{args.width}, ~{args.num_segments} '
          f'segments each, {ncpu} CPUs; median of {args.repeats} runs; '
          f'load average {os.getloadavg()[0]:.2f}')
    print(f'{"comparison":<26}{"panopticapi s":>14}{"knet s":>9}'
          f'{"ms/img ref":>12}{"ms/img knet":>13}{"speed-up":>10}')
    speedup = {}
    for label, ref, ours in rows:
        speedup[ours] = secs[ref] / secs[ours]
        print(f'{label:<26}{secs[ref]:>14.3f}{secs[ours]:>9.3f}'
              f'{secs[ref] / n * 1e3:>12.2f}{secs[ours] / n * 1e3:>13.2f}'
              f'{speedup[ours]:>9.2f}x')
    print(f'PQ (All) = {outs["knet_default"]["All"]["pq"]:.6f}; max '
          f'|difference| vs panopticapi: {max(diffs.values()):.3g}')
    result = {
        'num_images': n, 'height': args.height, 'width': args.width,
        'num_segments': args.num_segments, 'repeats': args.repeats,
        'cpus': ncpu, 'load_average': os.getloadavg()[0], 'seconds': secs,
        'speedup': speedup, 'max_abs_diff': diffs,
        'pq_all': outs['knet_default']['All'],
    }
    if args.json_out:
        dump_json_atomic(result, args.json_out)
    ok = all(d <= 1e-9 for d in diffs.values())
    if not ok:
        print(f'MISMATCH vs panopticapi: {diffs}', file=sys.stderr)
    if speedup['knet_default'] < args.min_speedup:
        print(f'speed-up {speedup["knet_default"]:.2f}x is below '
              f'--min-speedup {args.min_speedup}', file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
