# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Speed / memory / complexity benchmark of mmdet and mmseg models.

Measures, on one synthetic image of a given size (random weights, nothing is
downloaded):

* ``infer``   end-to-end inference through ``mmdet.apis.DetInferencer``
  (``MMSegInferencer`` for mmseg configs): test pipeline + data
  pre-processor + model + post-processing + result conversion;
* ``tensor``  the model alone, ``mode='tensor'`` (raw head outputs);
* ``predict`` the model with its own post-processing, ``mode='predict'``
  (no data pipeline, no result conversion);
* ``train``   one training step (``model.train_step``: data pre-processor,
  forward, losses, backward, optimizer step) on synthetic ground truth
  (panoptic models get thing masks + a semantic map whose labels respect the
  model's thing / stuff split);
* peak memory (RSS growth on CPU, read from ``/proc/self/status``;
  ``torch.cuda.max_memory_allocated`` growth on GPU), parameters and FLOPs
  (mmengine's ``FlopAnalyzer`` on the tensor-mode forward).

Times are the median of ``--runs`` runs after ``--warmup`` warm-up runs.
With ``--compare`` the second model is built in the same process, fed the
same inputs, and the runs of the two models are interleaved (A, B, A, B ...)
so that background load affects both alike; ratios are ``other / ours``
(> 1: ours is faster / smaller).

Examples::

    python tools/analysis_tools/benchmark.py \
        configs/det/knet/knet_s3_r50_fpn_1x_coco-panoptic.py \
        --compare mask2former_r50_8xb2-lsj-50e_coco-panoptic \
        --input-size 800 1216 --threads 2 --runs 3 --warmup 1 \
        --json work_dirs/benchmark.json

(a bare config name is looked up in the configs packaged with mmdet / mmseg,
``mmdet::mask2former/<name>.py`` names one explicitly). Progress goes to
stderr, the table to stdout.

VPS mode (automatic when the config's model is a ``VideoKNet``, or
``--video``): online inference, one frame at a time
(``VideoKNet.predict_frame``), on a stream of ``--frames`` synthetic frames
with moving shapes (default 384x1248, KITTI-STEP). Every frame goes through
the video model, then through the image K-Net on the same input: the same
model and weights with its video parts off (no linking, no embedding, no
tracker), so the difference is exactly the tracking overhead. The pieces of
that overhead (linking, embedding, semantic filter and boxes for the
tracker, tracker) are timed by wrapping the model's methods for the run
(the model code is unchanged); the RSS is read after every
frame (goal: RSS after the last frame within 5 % of the RSS after frame
``--rss-frame``). Score / overlap thresholds are lowered so that random
weights give thing segments to track (``--keep-thresholds``)::

    python tools/analysis_tools/benchmark.py \
        configs/det/video_knet_kitti_step/video_knet_s3_r50_rpn_1x_\
kitti_step_sigmoid_stride2_mask_embed_link_ffn_joint_train.py \
        --threads 2 --frames 20 --warmup 2 --json work_dirs/vps.json
"""
import argparse
import contextlib
import copy
import ctypes
import gc
import glob
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

PHASES = ('infer', 'tensor', 'predict', 'train')
PHASE_TITLES = {
    'infer': 'end-to-end inference (Inferencer)',
    'tensor': "model forward (mode='tensor')",
    'predict': "model + post-processing (mode='predict')",
    'train': 'train step (fwd + bwd + optim)',
}


def log(msg: str) -> None:
    print(f'[benchmark {time.strftime("%H:%M:%S")}] {msg}',
          file=sys.stderr,
          flush=True)


# --------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------
def _package_config_dirs() -> Dict[str, str]:
    dirs = {}
    for pkg in ('mmdet', 'mmseg'):
        try:
            mod = __import__(pkg)
        except ImportError:  # pragma: no cover
            continue
        path = osp.join(osp.dirname(mod.__file__), '.mim', 'configs')
        if osp.isdir(path):
            dirs[pkg] = path
    return dirs


def resolve_config(name: str) -> str:
    """A config path: an existing file, ``mmdet::rel/path.py`` /
    ``mmseg::rel/path.py`` (a config packaged with mmdet / mmseg), or a bare
    file name searched for in the packaged configs."""
    if osp.isfile(name):
        return osp.abspath(name)
    dirs = _package_config_dirs()
    if '::' in name:
        pkg, rel = name.split('::', 1)
        if pkg not in dirs:
            raise FileNotFoundError(f'no packaged configs for {pkg!r}')
        path = osp.join(dirs[pkg], rel)
        if not path.endswith('.py'):
            path += '.py'
        if osp.isfile(path):
            return path
        raise FileNotFoundError(f'{name}: {path} does not exist')
    base = osp.basename(name)
    if not base.endswith('.py'):
        base += '.py'
    for root in dirs.values():
        hits = sorted(glob.glob(osp.join(root, '**', base), recursive=True))
        if hits:
            return hits[0]
    raise FileNotFoundError(f'config {name!r} not found (neither a file nor '
                            'a config packaged with mmdet / mmseg)')


def strip_pretrained(node: Any) -> int:
    """Remove every pre-trained-weight reference (``init_cfg`` of type
    ``Pretrained``, ``pretrained=...`` paths) in place; returns the count."""
    count = 0
    if isinstance(node, dict):
        for key in list(node.keys()):
            value = node[key]
            if key == 'init_cfg' and _is_pretrained_init(value):
                node[key] = None
                count += 1
            elif key == 'pretrained' and isinstance(value, str):
                node[key] = None
                count += 1
            else:
                count += strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            count += strip_pretrained(item)
    return count


def _is_pretrained_init(init_cfg: Any) -> bool:
    items = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(
        isinstance(c, dict) and (c.get('type') == 'Pretrained'
                                 or 'checkpoint' in c) for c in items)


def _find_key(node: Any, keys: Tuple[str, ...]) -> Optional[Any]:
    if isinstance(node, dict):
        for key in keys:
            if key in node and isinstance(node[key], int):
                return node[key]
        for value in node.values():
            found = _find_key(value, keys)
            if found is not None:
                return found
    elif isinstance(node, (list, tuple)):
        for item in node:
            found = _find_key(item, keys)
            if found is not None:
                return found
    return None


def _fix_test_scale(cfg, height: int, width: int) -> int:
    count = 0
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return 0
    for t in pipeline:
        if 'Resize' in str(t.get('type', '')):
            t['scale'] = (width, height)
            t['keep_ratio'] = True
            t.pop('scale_factor', None)
            count += 1
    return count


def load_config(name: str,
                cfg_options: Optional[dict] = None,
                keep_batch_augments: bool = False,
                fix_test_scale: Optional[Tuple[int, int]] = None):
    """Load a config (custom imports honoured), apply options, make sure no
    weights are downloaded. Returns (cfg, path, scope)."""
    from mmengine.config import Config
    path = resolve_config(name)
    cfg = Config.fromfile(path)  # imports ``custom_imports``
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    stripped = strip_pretrained(cfg.model)
    if stripped:
        log(f'{osp.basename(path)}: removed {stripped} pre-trained weight '
            'reference(s) (random init)')
    cfg.load_from = None
    if fix_test_scale is not None:
        _fix_test_scale(cfg, *fix_test_scale)
    scope = cfg.get('default_scope')
    if scope is None:
        scope = 'mmseg' if '/mmseg/' in path else 'mmdet'
        cfg.default_scope = scope
    if not keep_batch_augments:
        dp = cfg.model.get('data_preprocessor')
        if dp is not None and dp.get('batch_augments'):
            # e.g. Mask2Former's BatchFixedSizePad(1024, 1024) would make its
            # training input larger than the benchmark image
            dp['batch_augments'] = None
            log(f'{osp.basename(path)}: batch_augments disabled so both '
                'models train on the same input size')
    return cfg, path, scope


@contextlib.contextmanager
def scope_of(scope: str):
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        yield


# --------------------------------------------------------------------------
# memory and timing helpers
# --------------------------------------------------------------------------
def _proc_status_kb(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


_LIBC = None


def _malloc_trim() -> None:
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL('libc.so.6')
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass


class MemoryMeter:
    """Peak memory growth of one call: RSS high-water mark on CPU,
    ``torch.cuda.max_memory_allocated`` on GPU (MiB)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith('cuda')
        self.can_reset = self.cuda or _reset_peak_rss()
        self.base = 0
        self.peak_abs = None

    def start(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            _malloc_trim()
            _reset_peak_rss()
            self.base = (_proc_status_kb('VmRSS') or 0) * 1024

    def stop(self) -> Optional[float]:
        """Growth (MiB) over the start value, None if not measurable."""
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            if not self.can_reset:
                return None
            peak = (_proc_status_kb('VmHWM') or 0) * 1024
        self.peak_abs = peak / 2**20
        return max(0, peak - self.base) / 2**20


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def _summary(values: List[float]) -> Dict[str, Any]:
    return dict(
        median=statistics.median(values),
        mean=statistics.fmean(values),
        min=min(values),
        max=max(values),
        runs=values)


# --------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------
def synthetic_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random BGR uint8 image (blobs + noise), HxWx3."""
    rng = np.random.RandomState(seed)
    low = rng.randint(0, 256, (max(2, height // 64), max(2, width // 64), 3))
    import cv2
    img = cv2.resize(
        low.astype(np.uint8), (width, height),
        interpolation=cv2.INTER_LINEAR).astype(np.int16)
    img += rng.randint(-20, 21, img.shape).astype(np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_panoptic_gt(height: int,
                          width: int,
                          num_things: int,
                          num_thing_classes: int,
                          num_stuff_classes: int,
                          seed: int = 0):
    """Non-overlapping thing masks + a semantic map of stuff regions.

    Returns (thing_masks (n,H,W) uint8, thing_labels (n,), sem_seg (H,W)
    int64). Thing labels are in [0, num_thing_classes); stuff labels in
    [num_thing_classes, num_thing_classes + num_stuff_classes); the semantic
    map holds the thing label on thing pixels.
    """
    rng = np.random.RandomState(seed)
    import cv2
    if num_stuff_classes > 0:
        stuff = rng.choice(
            np.arange(num_thing_classes, num_thing_classes +
                      num_stuff_classes),
            size=min(5, num_stuff_classes),
            replace=False)
        grid = rng.choice(stuff, size=(3, 4))
        sem = cv2.resize(
            grid.astype(np.int32), (width, height),
            interpolation=cv2.INTER_NEAREST).astype(np.int64)
    else:
        sem = np.full((height, width), 255, dtype=np.int64)
    inst = np.full((height, width), -1, dtype=np.int64)
    labels = rng.randint(0, num_thing_classes, size=num_things)
    yy, xx = np.mgrid[:height, :width]
    for i in range(num_things):
        cy, cx = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
        ry = rng.uniform(0.05, 0.25) * height
        rx = rng.uniform(0.05, 0.25) * width
        inst[((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1] = i
    masks, keep = [], []
    for i in range(num_things):
        m = inst == i
        if m.any():
            masks.append(m.astype(np.uint8))
            keep.append(i)
            sem[m] = labels[i]
    masks = np.stack(masks) if masks else np.zeros((0, height, width),
                                                   np.uint8)
    return masks, labels[keep], sem


def make_det_train_data(img: np.ndarray, batch_size: int, panoptic: bool,
                        num_thing_classes: int, num_stuff_classes: int,
                        device: str) -> dict:
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks, mask2bbox
    from mmengine.structures import InstanceData, PixelData
    height, width = img.shape[:2]
    inputs, samples = [], []
    for b in range(batch_size):
        masks, labels, sem = synthetic_panoptic_gt(
            height, width, 10, num_thing_classes,
            num_stuff_classes if panoptic else 0, seed=b)
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(height, width),
                ori_shape=(height, width),
                scale_factor=(1.0, 1.0),
                flip=False,
                flip_direction=None))
        inst = InstanceData()
        inst.labels = torch.from_numpy(labels).long()
        inst.bboxes = mask2bbox(torch.from_numpy(masks).bool()).float()
        inst.masks = BitmapMasks(masks, height, width)
        sample.gt_instances = inst
        sample.ignored_instances = InstanceData(
            labels=torch.zeros(0, dtype=torch.long),
            bboxes=torch.zeros(0, 4))
        if panoptic:
            sample.gt_sem_seg = PixelData(
                sem_seg=torch.from_numpy(sem)[None])
        samples.append(sample)
        inputs.append(
            torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))))
    return dict(inputs=inputs, data_samples=samples)


def make_seg_train_data(img: np.ndarray, batch_size: int, num_classes: int,
                        device: str) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    height, width = img.shape[:2]
    inputs, samples = [], []
    for b in range(batch_size):
        rng = np.random.RandomState(b)
        import cv2
        grid = rng.randint(0, num_classes, size=(4, 6)).astype(np.int32)
        sem = cv2.resize(
            grid, (width, height),
            interpolation=cv2.INTER_NEAREST).astype(np.int64)
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(height, width),
                ori_shape=(height, width),
                scale_factor=(1.0, 1.0),
                flip=False,
                flip_direction=None))
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(sem)[None])
        samples.append(sample)
        inputs.append(
            torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))))
    return dict(inputs=inputs, data_samples=samples)


# --------------------------------------------------------------------------
# one model under test
# --------------------------------------------------------------------------
class _TensorForward(torch.nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` with one tensor input
    (what the FLOP counter traces)."""

    def __init__(self, model: torch.nn.Module, data_samples: list) -> None:
        super().__init__()
        self.model = model
        self._data_samples = data_samples

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, self._data_samples, mode='tensor')


class Subject:
    """A model under test: inferencer, prepared inputs and optim wrapper."""

    def __init__(self, name: str, args, cfg_options: Optional[dict],
                 img: np.ndarray) -> None:
        self.args = args
        self.device = args.device
        self.cfg, self.path, self.scope = load_config(
            name, cfg_options, args.keep_batch_augments,
            tuple(args.input_size) if args.fix_test_scale else None)
        self.name = osp.splitext(osp.basename(self.path))[0]
        self.task = 'seg' if self.scope == 'mmseg' else 'det'
        self.img = img
        self.imgs = [img] * args.batch_size
        self.result: Dict[str, Any] = dict(
            config=self.path,
            name=self.name,
            model_type=self.cfg.model.get('type'),
            scope=self.scope)
        self.optim_wrapper = None
        self.train_data = None
        self._build()

    # -- construction -------------------------------------------------
    def _build(self) -> None:
        log(f'building {self.name} ({self.scope}) on {self.device}')
        torch.manual_seed(0)
        with scope_of(self.scope), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            cfg = copy.deepcopy(self.cfg)
            if self.task == 'det':
                from mmdet.apis import DetInferencer
                self.inferencer = DetInferencer(
                    model=cfg,
                    weights=None,
                    device=self.device,
                    show_progress=False)
            else:
                from mmseg.apis import MMSegInferencer
                self.inferencer = MMSegInferencer(
                    model=cfg, weights=None, device=self.device)
                self.inferencer.show_progress = False
            self.model = self.inferencer.model
            # the model's own init scheme (pre-trained refs were stripped)
            torch.manual_seed(0)
            self.model.init_weights()
            self.model.eval()
        self.panoptic = self._is_panoptic()
        self.num_thing_classes = _find_key(
            self.cfg.model, ('num_things_classes', 'num_thing_classes'))
        self.num_stuff_classes = _find_key(self.cfg.model,
                                           ('num_stuff_classes', ))
        self.num_classes = _find_key(self.cfg.model, ('num_classes', ))
        if self.panoptic:
            self.num_thing_classes = self.num_thing_classes or 80
            self.num_stuff_classes = self.num_stuff_classes or 53
        elif self.task == 'det':
            self.num_thing_classes = self.num_thing_classes or \
                self.num_classes or 80
            self.num_stuff_classes = 0
        self.result.update(
            task=self.task + ('-panoptic' if self.panoptic else ''),
            params=int(sum(p.numel() for p in self.model.parameters())))
        self.result['params_m'] = self.result['params'] / 1e6
        # model inputs through the inferencer's own test pipeline
        with scope_of(self.scope):
            data = next(
                iter(
                    self.inferencer.preprocess(
                        self.imgs, batch_size=len(self.imgs))))
            if isinstance(data, (list, tuple)):  # DetInferencer: [inputs, data]
                data = data[1]
            data = self.model.data_preprocessor(data, False)
        self.inputs = data['inputs']
        self.data_samples = data['data_samples']
        self.result['input_shape'] = list(self.inputs.shape)

    def _is_panoptic(self) -> bool:
        if self.task != 'det':
            return False
        if getattr(self.model, 'panoptic_head', None) is not None:
            return True
        if getattr(self.model, 'do_panoptic', False):
            return True
        try:
            ds_type = self.cfg.test_dataloader.dataset.type
        except AttributeError:
            ds_type = ''
        return 'Panoptic' in str(ds_type)

    def _autocast(self):
        if not self.args.amp:
            return contextlib.nullcontext()
        if self.device.startswith('cuda'):
            return torch.autocast('cuda', dtype=torch.float16)
        return torch.autocast('cpu', dtype=torch.bfloat16)

    # -- phases -------------------------------------------------------
    def call_infer(self) -> None:
        with scope_of(self.scope), torch.no_grad(), self._autocast():
            if self.task == 'det':
                self.inferencer(
                    self.imgs,
                    batch_size=len(self.imgs),
                    no_save_vis=True,
                    return_vis=False)
            else:
                self.inferencer(self.imgs, batch_size=len(self.imgs))

    def call_tensor(self) -> None:
        with scope_of(self.scope), torch.no_grad(), self._autocast():
            self.model(self.inputs, self.data_samples, mode='tensor')

    def call_predict(self) -> None:
        with scope_of(self.scope), torch.no_grad(), self._autocast():
            self.model(self.inputs, self.data_samples, mode='predict')

    def prepare_train(self) -> None:
        from mmengine.optim import build_optim_wrapper
        self.model.train()
        if self.train_data is None:
            if self.task == 'det':
                self.train_data = make_det_train_data(
                    self.img, self.args.batch_size, self.panoptic,
                    self.num_thing_classes, self.num_stuff_classes or 0,
                    self.device)
            else:
                self.train_data = make_seg_train_data(
                    self.img, self.args.batch_size, self.num_classes or 19,
                    self.device)
        if self.optim_wrapper is None:
            optim_cfg = copy.deepcopy(
                self.cfg.get('optim_wrapper') or dict(
                    type='OptimWrapper',
                    optimizer=dict(type='AdamW', lr=1e-4)))
            if self.args.amp and self.device.startswith('cuda'):
                optim_cfg['type'] = 'AmpOptimWrapper'
            with scope_of(self.scope):
                self.optim_wrapper = build_optim_wrapper(
                    self.model, optim_cfg)
        self._step_data = copy.deepcopy(self.train_data)

    def call_train(self) -> None:
        amp_ctx = self._autocast() if not self.device.startswith('cuda') \
            else contextlib.nullcontext()  # AmpOptimWrapper on GPU
        with scope_of(self.scope), amp_ctx:
            log_vars = self.model.train_step(self._step_data,
                                             self.optim_wrapper)
        loss = log_vars.get('loss')
        self.last_loss = float(torch.as_tensor(loss).detach()) \
            if loss is not None else None

    def flops(self) -> None:
        from mmengine.analysis import FlopAnalyzer
        self.result.update(flops=None, gflops=None, flops_error=None)
        try:
            with scope_of(self.scope), torch.no_grad(), \
                    warnings.catch_warnings():
                warnings.simplefilter('ignore')
                self.model.eval()
                wrapper = _TensorForward(self.model, self.data_samples)
                analyzer = FlopAnalyzer(wrapper, (self.inputs, ))
                analyzer.unsupported_ops_warnings(False)
                analyzer.uncalled_modules_warnings(False)
                analyzer.tracer_warnings('none')
                total = int(analyzer.total())
                unsupported = {
                    str(k): int(v)
                    for k, v in analyzer.unsupported_ops().items()
                }
            self.result.update(
                flops=total,
                gflops=total / 1e9,
                flops_unsupported_ops=unsupported)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            self.result['flops_error'] = f'{type(exc).__name__}: {exc}'[:500]
            log(f'{self.name}: FLOP counting failed: '
                f'{self.result["flops_error"]}')

    def release(self) -> None:
        for attr in ('inferencer', 'model', 'optim_wrapper', 'inputs',
                     'data_samples', 'train_data', '_step_data'):
            if hasattr(self, attr):
                setattr(self, attr, None)
        gc.collect()


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------
def run_phase(phase: str, subjects: List[Subject], args) -> None:
    """Warm-up then timed runs, models interleaved run by run."""
    calls: Dict[str, Callable[[Subject], None]] = {
        'infer': Subject.call_infer,
        'tensor': Subject.call_tensor,
        'predict': Subject.call_predict,
        'train': Subject.call_train,
    }
    call = calls[phase]
    wall = {id(s): [] for s in subjects}
    cpu = {id(s): [] for s in subjects}
    mem = {id(s): [] for s in subjects}
    meters = {id(s): MemoryMeter(args.device) for s in subjects}
    peak_abs = {id(s): [] for s in subjects}
    for s in subjects:
        if phase == 'train':
            s.prepare_train()
        else:
            s.model.eval()
    total = args.warmup + args.runs
    for i in range(total):
        timed = i >= args.warmup
        for s in subjects:
            tag = f'run {i - args.warmup + 1}/{args.runs}' if timed else \
                f'warm-up {i + 1}/{args.warmup}'
            if phase == 'train':
                s.prepare_train()  # fresh copy of the synthetic batch
            meter = meters[id(s)]
            meter.start()
            _sync(args.device)
            c0, t0 = time.process_time(), time.perf_counter()
            call(s)
            _sync(args.device)
            t1, c1 = time.perf_counter(), time.process_time()
            grow = meter.stop()
            if grow is not None:
                mem[id(s)].append(grow)
                peak_abs[id(s)].append(meter.peak_abs)
            if timed:
                wall[id(s)].append(t1 - t0)
                cpu[id(s)].append(c1 - c0)
            log(f'{s.name} {phase} {tag}: {t1 - t0:.3f} s')
    for s in subjects:
        res = dict(
            wall_s=_summary(wall[id(s)]),
            cpu_s=_summary(cpu[id(s)]),
            peak_mem_mb=max(mem[id(s)]) if mem[id(s)] else None,
            peak_mem_abs_mb=max(peak_abs[id(s)])
            if peak_abs[id(s)] else None)
        res['throughput_img_s'] = args.batch_size / res['wall_s']['median']
        if phase == 'train':
            res['loss'] = getattr(s, 'last_loss', None)
            s.model.eval()
        s.result[phase] = res


def _phases(mode: str) -> List[str]:
    if mode == 'infer':
        return ['infer', 'tensor', 'predict']
    if mode == 'train':
        return ['train']
    return ['infer', 'tensor', 'predict', 'train']


def compute_ratios(ours: dict, other: dict) -> dict:
    ratios = {}
    for phase in PHASES:
        if phase in ours and phase in other:
            ratios[f'{phase}_time'] = (other[phase]['wall_s']['median'] /
                                       ours[phase]['wall_s']['median'])
            # best runs: the least disturbed by other load on the machine
            ratios[f'{phase}_time_min'] = (other[phase]['wall_s']['min'] /
                                           ours[phase]['wall_s']['min'])
            ratios[f'{phase}_cpu_time'] = (other[phase]['cpu_s']['median'] /
                                           ours[phase]['cpu_s']['median'])
            if ours[phase].get('peak_mem_mb') and \
                    other[phase].get('peak_mem_mb') is not None:
                ratios[f'{phase}_peak_mem'] = (other[phase]['peak_mem_mb'] /
                                               ours[phase]['peak_mem_mb'])
    ratios['params'] = other['params'] / ours['params']
    if ours.get('flops') and other.get('flops'):
        ratios['flops'] = other['flops'] / ours['flops']
    return ratios


def format_table(report: dict) -> str:
    models = report['models']
    ratios = report.get('ratios')
    mem_name = 'peak GPU mem' if report['meta']['device'].startswith(
        'cuda') else 'peak RSS growth'
    rows = []

    def fmt(v, spec='{:.3f}'):
        return '-' if v is None else spec.format(v)

    for phase in PHASES:
        if phase not in models[0]:
            continue
        title = PHASE_TITLES[phase]
        rows.append((f'{title} [s], median', [
            fmt(m[phase]['wall_s']['median']) for m in models
        ], ratios and ratios.get(f'{phase}_time')))
        rows.append(('    min / max [s] (ratio of min)', [
            f"{m[phase]['wall_s']['min']:.3f} / "
            f"{m[phase]['wall_s']['max']:.3f}" for m in models
        ], ratios and ratios.get(f'{phase}_time_min')))
        rows.append(('    process CPU time [s]', [
            fmt(m[phase]['cpu_s']['median']) for m in models
        ], ratios and ratios.get(f'{phase}_cpu_time')))
        if phase == 'infer':
            rows.append(('    throughput [img/s]', [
                fmt(m[phase]['throughput_img_s']) for m in models
            ], None))
        rows.append((f'    {mem_name} [MiB]', [
            fmt(m[phase]['peak_mem_mb'], '{:.0f}') for m in models
        ], ratios and ratios.get(f'{phase}_peak_mem')))
    rows.append(('params [M]', [fmt(m['params_m'], '{:.2f}') for m in models],
                 ratios and ratios.get('params')))
    if any('gflops' in m for m in models):
        rows.append(('FLOPs [G] (tensor forward)', [
            fmt(m.get('gflops'), '{:.1f}') for m in models
        ], ratios and ratios.get('flops')))
    names = [m['name'] for m in models]
    header = ['metric'] + names + (['other/ours'] if ratios else [])
    table = [header]
    for label, values, ratio in rows:
        line = [label] + values
        if ratios:
            line.append('' if ratio is None else f'{ratio:.2f}x')
        table.append(line)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = []
    for k, r in enumerate(table):
        out.append(' | '.join(c.ljust(w) for c, w in zip(r, widths)))
        if k == 0:
            out.append('-+-'.join('-' * w for w in widths))
    meta = report['meta']
    out.insert(
        0, f"input {meta['input_size'][0]}x{meta['input_size'][1]}, batch "
        f"{meta['batch_size']}, device {meta['device']}, threads "
        f"{meta['threads']}, {'amp' if meta['amp'] else 'fp32'}, median of "
        f"{meta['runs']} after {meta['warmup']} warm-up")
    return '\n'.join(out)


def write_json_atomic(obj: dict, path: str) -> None:
    path = osp.abspath(path)
    os.makedirs(osp.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + osp.basename(path) + '.', dir=osp.dirname(path))
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(obj, f, indent=2)
            f.write('\n')
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _versions() -> dict:
    out = dict(python=platform.python_version(), torch=torch.__version__)
    for pkg in ('mmengine', 'mmcv', 'mmdet', 'mmseg'):
        try:
            out[pkg] = __import__(pkg).__version__
        except ImportError:  # pragma: no cover
            pass
    return out


def _quiet_mmengine() -> Tuple[Any, int]:
    """Keep mmengine's chatter (paramwise optimizer options, frozen-param
    warnings, registry fallbacks) off stdout, which carries the table.
    Returns the logger and its previous level."""
    import logging
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    return logger, level


# --------------------------------------------------------------------------
# video panoptic segmentation (VPS): online inference, frame by frame
# --------------------------------------------------------------------------
#: model types that run the VPS mode (``VideoKNet`` and its original alias)
VIDEO_MODEL_TYPES = ('VideoKNet', 'VideoKNetQuansiEmbedFCJointTrain')

#: thresholds lowered in the VPS mode (``--keep-thresholds`` keeps the
#: config's): randomly initialised class scores are ~0.01 (focal loss
#: prior), below every score threshold, and random masks overlap so much
#: that few pass the 0.6 overlap filter; without this no thing segment
#: would survive and the tracker would have nothing to do
VPS_LOW_THRESHOLDS = {
    'model.test_cfg.rcnn.merge_stuff_thing.instance_score_thr': 0.0,
    'model.test_cfg.rcnn.merge_stuff_thing.overlap_thr': 0.0,
    'model.tracker.init_score_thr': 0.0,
    'model.tracker.obj_score_thr': 0.0,
}

#: the pieces of ``VideoKNet.predict_frame`` that the image model does not
#: run; their sum is the tracking overhead
OVERHEAD_PIECES = ('link', 'embed', 'semantic_filter', 'track_boxes',
                   'tracker')
PIECE_TITLES = {
    'link': 'kernel linking (last stage)',
    'embed': 'association embedding',
    'semantic_filter': 'semantic filter (thing pixels, full size)',
    'track_boxes': 'boxes of the thing masks',
    'tracker': 'quasi-dense tracker',
}


def is_video_config(cfg) -> bool:
    """True when the config's model runs online VPS (``VideoKNet``)."""
    return cfg.model.get('type') in VIDEO_MODEL_TYPES


class SyntheticVideo:
    """A stream of BGR frames: a fixed smooth background with coloured
    ellipses and rectangles moving at constant speed, bouncing off the
    borders, so that consecutive frames differ and a tracker has work."""

    def __init__(self, height: int, width: int, num_shapes: int = 6,
                 seed: int = 0) -> None:
        rng = np.random.RandomState(seed + 1)
        self.height, self.width = height, width
        self.background = synthetic_image(height, width, seed)
        size = np.array([height, width], dtype=np.float64)
        self.start = rng.uniform(0.15, 0.85, (num_shapes, 2)) * size
        # (dy, dx) in pixels per frame: 0.5 - 2 % of the image side
        self.velocity = rng.uniform(0.005, 0.02, (num_shapes, 2)) * size * \
            rng.choice([-1, 1], (num_shapes, 2))
        self.half_axes = rng.uniform(0.04, 0.12, (num_shapes, 2)) * size
        self.colors = rng.randint(0, 256, (num_shapes, 3))
        self.is_ellipse = np.arange(num_shapes) % 2 == 0

    def centers(self, t: int) -> np.ndarray:
        """(num_shapes, 2) (y, x) centres at frame ``t`` (reflected at the
        borders: a triangle wave over ``[0, side - 1]``)."""
        side = np.array([self.height - 1, self.width - 1], dtype=np.float64)
        pos = np.mod(self.start + self.velocity * t, 2 * side)
        return np.where(pos > side, 2 * side - pos, pos)

    def frame(self, t: int) -> np.ndarray:
        """The (H, W, 3) uint8 frame ``t``."""
        import cv2
        img = self.background.copy()
        for (cy, cx), (ay, ax), color, ellipse in zip(
                self.centers(t), self.half_axes, self.colors,
                self.is_ellipse):
            center, color = (int(cx), int(cy)), tuple(int(c) for c in color)
            if ellipse:
                cv2.ellipse(img, center, (int(ax), int(ay)), 0, 0, 360,
                            color, -1)
            else:
                cv2.rectangle(img, (int(cx - ax), int(cy - ay)),
                              (int(cx + ax), int(cy + ay)), color, -1)
        return img


class PieceTimer:
    """Wall time of wrapped callables, summed per piece name, so the
    pieces of ``predict_frame`` are timed without changing the model."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.totals: Dict[str, float] = {}
        self._undo: List[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, piece: str) -> None:
        """Replace ``owner.attr`` by a timed call of the original."""
        original = getattr(owner, attr)
        own = attr in getattr(owner, '__dict__', {})

        def timed(*args, **kwargs):
            _sync(self.device)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                _sync(self.device)
                self.totals[piece] = self.totals.get(piece, 0.0) + \
                    time.perf_counter() - start

        setattr(owner, attr, timed)
        if own:
            self._undo.append(lambda: setattr(owner, attr, original))
        else:
            self._undo.append(lambda: delattr(owner, attr))

    def take(self) -> Dict[str, float]:
        """The totals since the last call (every piece, 0 if not run)."""
        out = {p: self.totals.get(p, 0.0) for p in OVERHEAD_PIECES}
        self.totals = {}
        return out

    def restore(self) -> None:
        """Put every original back (last wrapped first)."""
        while self._undo:
            self._undo.pop()()


def hook_overhead_pieces(model: torch.nn.Module,
                         timer: PieceTimer) -> None:
    """Time linking / fusion (every update stage), the embedding, the
    semantic filter and boxes for the tracker, and the tracker of a
    ``VideoKNet``."""
    import knet.models.video.video_knet as video_knet
    for stage in model.roi_head.mask_head:
        timer.wrap(stage, 'link', 'link')
        timer.wrap(stage, 'fuse_previous', 'link')
    timer.wrap(model, 'embed', 'embed')
    timer.wrap(model, '_semantic_thing_pixels', 'semantic_filter')
    timer.wrap(video_knet, 'masks_to_track_boxes', 'track_boxes')
    if model.tracker is not None:
        timer.wrap(model.tracker, 'track', 'tracker')


@contextlib.contextmanager
def video_parts_off(model: torch.nn.Module):
    """Run a ``VideoKNet`` as the image K-Net of the same weights: no
    linking, no embedding, no tracker (what ``model.link_previous=False
    model.tracker=None`` builds); the video state is restored after."""
    saved = (model.link_previous, model.tracker, model._memory)
    model.link_previous, model.tracker = False, None
    try:
        yield model
    finally:
        model.link_previous, model.tracker, model._memory = saved


def _rss_mb() -> float:
    return (_proc_status_kb('VmRSS') or 0) / 1024


class VideoSubject:
    """A ``VideoKNet`` with random weights, fed one synthetic frame at a
    time; the image baseline is the same model with its video parts off."""

    def __init__(self, args, cfg_options: Optional[dict]) -> None:
        self.args = args
        self.device = args.device
        options = dict(cfg_options or {})
        self.lowered = {} if args.keep_thresholds else \
            dict(VPS_LOW_THRESHOLDS)
        options.update(self.lowered)
        self.cfg, self.path, self.scope = load_config(args.config, options)
        if not is_video_config(self.cfg):
            raise ValueError(
                f'{self.path}: model.type is {self.cfg.model.get("type")!r}; '
                f'the VPS mode (--video) needs one of {VIDEO_MODEL_TYPES}')
        self.name = osp.splitext(osp.basename(self.path))[0]
        self._build()

    def _build(self) -> None:
        from mmdet.registry import MODELS
        from mmengine.model import revert_sync_batchnorm
        log(f'building {self.name} (VideoKNet) on {self.device}')
        with scope_of(self.scope), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.manual_seed(0)
            model = MODELS.build(copy.deepcopy(self.cfg.model))
            torch.manual_seed(0)
            model.init_weights()
        if not self.device.startswith('cuda'):
            model = revert_sync_batchnorm(model)
        self.model = model.to(self.device).eval()
        params = int(sum(p.numel() for p in self.model.parameters()))
        self.result = dict(
            config=self.path, name=self.name,
            model_type=self.cfg.model.get('type'), scope=self.scope,
            params=params, params_m=params / 1e6)

    def _autocast(self):
        if not self.args.amp:
            return contextlib.nullcontext()
        if self.device.startswith('cuda'):
            return torch.autocast('cuda', dtype=torch.float16)
        return torch.autocast('cpu', dtype=torch.bfloat16)

    def prepare(self, img: np.ndarray, frame_id: int,
                num_frames: int) -> Tuple[torch.Tensor, dict]:
        """(1, C, H, W) normalised, padded input and the frame's metainfo,
        through the config's own data preprocessor."""
        from mmdet.structures import DetDataSample, TrackDataSample
        height, width = img.shape[:2]
        frame = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0), flip=False, flip_direction=None,
            frame_id=frame_id, video_id=0, video_length=num_frames,
            img_id=frame_id, img_path=f'synthetic/{frame_id:06d}.png'))
        sample = TrackDataSample(metainfo=dict(
            key_frames_inds=[0], ref_frames_inds=[]))
        sample.video_data_samples = [frame]
        chw = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        with scope_of(self.scope), torch.no_grad():
            data = self.model.data_preprocessor(
                dict(inputs=[chw[None]], data_samples=[sample]), False)
        return data['inputs'][:, 0], data['data_samples'][0][0].metainfo

    def run_frame(self, img: torch.Tensor, meta: dict):
        """``predict_frame`` (resetting at frame 0): prediction, wall and
        process CPU seconds."""
        with scope_of(self.scope), torch.no_grad(), self._autocast():
            _sync(self.device)
            c0, t0 = time.process_time(), time.perf_counter()
            if int(meta['frame_id']) == 0:
                self.model.reset()
            pred = self.model.predict_frame(img, meta)
            _sync(self.device)
            return pred, time.perf_counter() - t0, time.process_time() - c0


