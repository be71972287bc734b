#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Run a K-Net model on an image, a folder of images / frames, or a video and
draw the panoptic, instance or semantic result.

    python tools/demo.py INPUT CONFIG CHECKPOINT --out OUT [--score-thr 0.3]
                         [--allow-partial]

INPUT is an image file, a folder of images (video frames included, read in
name order) or a video file (.mp4/.avi/...). Overlays go to OUT/vis/, raw
predictions to OUT/preds/NAME.json (det: mmdet's DetInferencer format,
labels, scores, boxes, RLE masks; panoptic models also
OUT/preds/NAME_panoptic_seg.png, COCO-panoptic RGB ids) or OUT/pred/NAME.png
(seg: class index per pixel); a short summary is printed per image.
A checkpoint that does not fit the config's model stops the demo with the
list of differences; --allow-partial runs it anyway.
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
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='run even if the checkpoint does not fit the model (missing / '
        'unexpected / mis-shaped keys keep their initial weights)')
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='load checkpoints with full pickle (runs code in the file: '
        'trusted files only); same as KNET_UNSAFE_LOAD=1')
    args = parser.parse_args(argv)
    if args.unsafe_load:  # every rank parses its args; children inherit
        os.environ['KNET_UNSAFE_LOAD'] = '1'
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


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(
        prefix='.' + osp.basename(path) + '.', dir=osp.dirname(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _png_bytes(array) -> bytes:
    import cv2
    ok, buf = cv2.imencode('.png', array)
    if not ok:
        raise OSError('cannot encode a PNG')
    return buf.tobytes()


def save_seg_pred(sample, path: str, out_dir: str) -> str:
    """``OUT/pred/NAME.png``: the class index of every pixel."""
    import numpy as np
    seg = sample.pred_sem_seg.data[0].cpu().numpy()
    dtype = np.uint8 if seg.max(initial=0) < 256 else np.uint16
    out = osp.join(out_dir, osp.splitext(osp.basename(path))[0] + '.png')
    _write_atomic(out, _png_bytes(seg.astype(dtype)))
    return out


def save_det_pred(inferencer, sample, path: str, out_dir: str) -> str:
    """``OUT/preds/NAME.json`` (+ ``NAME_panoptic_seg.png``) in the
    format of mmdet's DetInferencer."""
    import json
    stem = osp.splitext(osp.basename(path))[0]
    result = inferencer.pred2dict(sample.clone(), pred_out_dir='')
    pan = result.pop('panoptic_seg', None)
    if pan is not None:
        pan_path = osp.join(out_dir, stem + '_panoptic_seg.png')
        _write_atomic(pan_path, _png_bytes(pan[:, :, ::-1]))  # RGB -> BGR
        result['panoptic_seg_path'] = pan_path
    out = osp.join(out_dir, stem + '.json')
    _write_atomic(out, json.dumps(result).encode())
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config

    import knet  # noqa: F401
    from knet.engine.checkpoint_match import (CheckpointMismatchError,
                                              build_checked_inferencer)
    cfg = Config.fromfile(args.config)
    is_seg = cfg.get('default_scope') == 'mmseg'
    extra = {} if is_seg else dict(show_progress=True)
    try:
        inferencer = build_checked_inferencer(
            args.config, args.checkpoint, args.device,
            allow_partial=args.allow_partial, **extra)
    except CheckpointMismatchError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    pred_dir = osp.join(args.out, 'pred' if is_seg else 'preds')
    os.makedirs(pred_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = collect_inputs(args.input, tmp, args.max_frames)
        print(f'{len(files)} image(s) from {args.input}', file=sys.stderr)
        if is_seg:
            classes = inferencer.model.dataset_meta['classes']
            result = inferencer(
                files, out_dir=args.out, return_datasamples=True)
            samples = result if isinstance(result, list) else [result]
            lines = [_summarise_seg(s, classes) for s in samples]
            for path, sample in zip(files, samples):
                save_seg_pred(sample, path, pred_dir)
        else:
            classes = inferencer.model.dataset_meta['classes']
            result = inferencer(
                files,
                out_dir=args.out,
                pred_score_thr=args.score_thr,
                return_datasamples=True,
                no_save_pred=True)
            samples = result['predictions']
            lines = [
                _summarise_det(s, classes, args.score_thr) for s in samples
            ]
            for path, sample in zip(files, samples):
                save_det_pred(inferencer, sample, path, pred_dir)
    for path, line in zip(files, lines):
        print(f'{osp.basename(path)}: {line}')
    print(f'overlays written to {osp.abspath(osp.join(args.out, "vis"))}')
    print(f'raw predictions written to {osp.abspath(pred_dir)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
