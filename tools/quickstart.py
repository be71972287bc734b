#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The main job on the built-in synthetic data: generate it if absent, train
and evaluate the panoptic, instance, semantic and video panoptic (VPS) toy
K-Nets on CPU, draw predictions and write
``work_dirs/quickstart/summary.json``.

    python tools/quickstart.py [--tasks panoptic instance semantic vps]
                               [--iters N] [--data-root data/synthetic]

``--tasks vps-toy`` also trains the paper's "toy Video K-Net" (no linking,
raw kernels as association embeddings) on the same data, to compare its AQ
with the full model's.
"""
import argparse
import json
import numbers
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

TASKS = {
    # task: (config, metric key in the runner's results, summary key)
    'panoptic': ('configs/toy/knet_s3_r18_fpn_toy-panoptic.py', 'coco_panoptic/PQ',
                 'PQ'),
    'instance': ('configs/toy/knet_s3_r18_fpn_toy-instance.py', 'coco/segm_mAP',
                 'mask_AP'),
    'semantic': ('configs/toy/knet_s3_fcn_r18_toy-semantic.py', 'mIoU', 'mIoU'),
    'vps': ('configs/toy/video_knet_s3_r18_toy-vps.py', 'video/STQ', 'STQ'),
    'vps-toy': ('configs/toy/video_knet_s3_r18_toy-vps_no-link.py',
                'video/STQ', 'STQ'),
}
DEFAULT_TASKS = ['panoptic', 'instance', 'semantic', 'vps']
#: data made up front; the video tasks generate theirs with their config's
#: parameters (``synthetic_data``) in ``ensure_config_data``
DATA_FOR_TASK = {'panoptic': 'coco', 'instance': 'coco', 'semantic': 'ade'}
#: extra metrics in the summary of the video tasks (fractions in [0, 1])
VIDEO_SUMMARY = {'STQ': 'video/STQ', 'AQ': 'video/AQ', 'SQ': 'video/SQ',
                 'VPQ': 'video/VPQ'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--tasks', nargs='+', choices=list(TASKS), default=DEFAULT_TASKS)
    parser.add_argument(
        '--iters', type=int, default=None,
        help='training iterations per task (default: the toy configs)')
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument(
        '--num-vis', type=int, default=4, help='val images to draw per task')
    return parser.parse_args(argv)


def log(msg: str) -> None:
    print(f'[quickstart {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def ensure_data(data_root: str, tasks) -> None:
    from knet.datasets.synthetic import generate
    for name in sorted({DATA_FOR_TASK[t] for t in tasks
                        if t in DATA_FOR_TASK}):
        log(f'synthetic data: {name} under {data_root} (generated if absent)')
        generate(name, data_root)


def ensure_config_data(cfg, data_root: str) -> None:
    """The data of a config's ``synthetic_data`` key, with exactly its
    parameters: a folder made with others (e.g. by an older quickstart) is
    regenerated, as for the image tasks, so that the scores are comparable
    (training / testing alone keep a complete folder)."""
    from knet.datasets.synthetic import generate
    params = dict(cfg.synthetic_data)
    task, seed = params.pop('task'), params.pop('seed', 0)
    log(f'synthetic data: {task} under {data_root} with the config\'s '
        'parameters (generated if absent or made with others)')
    generate(task, data_root, seed, progress=False, **params)


def run_task(task: str, args) -> dict:
    from mmengine.config import Config
    from mmengine.runner import Runner

    config, metric_key, _ = TASKS[task]
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.work_dir = osp.join(args.work_dir, task)
    _point_data_root(cfg, args.data_root)
    if args.iters:
        cfg.train_cfg.max_iters = args.iters
        cfg.train_cfg.val_interval = args.iters
        cfg.default_hooks.checkpoint.interval = args.iters
        for sched in cfg.param_scheduler:
            if sched.get('type') == 'CosineAnnealingLR':
                sched.update(T_max=args.iters, end=args.iters)
    # evaluated once, after training, by runner.test() below
    cfg.train_cfg.val_interval = cfg.train_cfg.max_iters + 1
    video = task.startswith('vps')
    if video:
        ensure_config_data(cfg, args.data_root)
        # the test run also writes the KITTI-STEP-format files drawn below
        cfg.test_evaluator = list(cfg.test_evaluator) + [
            _video_writer(cfg, osp.join(cfg.work_dir, 'pred'))]
    log(f'{task}: training {config} for {cfg.train_cfg.max_iters} iters')
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    if video:
        draw_video_predictions(task, cfg, args)
    else:
        ckpt = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
        draw_predictions(task, cfg, ckpt, args)
    # mmseg's IoUMetric returns numpy float32 values (not Python floats)
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, numbers.Real)}, metric_key


def _point_data_root(cfg, data_root: str) -> None:
    """Rewrite the toy configs' default data root (data/synthetic)."""
    default = 'data/synthetic'
    if data_root.rstrip('/') == default:
        return
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        ds.data_root = ds.data_root.replace(default, data_root.rstrip('/'))
    for ev in ('val_evaluator', 'test_evaluator'):
        for key in ('ann_file', 'seg_prefix'):
            if key in cfg[ev]:
                cfg[ev][key] = cfg[ev][key].replace(default,
                                                    data_root.rstrip('/'))


def _video_writer(cfg, out_dir: str) -> dict:
    """A VideoPanopticWriter for the toy STEP data (dataset classes)."""
    meta = cfg.test_dataloader.dataset.metainfo
    return dict(type='VideoPanopticWriter', out_dir=out_dir,
                num_classes=len(meta['classes']),
                thing_ids=list(meta['thing_ids']), formats=['step'])