def _memory_sample(device: str) -> Dict[str, Optional[float]]:
    out = dict(rss_mb=_rss_mb())
    if device.startswith('cuda'):
        out['cuda_allocated_mb'] = torch.cuda.memory_allocated() / 2**20
    return out


def run_vps_stream(subject: VideoSubject, args) -> dict:
    """Frames 0..N-1 through the video model, each followed by the image
    baseline on the same input; per-frame times, overhead pieces, memory."""
    from knet.models.postprocessing import INSTANCE_OFFSET
    num = args.frames
    video = SyntheticVideo(*args.input_size, seed=args.seed)
    timer = PieceTimer(args.device)
    hook_overhead_pieces(subject.model, timer)
    rec: Dict[str, list] = {k: [] for k in (
        'video_s', 'video_cpu_s', 'image_s', 'image_cpu_s', 'num_things',
        'num_tracked', 'max_track_id', 'segments_identical', 'rss_mb',
        'cuda_allocated_mb')}
    rec.update({f'{p}_s': [] for p in OVERHEAD_PIECES})
    gc.collect()
    _malloc_trim()
    can_peak = _reset_peak_rss()
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    rss_start = _rss_mb()
    trimmed: Dict[int, float] = {}
    try:
        for t in range(num):
            img, meta = subject.prepare(video.frame(t), t, num)
            timer.take()
            pred, wall, cpu = subject.run_frame(img, meta)
            pieces = timer.take()
            if args.no_image_baseline:
                image_pred, image_wall, image_cpu = None, None, None
            else:
                with video_parts_off(subject.model):
                    image_pred, image_wall, image_cpu = subject.run_frame(
                        img, meta)
            ids = pred.instances.instances_id
            rec['video_s'].append(wall)
            rec['video_cpu_s'].append(cpu)
            rec['image_s'].append(image_wall)
            rec['image_cpu_s'].append(image_cpu)
            for p in OVERHEAD_PIECES:
                rec[f'{p}_s'].append(pieces[p])
            rec['num_things'].append(int(ids.numel()))
            rec['num_tracked'].append(int((ids > 0).sum()))
            rec['max_track_id'].append(int(ids.max()) if ids.numel() else 0)
            rec['segments_identical'].append(
                None if image_pred is None else bool(torch.equal(
                    pred.panoptic % INSTANCE_OFFSET,
                    image_pred.panoptic % INSTANCE_OFFSET)))
            del pred, image_pred, img
            mem = _memory_sample(args.device)
            rec['rss_mb'].append(mem['rss_mb'])
            rec['cuda_allocated_mb'].append(mem.get('cuda_allocated_mb'))
            if t + 1 in (min(args.rss_frame, num), num):
                # live memory: freed heap pages handed back to the system
                gc.collect()
                _malloc_trim()
                trimmed[t + 1] = _rss_mb()
            log(f'frame {t + 1}/{num}: video {wall:.3f} s'
                + ('' if image_wall is None else
                   f', image {image_wall:.3f} s')
                + f', {rec["num_things"][-1]} things, '
                f'{rec["num_tracked"][-1]} tracked, '
                f'RSS {mem["rss_mb"]:.0f} MiB')
    finally:
        timer.restore()
    peak_rss = (_proc_status_kb('VmHWM') or 0) / 1024 if can_peak else None
    peak_cuda = (torch.cuda.max_memory_allocated() / 2**20
                 if args.device.startswith('cuda') else None)
    return dict(per_frame=rec, rss_start_mb=rss_start, peak_rss_mb=peak_rss,
                peak_cuda_allocated_mb=peak_cuda, rss_trimmed_mb=trimmed)


