#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Run a K-Net model on an image, a folder of images / frames, or a video and
draw the panoptic, instance or semantic result.

    python tools/demo.py INPUT CONFIG CHECKPOINT --out OUT [--score-thr 0.3]

INPUT is an image file, a folder of images (video frames included, read in
name order) or a video file (.mp4/.avi/...). Overlays go to OUT/vis/, raw
predictions to OUT/preds/ (det) or OUT/pred/ (seg); a short summary is
printed per image.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from collections import Counter
from typing import List

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('input', help='image, folder of images, or video')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='model checkpoint')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='score threshold for drawn instances (instance models)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda:0')
    parser.add_argument(
        '--max-frames',
        type=int,
        default=0,
        help='only the first N frames of a video (0: all)')
    args = parser.parse_args(argv)
    for path, what in ((args.input, 'input'), (args.config, 'config'),
                       (args.checkpoint, 'checkpoint')):
        if not osp.exists(path):
            parser.error(f'{what} not found: {path}')
    return args


def collect_inputs(path: str, tmp_dir: str, max_frames: int = 0) -> List[str]:
    """Image paths for an image, a folder, or the frames of a video."""
    if osp.isdir(path):
        files = sorted(
            osp.join(path, f) for f in os.listdir(path)
            if f.lower().endswith(IMG_EXTS))
        if not files:
            raise FileNotFoundError(f'no images ({", ".join(IMG_EXTS)}) in '
                                    f'{path}')
        return files
    if path.lower().endswith(VIDEO_EXTS):
        import cv2
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise OSError(f'cannot open video {path}')
        files = []
        while True:
            ok, frame = cap.read()
            if not ok or (max_frames and len(files) >= max_frames):
                break
            out = osp.join(tmp_dir, f'{len(files):06d}.png')
            cv2.imwrite(out, frame)
            files.append(out)
        cap.release()
        if not files:
            raise OSError(f'no frames could be read from {path}')
        return files
    if path.lower().endswith(IMG_EXTS):
        return [path]
    raise ValueError(f'unsupported input {path}: expected an image, a folder '
                     f'or a video ({", ".join(VIDEO_EXTS)})')


def _summarise_det(sample, classes, score_thr: float) -> str:
    if 'pred_panoptic_seg' in sample:
        import numpy as np
        pan = sample.pred_panoptic_seg.sem_seg[0].cpu().numpy()
        ids = np.unique(pan)
        labels = [int(i % 1000) for i in ids if i % 1000 < len(classes)]
        counts = Counter(classes[i] for i in labels)
        return f'{len(labels)} segments: ' + ', '.join(
            f'{n} x {c}' for c, n in counts.most_common())
    inst = sample.pred_instances
    keep = inst.scores >= score_thr
    counts = Counter(classes[int(i)] for i in inst.labels[keep])
    return f'{int(keep.sum())} instances (score >= {score_thr}): ' + \
        ', '.join(f'{n} x {c}' for c, n in counts.most_common())


def _summarise_seg(sample, classes) -> str:
    import numpy as np
    seg = sample.pred_sem_seg.data[0].cpu().numpy()
    ids, counts = np.unique(seg, return_counts=True)
    order = np.argsort(-counts)
    total = seg.size
    return ', '.join(f'{classes[ids[i]]} {100 * counts[i] / total:.0f}%'
                     for i in order[:6])


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config

    import knet  # noqa: F401
    cfg = Config.fromfile(args.config)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = collect_inputs(args.input, tmp, args.max_frames)
        print(f'{len(files)} image(s) from {args.input}', file=sys.stderr)
        if cfg.get('default_scope') == 'mmseg':
            from mmseg.apis import MMSegInferencer
            inferencer = MMSegInferencer(
                model=args.config, weights=args.checkpoint,
                device=args.device)
            classes = inferencer.model.dataset_meta['classes']
            result = inferencer(
                files, out_dir=args.out, return_datasamples=True)
            samples = result if isinstance(result, list) else [result]
            lines = [_summarise_seg(s, classes) for s in samples]
        else:
            from mmdet.apis import DetInferencer
            inferencer = DetInferencer(
                model=args.config, weights=args.checkpoint,
                device=args.device, show_progress=True)
            classes = inferencer.model.dataset_meta['classes']
            result = inferencer(
                files,
                out_dir=args.out,
                pred_score_thr=args.score_thr,
                return_datasamples=True,
                no_save_pred=False)
            lines = [
                _summarise_det(s, classes, args.score_thr)
                for s in result['predictions']
            ]
    for path, line in zip(files, lines):
        print(f'{osp.basename(path)}: {line}')
    print(f'overlays written to {osp.join(args.out, "vis")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
