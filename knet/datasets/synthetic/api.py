# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""``generate`` / ``generate_all``: parameter resolution, skip-if-up-to-date, atomic publishing.

Each task unit is rendered into a private staging folder ``<out>/.<unit>.partial-<pid>``
(every file written temp + ``os.replace``, ``meta.json`` last) and then swapped
into ``<out>/<unit>`` with renames, so an interrupted run never leaves a
folder that looks complete. A unit whose ``meta.json`` matches the requested
parameters (and whose file count matches) is skipped.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .classes import SYNTHETIC_STUFF_CLASSES, SYNTHETIC_THING_CLASSES, check_classes
from .fileio import write_json
from .formats import write_ade, write_coco, write_step, write_vspw, write_ytvis
from .scene import SceneConfig

logger = logging.getLogger(__name__)

#: Bump when the rendered pixels or file formats change: old outputs are regenerated.
FORMAT_VERSION = 1
GENERATOR = 'knet.datasets.synthetic'
DEFAULT_OUT_DIR = 'data/synthetic'

#: Task names accepted by ``generate`` (``coco`` and ``panoptic`` share the ``coco`` unit).
TASKS: tuple[str, ...] = ('coco', 'panoptic', 'ade', 'step', 'ytvis', 'vspw')
_UNIT = {'coco': 'coco', 'panoptic': 'coco', 'ade': 'ade', 'step': 'step', 'ytvis': 'ytvis',
         'vspw': 'vspw'}
_VIDEO_UNITS = ('step', 'ytvis', 'vspw')

#: Default parameters per unit (sizes chosen so that all units take a few seconds on 2 CPUs).
TASK_DEFAULTS: dict[str, dict] = {
    'coco': dict(num_train=200, num_val=50, size=(128, 128)),
    'ade': dict(num_train=200, num_val=50, size=(128, 128)),
    'step': dict(num_train=6, num_val=3, num_frames=8, size=(128, 256)),
    'ytvis': dict(num_train=8, num_val=4, num_frames=8, size=(128, 128)),
    'vspw': dict(num_train=8, num_val=4, num_frames=8, size=(128, 128)),
}
_COMMON_DEFAULTS = dict(difficulty=0.0, thing_classes=SYNTHETIC_THING_CLASSES,
                        stuff_classes=SYNTHETIC_STUFF_CLASSES)
# crowd groups only where the format has a crowd notion; void everywhere
_SCENE_FLAGS = {'coco': dict(allow_crowd=True), 'ade': dict(allow_crowd=False),
                'step': dict(allow_crowd=True), 'ytvis': dict(allow_crowd=False),
                'vspw': dict(allow_crowd=False)}


def task_dir(task: str, out_dir: str | os.PathLike = DEFAULT_OUT_DIR) -> Path:
    """Folder a task is written to (``coco`` and ``panoptic`` share ``<out>/coco``)."""
    return Path(out_dir) / _unit(task)


def _unit(task: str) -> str:
    """Output unit of a task name, with a helpful error for unknown names."""
    if task not in _UNIT:
        raise ValueError(f'unknown synthetic task {task!r}; choose from {TASKS}')
    return _UNIT[task]


def resolve_params(task: str, seed: int = 0, **params) -> dict:
    """Full, JSON-normalised parameter dict of a task (defaults + overrides), as stored in meta.json."""
    unit = _unit(task)
    allowed = dict(_COMMON_DEFAULTS, **TASK_DEFAULTS[unit])
    unknown = set(params) - set(allowed)
    if unknown:
        raise TypeError(f'unknown parameter(s) for task {task!r}: {sorted(unknown)}; '
                        f'allowed: {sorted(allowed)}')
    merged = dict(allowed, **{k: v for k, v in params.items() if v is not None})
    things, stuff = check_classes(merged['thing_classes'], merged['stuff_classes'])
    size = tuple(int(s) for s in merged['size'])
    if len(size) != 2:
        raise ValueError(f'size must be (height, width), got {merged["size"]}')
    out = dict(seed=int(seed), size=list(size), num_train=int(merged['num_train']),
               num_val=int(merged['num_val']), difficulty=float(merged['difficulty']),
               thing_classes=list(things), stuff_classes=list(stuff))
    if int(seed) < 0 or out['num_train'] < 0 or out['num_val'] < 0:
        raise ValueError('seed and split sizes must be non-negative')
    if unit in _VIDEO_UNITS:
        out['num_frames'] = int(merged['num_frames'])
        if out['num_frames'] < 2:
            raise ValueError('num_frames must be >= 2 for video tasks')
    return out


def _expected_meta(unit: str, params: dict) -> dict:
    """meta.json content apart from the file count."""
    return {'generator': GENERATOR, 'format_version': FORMAT_VERSION, 'task': unit,
            'params': params}