def summarize_vps(stream: dict, args) -> dict:
    """Medians over the timed frames, the overhead fraction and the memory
    growth between frame ``--rss-frame`` and the last frame."""
    rec = stream['per_frame']
    timed = slice(min(args.warmup, args.frames - 1), None)
    out: Dict[str, Any] = dict(
        timed_frames=[args.warmup + 1, args.frames] if args.warmup <
        args.frames else [args.frames, args.frames])
    video = rec['video_s'][timed]
    out['video_s'] = _summary(video)
    out['video_cpu_s'] = _summary(rec['video_cpu_s'][timed])
    pieces = {p: _summary(rec[f'{p}_s'][timed]) for p in OVERHEAD_PIECES}
    per_frame_overhead = [
        sum(rec[f'{p}_s'][i] for p in OVERHEAD_PIECES)
        for i in range(args.frames)][timed]
    pieces['total'] = _summary(per_frame_overhead)
    overhead = dict(pieces_s=pieces, goal_fraction=0.15)
    if not args.no_image_baseline:
        image = rec['image_s'][timed]
        out['image_s'] = _summary(image)
        out['image_cpu_s'] = _summary(rec['image_cpu_s'][timed])
        image_med = out['image_s']['median']
        overhead['fraction_by_piece'] = {
            p: pieces[p]['median'] / image_med for p in OVERHEAD_PIECES}
        # the pieces timed inside the video frame (their per-frame sum),
        # over the image time: the precise estimate; the difference of the
        # two models' medians is the cross-check. The per-piece medians do
        # not add up to it: the pieces' costly frames differ (the tracker
        # costs more with more tracks in memory, the boxes with more things)
        overhead['fraction'] = pieces['total']['median'] / image_med
        overhead['fraction_mean'] = pieces['total']['mean'] / \
            out['image_s']['mean']
        overhead['fraction_diff_of_medians'] = (
            out['video_s']['median'] - image_med) / image_med
        overhead['fraction_paired_median'] = statistics.median(
            (v - i) / i for v, i in zip(video, image))
        # best frames: the least disturbed by other load on the machine
        overhead['fraction_diff_of_min'] = (
            out['video_s']['min'] - out['image_s']['min']) / \
            out['image_s']['min']
        overhead['goal_met'] = overhead['fraction'] <= 0.15
        out['segments_identical'] = all(rec['segments_identical'])
    out['overhead'] = overhead
    rss = rec['rss_mb']
    k = min(args.rss_frame, args.frames)
    memory = dict(
        rss_frames=[k, args.frames],
        rss_at_mb=[rss[k - 1], rss[-1]],
        rss_start_mb=stream['rss_start_mb'],
        peak_rss_mb=stream['peak_rss_mb'],
        growth_fraction=(rss[-1] - rss[k - 1]) / rss[k - 1],
        goal_fraction=0.05)
    memory['goal_met'] = abs(memory['growth_fraction']) <= 0.05
    # the same two frames after gc + malloc_trim: live memory, without the
    # allocator's frame-to-frame swings of freed but retained heap
    trimmed = stream['rss_trimmed_mb']
    memory['rss_trimmed_at_mb'] = [trimmed[k], trimmed[args.frames]]
    memory['trimmed_growth_fraction'] = (
        trimmed[args.frames] - trimmed[k]) / trimmed[k]
    memory['trimmed_goal_met'] = abs(
        memory['trimmed_growth_fraction']) <= 0.05
    if args.device.startswith('cuda'):
        cuda = rec['cuda_allocated_mb']
        memory.update(cuda_allocated_at_mb=[cuda[k - 1], cuda[-1]],
                      peak_cuda_allocated_mb=stream[
                          'peak_cuda_allocated_mb'])
    out['memory'] = memory
    out['tracking'] = dict(
        mean_things_per_frame=statistics.fmean(rec['num_things']),
        mean_tracked_per_frame=statistics.fmean(rec['num_tracked']),
        tracks_started=max(rec['max_track_id']))
    return out


