# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Benchmark knet's PQ against panopticapi's on a synthetic COCO-panoptic set.

Three comparisons on the same data, in the same process:

* single core: ``knet pq_compute(nproc=1)`` vs panopticapi's
  ``pq_compute_single_core`` (json loading and averaging included on both
  sides);
* default arguments: ``knet pq_compute()`` (one process, a few decoding
  threads) vs ``panopticapi.evaluation.pq_compute`` (which always forks one
  process per CPU);
* processes: ``knet pq_compute(nproc=cpu_count, num_threads=1)`` vs the
  same panopticapi call.

Both must agree to 1e-9 on every All/Things/Stuff and per-class number, or
the script exits with status 1.

Example::

    python tools/benchmark_pq.py --num-images 50 --json work_dirs/pq_bench.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

from eval_bootstrap import load

dump_json_atomic = load('_utils').dump_json_atomic
pq_compute = load('panoptic_quality').pq_compute
make_coco_panoptic = load('synthetic').make_coco_panoptic
png_backend = load('_png').png_backend


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--num-images', type=int, default=50)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--num-segments', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs per method; the median is reported')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', dest='json_out', help='write results here')
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


def _time_interleaved(methods: dict[str, Callable[[], Any]],
                      repeats: int) -> tuple[dict, dict, dict]:
    """Median wall and CPU (this process only) time of each method.

    Runs are interleaved so that load from other processes affects all
    methods alike; CPU time is meaningful for in-process methods only.
    """
    outs = {}
    wall = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    with contextlib.redirect_stdout(io.StringIO()):  # panopticapi prints
        for name, fn in methods.items():  # warm-up: file cache, imports
            outs[name] = fn()
        for _ in range(repeats):
            for name, fn in methods.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                outs[name] = fn()
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    med = statistics.median
    return ({k: med(v) for k, v in wall.items()},
            {k: med(v) for k, v in cpu.items()}, outs)


def _decode_times(paths: dict, repeats: int) -> dict[str, float]:
    """Time to read every PNG once the panopticapi way (PIL, uint32) and
    the knet way (libspng, ids): a floor both implementations pay."""
    import numpy as np
    from PIL import Image
    read_rgb_ids = load('_utils').read_rgb_ids
    files = [
        os.path.join(paths[folder], name)
        for folder in ('gt_folder', 'pred_folder')
        for name in sorted(os.listdir(paths[folder]))
    ]
    readers = {
        'panopticapi_decode':
        lambda: [np.array(Image.open(f), dtype=np.uint32) for f in files],
        'knet_decode': lambda: [read_rgb_ids(f) for f in files],
    }
    wall, cpu, _ = _time_interleaved(readers, repeats)
    return wall, cpu


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
            'panopticapi_single_core':
            lambda: _panopticapi_single_core(*files),
            'panopticapi_default': lambda: pe.pq_compute(*files),
            'knet_single_core':
            lambda: pq_compute(*files, nproc=1, num_threads=1),
            'knet_default': lambda: pq_compute(*files),
            'knet_processes':
            lambda: pq_compute(*files, nproc=ncpu, num_threads=1),
        }
        secs, cpu, outs = _time_interleaved(methods, args.repeats)
        decode, decode_cpu = _decode_times(paths, args.repeats)
    ref_1, ref_n = outs['panopticapi_single_core'], outs['panopticapi_default']
    diffs = {
        name: _max_diff(outs[name], ref_1 if 'single' in name else ref_n)
        for name in ('knet_single_core', 'knet_default', 'knet_processes')
    }
    diffs['panopticapi_single_vs_default'] = _max_diff(ref_1, ref_n)
    rows = [
        ('single core, in-process', 'panopticapi_single_core',
         'knet_single_core'),
        ('default arguments', 'panopticapi_default', 'knet_default'),
        (f'{ncpu} processes', 'panopticapi_default', 'knet_processes'),
    ]
    n = args.num_images
    print(f'{n} images {args.height}x{args.width}, ~{args.num_segments} '
          f'segments each, {ncpu} CPUs; median of {args.repeats} runs')
    print('panopticapi default = pq_compute (one process per CPU); knet '
          'default = pq_compute(nproc=1) with decoding threads; PNG decoder: '
          f'{png_backend()}')
    print(f'{"comparison":<26}{"panopticapi s":>14}{"knet s":>9}'
          f'{"ms/img ref":>12}{"ms/img knet":>13}{"speed-up":>10}')
    speedup = {}
    for label, ref, ours in rows:
        speedup[ours] = secs[ref] / secs[ours]
        print(f'{label:<26}{secs[ref]:>14.3f}{secs[ours]:>9.3f}'
              f'{secs[ref] / n * 1e3:>12.2f}{secs[ours] / n * 1e3:>13.2f}'
              f'{speedup[ours]:>9.2f}x')
    ref_dec, our_dec = decode['panopticapi_decode'], decode['knet_decode']
    print(f'{"PNG decoding only":<26}{ref_dec:>14.3f}{our_dec:>9.3f}'
          f'{ref_dec / n * 1e3:>12.2f}{our_dec / n * 1e3:>13.2f}'
          f'{ref_dec / our_dec:>9.2f}x')
    rest_ref = secs['panopticapi_single_core'] - ref_dec
    rest_ours = secs['knet_single_core'] - our_dec
    speedup['single_core_excluding_decoding'] = rest_ref / max(rest_ours,
                                                               1e-9)
    print(f'single core without decoding: {rest_ref:.3f} s vs '
          f'{rest_ours:.3f} s ({speedup["single_core_excluding_decoding"]:.2f}'
          f'x); decoding is {ref_dec / secs["panopticapi_single_core"]:.0%} '
          f'of panopticapi\'s single-core time')
    cpu_ratio = (cpu['panopticapi_single_core'] / cpu['knet_single_core'])
    speedup['single_core_cpu_time'] = cpu_ratio
    print(f'single core CPU time: {cpu["panopticapi_single_core"]:.3f} s vs '
          f'{cpu["knet_single_core"]:.3f} s ({cpu_ratio:.2f}x); decoding '
          f'alone {decode_cpu["panopticapi_decode"]:.3f} s vs '
          f'{decode_cpu["knet_decode"]:.3f} s')
    print(f'PQ (All) = {outs["knet_default"]["All"]["pq"]:.6f}; max '
          f'|difference| vs panopticapi: {max(diffs.values()):.3g}')
    result = {
        'num_images': n, 'height': args.height, 'width': args.width,
        'num_segments': args.num_segments, 'repeats': args.repeats,
        'cpus': ncpu, 'seconds': {**secs, **decode},
        'cpu_seconds_in_process': {
            k: v for k, v in {**cpu, **decode_cpu}.items()
            if 'default' not in k and 'processes' not in k
        },
        'speedup': speedup,
        'max_abs_diff': diffs, 'pq_all': outs['knet_default']['All'],
        'png_backend': png_backend(),
    }
    if args.json_out:
        dump_json_atomic(result, args.json_out)
    ok = all(d <= 1e-9 for d in diffs.values())
    if not ok:
        print(f'MISMATCH vs panopticapi: {diffs}', file=sys.stderr)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