def _count_files(folder: Path) -> int:
    """Number of regular files below ``folder`` except meta.json."""
    return sum(1 for p in folder.rglob('*') if p.is_file() and p.name != 'meta.json')


def _read_meta(folder: Path) -> dict | None:
    """Parsed meta.json of a folder, or None if missing / unreadable / not a dict."""
    try:
        meta = json.loads((folder / 'meta.json').read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def is_up_to_date(task: str, out_dir: str | os.PathLike = DEFAULT_OUT_DIR, seed: int = 0,
                  **params) -> bool:
    """True if ``task``'s folder holds a complete output generated with exactly these parameters."""
    unit = _unit(task)
    folder = task_dir(task, out_dir)
    meta = _read_meta(folder)
    if meta is None:
        return False
    expected = _expected_meta(unit, resolve_params(task, seed, **params))
    if {k: meta.get(k) for k in expected} != expected:
        return False
    return meta.get('num_files') == _count_files(folder)


def _pid_alive(pid: int) -> bool:
    """Whether a process id is still running (staging folders of dead runs are garbage)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clean_stale(out: Path, unit: str) -> None:
    """Remove staging / old folders left behind by crashed runs of this unit."""
    for p in out.glob(f'.{unit}.*-*'):
        try:
            pid = int(p.name.rsplit('-', 1)[1])
        except ValueError:
            continue
        if pid == os.getpid() or not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _write_unit(unit: str, root: Path, params: dict, show_progress: bool) -> None:
    """Dispatch to the format writer of a unit."""
    height, width = params['size']
    cfg = SceneConfig(height=height, width=width, thing_classes=tuple(params['thing_classes']),
                      stuff_classes=tuple(params['stuff_classes']),
                      difficulty=params['difficulty'], **_SCENE_FLAGS[unit])
    args = (root, params['seed'], cfg, params['num_train'], params['num_val'])
    if unit == 'coco':
        write_coco(*args, show_progress=show_progress)
    elif unit == 'ade':
        write_ade(*args, show_progress=show_progress)
    else:
        writer = {'step': write_step, 'ytvis': write_ytvis, 'vspw': write_vspw}[unit]
        writer(*args, params['num_frames'], show_progress=show_progress)


def generate(task: str, out_dir: str | os.PathLike = DEFAULT_OUT_DIR, seed: int = 0, *,
             force: bool = False, progress: bool = True, **params) -> Path:
    """Write one synthetic dataset (skipped if already up to date); returns its folder.

    ``params``: ``num_train``, ``num_val``, ``size=(H, W)``, ``difficulty`` (0..1),
    ``thing_classes``, ``stuff_classes`` and, for video tasks, ``num_frames``.
    ``force=True`` regenerates even an up-to-date folder or one without meta.json.
    """
    unit = _unit(task)
    resolved = resolve_params(task, seed, **params)
    out = Path(out_dir)
    target = out / unit
    if not force and is_up_to_date(task, out, seed, **params):
        logger.info('synthetic %s: up to date in %s, skipped', unit, target)
        return target
    if target.exists() and not force and _read_meta(target) is None and (
            not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(
            f'{target} exists but has no readable meta.json of the synthetic generator; '
            'delete it or pass force=True (--force) to overwrite it')
    out.mkdir(parents=True, exist_ok=True)
    _clean_stale(out, unit)
    staging = out / f'.{unit}.partial-{os.getpid()}'
    start = time.perf_counter()
    try:
        _write_unit(unit, staging, resolved, progress)
        write_json(staging / 'meta.json',
                   dict(_expected_meta(unit, resolved), num_files=_count_files(staging)))
        if not force and is_up_to_date(task, out, seed, **params):
            return target  # a concurrent run published the same data meanwhile
        old = out / f'.{unit}.old-{os.getpid()}'
        if target.exists() or target.is_symlink():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info('synthetic %s: generated in %s (%.1fs)', unit, target,
                time.perf_counter() - start)
    return target


def generate_all(out_dir: str | os.PathLike = DEFAULT_OUT_DIR, seed: int = 0,
                 tasks: Sequence[str] | None = None, *, force: bool = False,
                 progress: bool = True, **params) -> dict[str, Path]:
    """Generate several tasks (default: all); video-only params are dropped for image tasks."""
    tasks = list(TASKS if tasks is None else tasks)
    done: dict[str, Path] = {}
    for task in _dedup(tasks):
        task_params = {k: v for k, v in params.items()
                       if not (k == 'num_frames' and _unit(task) not in _VIDEO_UNITS)}
        done[task] = generate(task, out_dir, seed, force=force and _unit(task) not in
                              {_unit(t) for t in done}, progress=progress, **task_params)
    return done


def _dedup(tasks: Iterable[str]) -> list[str]:
    """Tasks in order, validated, without repeats."""
    seen: list[str] = []
    for t in tasks:
        _unit(t)
        if t not in seen:
            seen.append(t)
    return seen