def format_vps_table(report: dict) -> str:
    """Text table of a VPS report (video vs image K-Net per frame)."""
    meta, vps = report['meta'], report['vps']
    base = 'image_s' in vps
    rows: List[Tuple[str, str, str, str]] = []

    def sec(s):
        return f"{s['median']:.3f}"

    def pct(f):
        return f'{100 * f:.1f}%'

    rows.append(('per-frame time [s], median', sec(vps['video_s']),
                 sec(vps['image_s']) if base else '-',
                 f"{vps['video_s']['median'] / vps['image_s']['median']:.3f}"
                 'x' if base else ''))
    rows.append(('    min / max [s]',
                 f"{vps['video_s']['min']:.3f} / {vps['video_s']['max']:.3f}",
                 f"{vps['image_s']['min']:.3f} / {vps['image_s']['max']:.3f}"
                 if base else '-', ''))
    rows.append(('    process CPU time [s]', sec(vps['video_cpu_s']),
                 sec(vps['image_cpu_s']) if base else '-', ''))
    ov = vps['overhead']
    for p in OVERHEAD_PIECES:
        rows.append((f'    {PIECE_TITLES[p]} [s]',
                     f"{ov['pieces_s'][p]['median']:.4f}", '',
                     pct(ov['fraction_by_piece'][p]) if base else ''))
    rows.append(('tracking overhead [s] (median of frame sums)',
                 f"{ov['pieces_s']['total']['median']:.4f}", '',
                 (pct(ov['fraction']) + ' of image (goal <= 15%: '
                  + ('met' if ov['goal_met'] else 'NOT met') + ')')
                 if base else ''))
    rows.append(('    mean [s]', f"{ov['pieces_s']['total']['mean']:.4f}",
                 '', pct(ov['fraction_mean']) + ' (of the mean)'
                 if base else ''))
    if base:
        rows.append(('    cross-check: (video - image) / image', '', '',
                     f"{pct(ov['fraction_diff_of_medians'])} (medians), "
                     f"{pct(ov['fraction_paired_median'])} (paired), "
                     f"{pct(ov['fraction_diff_of_min'])} (min)"))
    mem = vps['memory']
    k, n = mem['rss_frames']
    rows.append((f'RSS after frame {k} / {n} [MiB]',
                 f"{mem['rss_at_mb'][0]:.0f} / {mem['rss_at_mb'][1]:.0f}",
                 '', f"{100 * mem['growth_fraction']:+.2f}% (goal within "
                 f"5%: {'met' if mem['goal_met'] else 'NOT met'})"))
    rows.append(('    after gc + malloc_trim [MiB]',
                 f"{mem['rss_trimmed_at_mb'][0]:.0f} / "
                 f"{mem['rss_trimmed_at_mb'][1]:.0f}", '',
                 f"{100 * mem['trimmed_growth_fraction']:+.2f}% ("
                 f"{'met' if mem['trimmed_goal_met'] else 'NOT met'})"))
    if mem['peak_rss_mb'] is not None:
        rows.append(('peak RSS over the stream [MiB]',
                     f"{mem['peak_rss_mb']:.0f}", '',
                     'both models' if base else ''))
    if mem.get('peak_cuda_allocated_mb') is not None:
        rows.append(('peak GPU memory allocated [MiB]',
                     f"{mem['peak_cuda_allocated_mb']:.0f}", '', ''))
    tr = vps['tracking']
    rows.append(('thing segments / tracked per frame (mean)',
                 f"{tr['mean_things_per_frame']:.1f} / "
                 f"{tr['mean_tracked_per_frame']:.1f}", '',
                 f"{tr['tracks_started']} tracks started"))
    rows.append(('params [M]', f"{report['models'][0]['params_m']:.2f}",
                 'same weights' if base else '', ''))
    header = ('metric', 'Video K-Net',
              'image K-Net' if base else '(no baseline)', 'note')
    table = [header] + [tuple(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    out = []
    for j, r in enumerate(table):
        out.append(' | '.join(c.ljust(w) for c, w in zip(r, widths)))
        if j == 0:
            out.append('-+-'.join('-' * w for w in widths))
    lowered = meta.get('thresholds_lowered') or {}
    out.insert(0, (
        f"VPS online inference, input {meta['input_size'][0]}x"
        f"{meta['input_size'][1]}, device {meta['device']}, threads "
        f"{meta['threads']}, {'amp' if meta['amp'] else 'fp32'}, "
        f"{meta['frames']} frames, medians over frames "
        f"{vps['timed_frames'][0]}..{vps['timed_frames'][1]}"))
    if lowered:
        out.insert(1, 'thresholds lowered for random weights: ' +
                   ', '.join(f'{k}={v}' for k, v in lowered.items()))
    return '\n'.join(out)


def _run_vps(args) -> dict:
    """The VPS mode: one stream, video vs image K-Net, per frame."""
    if args.compare:
        raise SystemExit('--compare is not supported in the VPS mode: the '
                         'image baseline is the same model with its video '
                         'parts off (drop --compare)')
    load_start = os.getloadavg() if hasattr(os, 'getloadavg') else None
    started = time.time()
    subject = VideoSubject(args, parse_cfg_options(args.cfg_options))
    if subject.lowered:
        log('thresholds lowered for random weights: ' + ', '.join(
            f'{k}={v}' for k, v in subject.lowered.items()))
    stream = run_vps_stream(subject, args)
    vps = summarize_vps(stream, args)
    vps['per_frame'] = stream['per_frame']
    height, width = args.input_size
    report = dict(
        meta=dict(
            mode='vps', device=args.device,
            device_name=(torch.cuda.get_device_name(args.device)
                         if args.device.startswith('cuda') else _cpu_name()),
            cpu_count=os.cpu_count(), threads=torch.get_num_threads(),
            input_size=[height, width], frames=args.frames,
            warmup=args.warmup, rss_frame=args.rss_frame, amp=args.amp,
            dtype='amp' if args.amp else 'fp32', seed=args.seed,
            thresholds_lowered=subject.lowered,
            baseline=None if args.no_image_baseline else (
                'image K-Net: the same model and weights with link_previous'
                '=False and tracker=None (no linking, embedding, tracker), '
                'run on the same frame right after the video model'),
            time_scope='VideoKNet.predict_frame (data preprocessing '
            'excluded)',
            versions=_versions(),
            loadavg_start=list(load_start) if load_start else None,
            loadavg_end=list(os.getloadavg())
            if hasattr(os, 'getloadavg') else None,
            started=time.strftime('%Y-%m-%dT%H:%M:%S',
                                  time.localtime(started)),
            elapsed_s=time.time() - started),
        models=[subject.result],
        vps=vps)
    subject.model = None
    gc.collect()
    print(format_vps_table(report), flush=True)
    if args.json:
        write_json_atomic(report, args.json)
        log(f'wrote {args.json}')
    return report


def parse_cfg_options(items: Optional[List[str]]) -> Optional[dict]:
    if not items:
        return None
    from mmengine.config import DictAction
    ns = argparse.Namespace()
    DictAction(option_strings=[], dest='opts')(None, ns, items)
    return ns.opts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Speed / memory / FLOPs benchmark of an mmdet or mmseg '
        'config (random weights, synthetic image).')
    parser.add_argument('config', help='config file, mmdet::rel/path.py or '
                        'the name of a config packaged with mmdet / mmseg')
    parser.add_argument(
        '--compare', help='a second config run in the same process')
    parser.add_argument(
        '--input-size', type=int, nargs=2, default=None,
        metavar=('H', 'W'), help='synthetic image size (default 800 1216; '
        'VPS mode: 384 1248, KITTI-STEP)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--threads', type=int, default=None,
        help='torch.set_num_threads (default: leave torch\'s default)')
    parser.add_argument(
        '--mode', choices=['infer', 'train', 'all'], default='all')
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument('--device', default='cpu',
                        help="'cpu' or 'cuda' (or 'cuda:N')")
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed precision (fp16 autocast + AmpOptimWrapper on GPU, '
        'bf16 autocast on CPU)')
    parser.add_argument('--no-flops', action='store_true',
                        help='skip FLOP counting')
    parser.add_argument(
        '--keep-batch-augments', action='store_true',
        help='keep the configs\' train-time batch augments (e.g. '
        'Mask2Former pads training batches to 1024x1024)')
    parser.add_argument(
        '--cfg-options', nargs='+', metavar='KEY=VALUE',
        help='override settings of the first config')
    parser.add_argument(
        '--compare-cfg-options', nargs='+', metavar='KEY=VALUE',
        help='override settings of the --compare config')
    parser.add_argument(
        '--fix-test-scale', action='store_true',
        help='set every Resize of the test pipelines to the input size, so '
        'the models see the image unscaled (by default the configs\' test '
        'pipelines are used as they are; 800x1216 / 800x1333 pass the '
        'COCO (1333, 800) keep-ratio Resize unchanged)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic image')
    vps = parser.add_argument_group(
        'VPS mode (online video inference; on by default when the config\'s '
        'model is a VideoKNet)')
    vps.add_argument('--video', action='store_true',
                     help='force the VPS mode (fails unless the model is a '
                     'VideoKNet)')
    vps.add_argument('--frames', type=int, default=200,
                     help='frames in the synthetic stream (default 200); '
                     'the first --warmup frames are not timed')
    vps.add_argument('--rss-frame', type=int, default=10,
                     help='compare the RSS after this frame with the RSS '
                     'after the last one (default 10)')
    vps.add_argument('--no-image-baseline', action='store_true',
                     help='run the video model only (no image K-Net on the '
                     'same frames): for long memory runs')
    vps.add_argument('--keep-thresholds', action='store_true',
                     help='keep the config\'s score / overlap thresholds '
                     '(by default they are lowered so that random weights '
                     'give thing segments to track)')
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error('--frames must be >= 1')
    if args.rss_frame < 1:
        parser.error('--rss-frame must be >= 1')
    if args.runs < 1:
        parser.error('--runs must be >= 1')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda requested but CUDA is not available')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        try:
            import cv2
            cv2.setNumThreads(args.threads)
        except ImportError:  # pragma: no cover
            pass
    import knet  # noqa: F401  (registers K-Net; harmless for others)
    logger, level = _quiet_mmengine()
    try:
        if args.video or _config_is_video(args.config):
            args.input_size = args.input_size or [384, 1248]
            return _run_vps(args)
        args.input_size = args.input_size or [800, 1216]
        return _run(args)
    finally:
        logger.setLevel(level)


def _config_is_video(name: str) -> bool:
    """Whether a config's model is a ``VideoKNet`` (selects the VPS
    mode)."""
    from mmengine.config import Config
    return is_video_config(Config.fromfile(resolve_config(name)))


def _run(args) -> dict:
    height, width = args.input_size
    img = synthetic_image(height, width, args.seed)
    load_start = os.getloadavg() if hasattr(os, 'getloadavg') else None
    started = time.time()

    names = [(args.config, parse_cfg_options(args.cfg_options))]
    if args.compare:
        names.append((args.compare,
                      parse_cfg_options(args.compare_cfg_options)))
    subjects = [Subject(n, args, o, img) for n, o in names]

    for phase in _phases(args.mode):
        log(f'phase {phase}: {PHASE_TITLES[phase]}')
        run_phase(phase, subjects, args)
    if args.mode != 'train' and not args.no_flops:
        for s in subjects:
            log(f'{s.name}: counting FLOPs')
            s.flops()

    report = dict(
        meta=dict(
            device=args.device,
            device_name=(torch.cuda.get_device_name(args.device)
                         if args.device.startswith('cuda') else _cpu_name()),
            cpu_count=os.cpu_count(),
            threads=torch.get_num_threads(),
            input_size=[height, width],
            batch_size=args.batch_size,
            runs=args.runs,
            warmup=args.warmup,
            mode=args.mode,
            amp=args.amp,
            dtype='amp' if args.amp else 'fp32',
            seed=args.seed,
            versions=_versions(),
            loadavg_start=list(load_start) if load_start else None,
            loadavg_end=list(os.getloadavg())
            if hasattr(os, 'getloadavg') else None,
            started=time.strftime('%Y-%m-%dT%H:%M:%S',
                                  time.localtime(started)),
            elapsed_s=time.time() - started,
            memory_metric=('torch.cuda.max_memory_allocated growth'
                           if args.device.startswith('cuda') else
                           'RSS high-water-mark growth (/proc/self/status '
                           'VmHWM after clear_refs)'),
            time_ratio='other / ours (> 1: ours is faster)'),
        models=[s.result for s in subjects])
    if len(subjects) == 2:
        report['ratios'] = compute_ratios(subjects[0].result,
                                          subjects[1].result)
    for s in subjects:
        s.release()
    print(format_table(report), flush=True)
    if args.json:
        write_json_atomic(report, args.json)
        log(f'wrote {args.json}')
    return report


if __name__ == '__main__':
    main()
