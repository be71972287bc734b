# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""A/B of K-Net's panoptic post-processing: the previous formulation
(``rescale_masks`` + ``panoptic_merge`` on (N, H, W) probabilities) against
the banded :func:`knet.models.postprocessing.panoptic_merge_logits`, on
synthetic stride-4 mask logits. Checks that the outputs are identical and
reports the median time and the peak RSS growth of each (runs interleaved).

    python tools/analysis_tools/bench_postprocessing.py --size 800 1216 \
        --threads 2 --runs 5

With ``--config`` the A/B is done on a whole K-Net panoptic model instead
(random weights, synthetic image of ``--size``): ``mode='predict'`` and
end-to-end ``DetInferencer`` times with the head's panoptic step in its
previous and its current form, and the predictions are compared.
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


def previous_panoptic(head, cls_probs, mask_logits, img_meta, cfg):
    """``KernelIterHead._panoptic`` as it was before the banded path."""
    from knet.models.postprocessing import panoptic_scores
    merge_cfg = cfg.get('merge_stuff_thing', {})
    scores, labels = panoptic_scores(cls_probs, head.num_proposals,
                                     head.num_thing_classes)
    return panoptic_merge(
        scores,
        labels,
        previous_rescale(mask_logits, img_meta),
        head.num_proposals,
        void_label=head.num_classes,
        overlap_thr=merge_cfg.get('overlap_thr', 0.6),
        instance_score_thr=merge_cfg.get('instance_score_thr', 0.3),
        segment_id_start=merge_cfg.get('segment_id_start', 1))


def model_ab(args) -> None:
    import types

    import benchmark as bm
    import knet  # noqa: F401
    bm._quiet_mmengine()
    bench_args = bm.parse_args(
        [args.config, '--input-size',
         str(args.size[0]),
         str(args.size[1])])
    img = bm.synthetic_image(*args.size)
    subject = bm.Subject(args.config, bench_args, None, img)
    head = subject.model.roi_head
    current_fn = head._panoptic
    previous_fn = types.MethodType(previous_panoptic, head)

    def run(phase, use_previous):
        head._panoptic = previous_fn if use_previous else current_fn
        try:
            if phase == 'predict':
                with bm.scope_of(subject.scope), torch.no_grad():
                    return subject.model(
                        subject.inputs, subject.data_samples,
                        mode='predict')[0].pred_panoptic_seg.sem_seg.clone()
            subject.call_infer()
        finally:
            head._panoptic = current_fn

    assert torch.equal(run('predict', True), run('predict', False)), \
        'predictions differ'
    meter = MemoryMeter('cpu')
    print(f'{subject.name}, {args.size[0]}x{args.size[1]}, '
          f'{torch.get_num_threads()} thread(s), median of {args.runs} '
          '(runs interleaved); predictions identical')
    for phase in ('predict', 'infer'):
        times = {True: [], False: []}
        mems = {True: [], False: []}
        run(phase, True)
        run(phase, False)
        for _ in range(args.runs):
            for use_previous in (True, False):
                meter.start()
                t0 = time.perf_counter()
                run(phase, use_previous)
                times[use_previous].append(time.perf_counter() - t0)
                mems[use_previous].append(meter.stop() or float('nan'))
        before = statistics.median(times[True])
        after = statistics.median(times[False])
        print(f'  {phase:8s}: previous {before:.3f} s (min '
              f'{min(times[True]):.3f}, peak RSS growth '
              f'{max(mems[True]):.0f} MiB) -> current {after:.3f} s (min '
              f'{min(times[False]):.3f}, {max(mems[False]):.0f} MiB): '
              f'{before / after:.2f}x')


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
    parser.add_argument('--config', help='A/B on this K-Net panoptic model')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.config:
        return model_ab(args)
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
    speedup = statistics.median(times['previous']) / statistics.median(
        times['current'])
    print(f'  speed-up: {speedup:.2f}x')


if __name__ == '__main__':
    main()
