# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video panoptic result files written from the test loop (spec §2.10).

:class:`VideoPanopticWriter` is an mmengine metric (mmdet ``METRICS``) that
turns the model's per-frame predictions (``pred_panoptic_seg.sem_seg`` =
model class + track id * ``label_divisor``; a class outside
``[0, num_classes)`` is void) into files, any combination of:

* ``'step'``: ``OUT/final/{seq:04d}/{frame:06d}.png``, 8-bit RGB, R =
  class, G = track // 256, B = track % 256 (KITTI-STEP submission). Void and
  unassigned pixels: R = 255, instance 0 (the original wrote class 0, a
  real class, spec §9.1-2).
* ``'catins'``: ``OUT/panoptic/{seq}/{seq:06d}_{frame:06d}_cat.png`` and
  ``_ins.png``, uint16 class / track id (the original's layout; void 255).
* ``'vipseg'``: VIP-Seg's official submission, ``OUT/pan_pred/<video>/
  <frame stem>.png`` (panopticapi colours, id = R + 256 G + 256^2 B, 0 =
  void) + ``OUT/pred.json`` ``{annotations: [{video_id, annotations:
  [{image_id, file_name, segments_info: [{id, category_id, iscrowd, area}]}]
  }]}``. ``category_id`` is the 0-based VIP-Seg class id, as in the GT json
  of ``create_panoptic_video_labels.py``. Segment id = (class + 1) * 2^16 +
  track: one id per (class, track) pair for the whole video (a track that
  switches class gets a new id, which the official VPQ needs), stuff = one
  segment per class (track forced to 0).

Classes are written in the dataset space (model -> dataset through
:class:`knet.datasets.label_maps.ModelLabelMap`); ``class_space=
'stuff_first'`` writes the STEP / cat-ins classes as "stuff first" (stuff in
ascending dataset id, then things in ``thing_ids`` order), the space
``tools/eval_d{stq,vpq}_vipseg.py`` read.

Every file goes to a temporary name in its folder and is renamed, so a
killed run leaves no partial file. After the last frame of a sequence
(``frame_id == ori_video_length - 1``) its VIP-Seg json part
(``OUT/.parts/<video>.json``) and then its completion marker
(``OUT/.done/<seq>.json``) are written; ``tools/test_step.py`` skips the
marked sequences when it resumes. ``pred.json`` is assembled from the parts
by rank 0 at the end (:func:`assemble_pred_json`).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from mmdet.registry import METRICS
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ._utils import dump_json_atomic
from .metrics._collect import as_int_map as _as_numpy
from .metrics._collect import field as _field
from .metrics._collect import gather_all
from .metrics._collect import unroll_frames as _frames
from .panoptic_quality import id2rgb
from .video_eval import SequenceFrames

__all__ = [
    'FORMATS', 'VideoPanopticWriter', 'assemble_pred_json', 'read_markers',
    'default_video_name',
    'sequence_key', 'write_png_atomic', 'written_sequences', 'step_path',
    'catins_paths', 'vipseg_path'
]

FORMATS = ('step', 'catins', 'vipseg')
VOID = 255
SEGMENT_SHIFT = 16  # VIP-Seg segment id = (class + 1) << 16 | track
DONE_DIR = '.done'
PARTS_DIR = '.parts'
_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


# --------------------------------------------------------------------------
# paths and atomic writes
# --------------------------------------------------------------------------
def sequence_key(video_id: Any) -> str:
    """File-name-safe key of a sequence (marker / part file name)."""
    return _UNSAFE.sub('_', str(video_id))


def default_video_name(video_id: Any) -> str:
    """``{video_id:04d}`` for integer ids (KITTI-STEP), else the id."""
    try:
        return f'{int(video_id):04d}'
    except (TypeError, ValueError):
        return str(video_id)


def _seq_int(video_id: Any, fmt: str) -> int:
    try:
        return int(video_id)
    except (TypeError, ValueError):
        raise ValueError(
            f'VideoPanopticWriter: format "{fmt}" numbers sequences '
            f'({{seq:04d}}), but video_id={video_id!r} is not an integer; '
            f'use formats=("vipseg",) for named videos') from None


def step_path(out_dir: str, video_id: Any, frame_id: int) -> str:
    """``OUT/final/{seq:04d}/{frame:06d}.png``."""
    seq = _seq_int(video_id, 'step')
    return os.path.join(out_dir, 'final', f'{seq:04d}',
                        f'{int(frame_id):06d}.png')


def catins_paths(out_dir: str, video_id: Any,
                 frame_id: int) -> tuple[str, str]:
    """``OUT/panoptic/{seq}/{seq:06d}_{frame:06d}_{cat,ins}.png``."""
    seq = _seq_int(video_id, 'catins')
    stem = os.path.join(out_dir, 'panoptic', str(seq),
                        f'{seq:06d}_{int(frame_id):06d}')
    return stem + '_cat.png', stem + '_ins.png'


def vipseg_path(out_dir: str, video_name: str, frame_stem: str) -> str:
    """``OUT/pan_pred/<video>/<frame stem>.png``."""
    return os.path.join(out_dir, 'pan_pred', video_name, frame_stem + '.png')


def write_png_atomic(path: str, img: np.ndarray) -> None:
    """Write an (H, W) or RGB (H, W, 3) image as PNG via temp file + rename.

    Raises:
        OSError: The PNG could not be encoded or written (the temporary file
            is removed, ``path`` is untouched).
    """
    import cv2
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp.png', dir=folder)
    os.close(fd)
    try:
        data = img[..., ::-1] if img.ndim == 3 else img  # RGB -> BGR
        if not cv2.imwrite(tmp, np.ascontiguousarray(data)):
            raise OSError(f'Cannot write PNG {path} (dtype {img.dtype}, '
                          f'shape {img.shape})')
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_markers(out_dir: str) -> dict[str, dict]:
    """Completion markers of ``OUT/.done``: ``{sequence key: content}``.

    Raises:
        ValueError: A marker is not valid JSON (names the file; delete it to
            redo that sequence).
    """
    folder = os.path.join(out_dir, DONE_DIR)
    if not os.path.isdir(folder):
        return {}
    out = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith('.json') or name.startswith('.'):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                out[name[:-len('.json')]] = json.load(f)
        except (OSError, ValueError) as err:
            raise ValueError(f'Unreadable completion marker {path} ({err}); '
                             f'delete it to redo that sequence') from None
    return out


def assemble_pred_json(out_dir: str) -> str | None:
    """Write ``OUT/pred.json`` from the per-video parts (sorted by video).

    Returns:
        The path written, or None when there is no part.
    """
    folder = os.path.join(out_dir, PARTS_DIR)
    if not os.path.isdir(folder):
        return None
    videos = []
    for name in sorted(os.listdir(folder)):
        if name.endswith('.json') and not name.startswith('.'):
            with open(os.path.join(folder, name)) as f:
                videos.append(json.load(f))
    if not videos:
        return None
    videos.sort(key=lambda v: str(v['video_id']))
    path = os.path.join(out_dir, 'pred.json')
    dump_json_atomic({'annotations': videos}, path, indent=None)
    return path


# --------------------------------------------------------------------------
# the writer
# --------------------------------------------------------------------------


@METRICS.register_module()
class VideoPanopticWriter(BaseMetric):
    """Write per-frame video panoptic predictions as result files.

    Args:
        out_dir: Output root (``OUT``).
        num_classes: Number of dataset classes.
        thing_ids: Dataset ids of the thing classes, in thing-label order
            (``metainfo['thing_ids']``).
        formats: Any of ``'step'``, ``'catins'``, ``'vipseg'``.
        class_space: ``'dataset'`` or ``'stuff_first'`` for the STEP and
            cat/ins files (VIP-Seg json ids are always the dataset's).
        label_divisor: Track multiplier of ``pred_panoptic_seg``.
        fingerprint: Stored in every marker (``tools/test_step.py`` puts
            the checkpoint there, so a resumed run with another checkpoint
            is refused).
        video_names: ``{video_id: name}`` for the VIP-Seg files, used when
            a frame has no ``video_name`` metainfo (``tools/test_step.py``
            fills it from the data list); else ``{video_id:04d}`` (or the
            id as text).

    ``compute_metrics`` returns ``frames_written`` (this run, all ranks) and
    ``sequences_done`` (markers in ``OUT``, including earlier runs).
    """
    default_prefix = 'vps_files'

    def __init__(self,
                 out_dir: str,
                 num_classes: int,
                 thing_ids: Sequence[int],
                 formats: Sequence[str] = ('step', ),
                 class_space: str = 'dataset',
                 label_divisor: int = 1000,
                 fingerprint: Any = None,
                 video_names: dict | None = None,
                 collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        from knet.datasets.label_maps import ModelLabelMap
        formats = (formats, ) if isinstance(formats, str) else tuple(formats)
        bad = [f for f in formats if f not in FORMATS]
        if bad or not formats:
            raise ValueError(f'VideoPanopticWriter: formats={formats!r}; '
                             f'choose one or more of {FORMATS}')
        if class_space not in ('dataset', 'stuff_first'):
            raise ValueError(f'VideoPanopticWriter: class_space='
                             f'{class_space!r}; use "dataset" or '
                             f'"stuff_first"')
        self.out_dir = os.path.abspath(out_dir)
        self.formats = formats
        self.class_space = class_space
        self.label_divisor = int(label_divisor)
        self.fingerprint = fingerprint
        self.video_names = dict(video_names or {})
        self.labels = ModelLabelMap(num_classes, thing_ids, VOID)
        self.num_classes = self.labels.num_classes
        self.num_things = self.labels.num_things
        self._is_thing_ds = np.zeros(256, bool)
        self._is_thing_ds[list(self.labels.thing_ids)] = True
        # model label -> stuff-first id (stuff ascending, then things)
        n_stuff = self.num_classes - self.num_things
        self._stuff_first = np.full(256, VOID, np.int64)
        self._stuff_first[:self.num_things] = n_stuff + np.arange(
            self.num_things)
        self._stuff_first[self.num_things:self.num_classes] = np.arange(
            n_stuff)
        self._open: dict[str, dict] = {}  # sequences being written

    # ------------------------------------------------------------ helpers
    def decode(self, pan: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                               np.ndarray]:
        """Model panoptic map -> (model class, dataset class, track), void
        (class outside [0, num_classes)) as class 255 and track 0."""
        model = pan % self.label_divisor
        track = pan // self.label_divisor
        void = (pan < 0) | (model >= self.num_classes)
        model = np.where(void, VOID, model)
        track = np.where(void, 0, track)
        if track.size and track.max() >= 1 << SEGMENT_SHIFT:
            raise ValueError(f'VideoPanopticWriter: track id '
                             f'{int(track.max())} >= 65536 does not fit the '
                             f'STEP PNG (G*256+B)')
        return model, self.labels.to_dataset_lut[model], track

    def _meta(self, frame: Any) -> dict:
        video_id = _field(frame, 'video_id')
        frame_id = _field(frame, 'frame_id')
        length = _field(frame, 'ori_video_length',
                        _field(frame, 'video_length'))
        if video_id is None or frame_id is None or length is None:
            raise KeyError('VideoPanopticWriter: each frame needs the '
                           'metainfo "video_id", "frame_id" and '
                           '"ori_video_length" (or "video_length"); pack them '
                           'with PackVideoSegInputs')
        frame_id, length = int(frame_id), int(length)
        if frame_id >= length:
            raise ValueError(
                f'VideoPanopticWriter: frame_id {frame_id} >= video length '
                f'{length} (video {video_id}); the frame-level test needs '
                f'"ori_video_length" in the packed metainfo')
        img_path = _field(frame, 'img_path') or f'{frame_id:06d}.png'
        name = (_field(frame, 'video_name')
                or self.video_names.get(video_id)
                or self.video_names.get(str(video_id))
                or default_video_name(video_id))
        stem = os.path.splitext(os.path.basename(str(img_path)))[0]
        return dict(video_id=video_id, frame_id=frame_id, length=length,
                    name=str(name), stem=stem)

    def _file_classes(self, model: np.ndarray,
                      dataset: np.ndarray) -> np.ndarray:
        if self.class_space == 'stuff_first':
            return self._stuff_first[model]
        return dataset

    def _write_vipseg(self, meta: dict, dataset: np.ndarray,
                      track: np.ndarray) -> dict:
        void = dataset == VOID
        track = np.where(self._is_thing_ds[dataset], track, 0)
        seg = np.where(void, 0, ((dataset + 1) << SEGMENT_SHIFT) + track)
        ids, areas = np.unique(seg, return_counts=True)
        infos = [
            dict(id=int(i), category_id=int(i >> SEGMENT_SHIFT) - 1,
                 iscrowd=0, area=int(a)) for i, a in zip(ids, areas) if i
        ]
        write_png_atomic(vipseg_path(self.out_dir, meta['name'],
                                     meta['stem']), id2rgb(seg))
        return dict(image_id=meta['stem'], file_name=meta['stem'] + '.png',
                    segments_info=infos)

    def write_frame(self, frame: Any) -> dict:
        """Write every format of one frame; returns its metainfo."""
        meta = self._meta(frame)
        seg = _field(frame, 'pred_panoptic_seg')
        if seg is None:
            raise KeyError('VideoPanopticWriter: frame has no '
                           '"pred_panoptic_seg" (the model\'s predict must '
                           'set it)')
        model, dataset, track = self.decode(_as_numpy(_field(seg,
                                                             'sem_seg')))
        cls = self._file_classes(model, dataset)
        vid, fid = meta['video_id'], meta['frame_id']
        if 'step' in self.formats:
            rgb = np.stack([cls, track // 256, track % 256], -1)
            write_png_atomic(step_path(self.out_dir, vid, fid),
                             rgb.astype(np.uint8))
        if 'catins' in self.formats:
            cat_path, ins_path = catins_paths(self.out_dir, vid, fid)
            write_png_atomic(cat_path, cls.astype(np.uint16))
            write_png_atomic(ins_path, track.astype(np.uint16))
        key = sequence_key(vid)
        state = self._open.get(key)
        if fid == 0 or state is None:
            state = self._open[key] = dict(frames=set(), annotations={})
        state['frames'].add(fid)
        if 'vipseg' in self.formats:
            state['annotations'][fid] = self._write_vipseg(meta, dataset,
                                                           track)
        if fid == meta['length'] - 1:
            self._close_sequence(key, meta, state)
        return meta

    def _close_sequence(self, key: str, meta: dict, state: dict) -> None:
        """Write the VIP-Seg part and the marker of a finished sequence."""
        self._open.pop(key, None)
        if len(state['frames']) != meta['length']:
            print_log(f'VideoPanopticWriter: sequence {meta["video_id"]} '
                      f'ended with {len(state["frames"])} of '
                      f'{meta["length"]} frames written in this run; not '
                      f'marked done', logger='current', level=30)
            return
        if 'vipseg' in self.formats:
            anns = [state['annotations'][i] for i in range(meta['length'])]
            dump_json_atomic(dict(video_id=meta['name'], annotations=anns),
                             os.path.join(self.out_dir, PARTS_DIR,
                                          sequence_key(meta['name']) +
                                          '.json'), indent=None)
        dump_json_atomic(
            dict(video_id=meta['video_id'], video_name=meta['name'],
                 frames=meta['length'], formats=list(self.formats),
                 class_space=self.class_space,
                 fingerprint=self.fingerprint),
            os.path.join(self.out_dir, DONE_DIR, key + '.json'))

    # ------------------------------------------------------ metric API
    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Write the files of every frame in ``data_samples``."""
        for frame in _frames(data_samples):
            self.write_frame(frame)
            self.results.append(1)

    def compute_metrics(self, results: list) -> dict[str, int]:
        """Assemble pred.json (rank 0) and count what was written."""
        if 'vipseg' in self.formats:
            assemble_pred_json(self.out_dir)
        done = len(read_markers(self.out_dir))
        print_log(f'VideoPanopticWriter: {len(results)} frames written to '
                  f'{self.out_dir} ({", ".join(self.formats)}); {done} '
                  f'sequences complete', logger='current')
        return {'frames_written': len(results), 'sequences_done': done}

    def evaluate(self, size: int = 1) -> dict:
        """Gather the frame counts of every rank (after they have written
        their files), then :meth:`compute_metrics` on rank 0."""
        from mmengine.dist import broadcast_object_list
        results = gather_all(self.results)  # also a barrier
        box = [None]
        if is_main_process():
            values = self.compute_metrics(results)
            box = [{f'{self.prefix}/{k}' if self.prefix else k: v
                    for k, v in values.items()}]
        broadcast_object_list(box)
        self.results.clear()
        return box[0]


# --------------------------------------------------------------------------
# scoring the written files
# --------------------------------------------------------------------------
def written_sequences(out_dir: str, videos: Sequence[dict],
                      fmt: str = 'step',
                      gt_kind: str = 'step') -> list[SequenceFrames]:
    """GT / prediction file pairs of the written files, for
    :func:`~knet.evaluation.evaluate_stq` / ``evaluate_vpq``.

    Args:
        videos: mmdet video data list entries (``video_id``, ``images`` with
            ``frame_id`` and ``seg_map_path``).
        fmt: Which written format to read: ``'step'`` or ``'catins'``.
        gt_kind: Reader of ``seg_map_path``: ``'step'`` (RGB STEP PNG) or
            ``'vipseg'`` (VIP-Seg panomask).

    Raises:
        FileNotFoundError: A frame has no GT path or no written file.
    """
    if fmt not in ('step', 'catins'):
        raise ValueError(f'written_sequences: fmt={fmt!r}; the eval tools '
                         f'read "step" or "catins" files')
    out = []
    for video in videos:
        vid = video['video_id']
        seq = SequenceFrames(str(vid))
        for image in video['images']:
            gt = image.get('seg_map_path')
            if not gt:
                raise FileNotFoundError(
                    f'No ground truth for {image.get("img_path")} (its '
                    f'"seg_map_path" is empty); scoring needs annotations')
            fid = image['frame_id']
            paths = ((step_path(out_dir, vid, fid), ) if fmt == 'step' else
                     catins_paths(out_dir, vid, fid))
            for path in paths:
                if not os.path.isfile(path):
                    raise FileNotFoundError(
                        f'Missing prediction {path}: sequence {vid} is not '
                        f'complete; rerun tools/test_step.py (it resumes)')
            seq.gt.append((gt_kind, (gt, )))
            seq.pred.append((fmt, paths))
        out.append(seq)
    return out
