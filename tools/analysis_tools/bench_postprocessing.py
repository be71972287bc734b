# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""A/B of K-Net's panoptic post-processing: the previous formulation
(``rescale_masks`` + ``panoptic_merge`` on (N, H, W) probabilities) against
the banded :func:`knet.models.postprocessing.panoptic_merge_logits`, on
synthetic stride-4 mask logits. Checks that the outputs are identical and
reports the median time and the peak RSS growth of each (runs interleaved).

    python tools/analysis_tools/bench_postprocessing.py --size 800 1216 \
        --threads 2 --runs 5
"""
import argparse
import gc
import os.path as osp
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark import MemoryMeter  # noqa: E402

from knet.models.postprocessing import (panoptic_merge,  # noqa: E402
                                        panoptic_merge_logits)


def previous_rescale(mask_logits, img_meta):
    """``rescale_masks`` as it was before the banded path (both resizes)."""
    probs = mask_logits.sigmoid()[None]
    probs = F.interpolate(
        probs,
        size=tuple(img_meta['batch_input_shape']),
        mode='bilinear',
        align_corners=False)
    img_h, img_w = img_meta['img_shape'][:2]
    probs = probs[..., :img_h, :img_w]
    probs = F.interpolate(
        probs,
        size=tuple(img_meta['ori_shape'][:2]),
        mode='bilinear',
        align_corners=False)
    return probs[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, nargs=2, default=[800, 1216],
                        metavar=('H', 'W'), help='padded = image = original')
    parser.add_argument('--ori-size', type=int, nargs=2, default=None,
                        metavar=('H', 'W'),
                        help='original size if the image was resized')
    parser.add_argument('--kernels', type=int, default=153)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--runs', type=int, default=5)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = args.size
    meta = dict(batch_input_shape=(height, width), img_shape=(height, width),
                ori_shape=tuple(args.ori_size or (height, width)))
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(args.kernels, height // 4, width // 4,
                         generator=gen) * 3
    scores = torch.rand(args.kernels, generator=gen)
    labels = torch.randint(0, 133, (args.kernels, ), generator=gen)
    n_things = min(100, args.kernels)

    def previous():
        return panoptic_merge(scores, labels,
                              previous_rescale(logits, meta), n_things, 133)

    def current():
        return panoptic_merge_logits(scores, labels, logits, meta, n_things,
                                     133)

    assert torch.equal(previous(), current()), 'outputs differ'
    times = {'previous': [], 'current': []}
    mems = {'previous': [], 'current': []}
    meter = MemoryMeter('cpu')
    for _ in range(args.runs):
        for name, fn in (('previous', previous), ('current', current)):
            gc.collect()
            meter.start()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            mems[name].append(meter.stop())
    print(f'{args.kernels} kernels, {height}x{width} -> {meta["ori_shape"]}, '
          f'{torch.get_num_threads()} thread(s), median of {args.runs}; '
          'outputs identical')
    for name in times:
        mem = max(m for m in mems[name] if m is not None) \
            if any(m is not None for m in mems[name]) else float('nan')
        print(f'  {name:8s}: {statistics.median(times[name]):.3f} s, '
              f'peak RSS growth {mem:.0f} MiB')
    print(f'  speed-up: {statistics.median(times["previous"]) / '
          f'statistics.median(times["current"]):.2f}x')


if __name__ == '__main__':
    main()