def draw_video_predictions(task: str, cfg, args) -> None:
    """First frames of the first val video: inputs on top, predictions
    below (stuff: one grey level per class; things: one colour per track
    id, so an id kept across frames keeps its colour; void: black) in
    work_dir/vis/."""
    import mmcv
    import numpy as np
    from knet.datasets.kitti_step import list_step_videos
    ds = cfg.test_dataloader.dataset
    video = list_step_videos(ds.data_root, ds.split)[0]
    frames = video['images'][:args.num_vis]
    num_classes = len(ds.metainfo['classes'])
    greys = 60 + (np.arange(num_classes) * 150) // max(num_classes - 1, 1)
    track_palette = np.array([(230, 25, 75), (60, 180, 75), (255, 225, 25),
                              (0, 130, 200), (245, 130, 48), (145, 30, 180),
                              (70, 240, 240), (240, 50, 230), (210, 245, 60),
                              (250, 190, 212)], np.int64)
    top, bottom = [], []
    for frame in frames:
        img = mmcv.imread(frame['img_path'], channel_order='rgb')
        pred = mmcv.imread(
            osp.join(cfg.work_dir, 'pred', 'final',
                     f"{video['video_id']:04d}",
                     f"{frame['frame_id']:06d}.png"),
            flag='color', channel_order='rgb').astype(np.int64)
        cls, track = pred[..., 0], pred[..., 1] * 256 + pred[..., 2]
        colour = np.zeros(cls.shape + (3, ), np.int64)
        valid = cls < num_classes
        colour[valid] = greys[cls[valid], None]
        tracked = track > 0
        colour[tracked] = track_palette[(track[tracked] - 1) %
                                        len(track_palette)]
        top.append(img)
        bottom.append(colour.astype(np.uint8))
    out_dir = osp.join(args.work_dir, 'vis')
    os.makedirs(out_dir, exist_ok=True)
    strip = np.concatenate(
        [np.concatenate(top, 1), np.concatenate(bottom, 1)], 0)
    mmcv.imwrite(mmcv.rgb2bgr(strip), osp.join(out_dir,
                                               f'{task}_montage.png'))
    log(f'{task}: {len(frames)} frames drawn in {out_dir}')


def draw_predictions(task: str, cfg, ckpt: str, args) -> None:
    """Overlays of the first val images into work_dir/vis/<task>_*.png."""
    import mmcv
    ds = cfg.test_dataloader.dataset
    img_dir = osp.join(ds.data_root, ds.data_prefix.get('img') or
                       ds.data_prefix.get('img_path'))
    names = sorted(os.listdir(img_dir))[:args.num_vis]
    files = [osp.join(img_dir, n) for n in names]
    out_dir = osp.join(args.work_dir, 'vis')
    os.makedirs(out_dir, exist_ok=True)
    cfg_path = osp.join(cfg.work_dir, 'quickstart_config.py')
    cfg.dump(cfg_path)
    from knet.engine.checkpoint_match import build_checked_inferencer
    if cfg.get('default_scope') == 'mmseg':
        inferencer = build_checked_inferencer(cfg_path, ckpt, device='cpu')
        results = inferencer(files, return_vis=True)
        vis = results['visualization']
    else:
        inferencer = build_checked_inferencer(cfg_path, ckpt, device='cpu',
                                              show_progress=False)
        vis = inferencer(files, return_vis=True, pred_score_thr=0.3,
                         no_save_pred=True)['visualization']
    import numpy as np
    for name, img in zip(names, vis):
        out = osp.join(out_dir, f'{task}_{osp.splitext(name)[0]}.png')
        mmcv.imwrite(mmcv.rgb2bgr(img), out)
    # one strip per task: input images on top, predictions below
    inputs = [mmcv.imread(f, channel_order='rgb') for f in files]
    if len({i.shape for i in inputs + list(vis)}) == 1:
        strip = np.concatenate(
            [np.concatenate(inputs, 1), np.concatenate(list(vis), 1)], 0)
        mmcv.imwrite(mmcv.rgb2bgr(strip),
                     osp.join(out_dir, f'{task}_montage.png'))
    log(f'{task}: {len(names)} overlays in {out_dir}')


def main(argv=None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)
    import knet  # noqa: F401
    start = time.time()
    ensure_data(args.data_root, args.tasks)
    summary_path = osp.join(args.work_dir, 'summary.json')
    summary = {}
    if osp.isfile(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
    for task in args.tasks:
        t0 = time.time()
        metrics, key = run_task(task, args)
        if key not in metrics:
            raise KeyError(f'{task}: metric {key} not in {sorted(metrics)}')
        value = metrics[key]
        # mmdet reports COCO AP in [0, 1]; PQ and mIoU come in percent
        if key.startswith('coco/'):
            value *= 100
        name = TASKS[task][2]
        if task.startswith('vps'):
            entry = {k: round(float(metrics[m]), 4)
                     for k, m in VIDEO_SUMMARY.items() if m in metrics}
        else:
            entry = {name: round(value, 2)}
        entry['minutes'] = round((time.time() - t0) / 60, 1)
        summary[task] = entry
        log(f'{task}: ' + ', '.join(f'{k} = {v}' for k, v in entry.items()
                                    if k != 'minutes'))
        _write_json(summary, summary_path)
    log(f'done in {(time.time() - start) / 60:.1f} min: {summary_path}')
    print(json.dumps(summary, indent=2))
    return 0


def _write_json(obj, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


if __name__ == '__main__':
    sys.exit(main())
