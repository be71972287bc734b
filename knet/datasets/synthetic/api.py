# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""``generate`` / ``generate_all``: parameters, skip-if-up-to-date, publishing.

A unit is rendered into a private staging folder ``<out>/.<unit>.partial-N``
(each file written to a temp name, then ``os.replace``-d; meta.json last),
then swapped into ``<out>/<unit>`` by renames, so an interrupted run never
leaves a folder that looks complete. A unit whose meta.json records the
requested parameters, and whose file count matches, is skipped.

Check-and-write runs under an exclusive ``fcntl.flock`` on
``<out>/.<unit>.lock``: of several processes (e.g. the ranks of a
distributed run) one writes, the others wait and then find it complete.
A folder without meta.json that holds only the unit's own entries is a
half-written leftover and is replaced; any other folder is refused.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, staging renames only
    fcntl = None

from .classes import (SYNTHETIC_STUFF_CLASSES, SYNTHETIC_THING_CLASSES,
                      check_classes)
from .fileio import write_json
from .formats import write_ade, write_coco, write_step, write_vspw, write_ytvis
from .scene import SceneConfig

logger = logging.getLogger(__name__)

#: Bump when pixels or file formats change: older outputs are regenerated.
FORMAT_VERSION = 1
GENERATOR = 'knet.datasets.synthetic'
DEFAULT_OUT_DIR = 'data/synthetic'

#: Task names; ``coco`` and ``panoptic`` share one unit (folder ``coco``).
TASKS: tuple[str, ...] = ('coco', 'panoptic', 'ade', 'step', 'ytvis', 'vspw')
_UNIT = {task: task for task in TASKS}
_UNIT['panoptic'] = 'coco'
VIDEO_TASKS: tuple[str, ...] = ('step', 'ytvis', 'vspw')

#: Default parameters per unit (all units together: ~25 s on 2 CPU cores).
TASK_DEFAULTS: dict[str, dict] = {
    'coco': dict(num_train=1000, num_val=50, size=(128, 128)),
    'ade': dict(num_train=200, num_val=50, size=(128, 128)),
    'step': dict(num_train=6, num_val=3, num_frames=8, size=(128, 256),
                 classes_per_video=0),
    'ytvis': dict(num_train=8, num_val=4, num_frames=8, size=(128, 128),
                  classes_per_video=0),
    'vspw': dict(num_train=8, num_val=4, num_frames=8, size=(128, 128),
                 classes_per_video=0),
}
_COMMON_DEFAULTS = dict(
    difficulty=0.0,
    thing_classes=SYNTHETIC_THING_CLASSES,
    stuff_classes=SYNTHETIC_STUFF_CLASSES)
# crowd groups only where the format has a crowd notion
_ALLOW_CROWD = {
    'coco': True,
    'ade': False,
    'step': True,
    'ytvis': False,
    'vspw': False
}


#: Top-level entries each unit's writer creates (meta.json aside): a folder
#: holding nothing else, without meta.json, is a half-written leftover.
_UNIT_ENTRIES = {
    'coco': {'train', 'val', 'annotations'},
    'ade': {'images', 'annotations'},
    'step': {'video_sequence'},
    'ytvis': {'train', 'valid', 'annotations'},
    'vspw': {'data', 'train.txt', 'val.txt', 'label_num_dic_final.json'},
}


def _unit(task: str) -> str:
    """Output unit of a task name (helpful error for unknown names)."""
    if task not in _UNIT:
        raise ValueError(f'unknown synthetic task {task!r}; '
                         f'choose from {TASKS}')
    return _UNIT[task]


def task_dir(task: str, out_dir: str | os.PathLike = DEFAULT_OUT_DIR) -> Path:
    """Folder a task is written to (``panoptic`` shares ``<out>/coco``)."""
    return Path(out_dir) / _unit(task)


def resolve_params(task: str, seed: int = 0, **params) -> dict:
    """Complete JSON-ready parameters of a task, as stored in meta.json."""
    unit = _unit(task)
    allowed = dict(_COMMON_DEFAULTS, **TASK_DEFAULTS[unit])
    unknown = set(params) - set(allowed)
    if unknown:
        raise TypeError(f'unknown parameter(s) for task {task!r}: '
                        f'{sorted(unknown)}; allowed: {sorted(allowed)}')
    given = {k: v for k, v in params.items() if v is not None}
    merged = dict(allowed, **given)
    things, stuff = check_classes(merged['thing_classes'],
                                  merged['stuff_classes'])
    size = [int(s) for s in merged['size']]
    if len(size) != 2:
        raise ValueError(f'size must be (height, width), got {size}')
    out = dict(
        seed=int(seed),
        size=size,
        num_train=int(merged['num_train']),
        num_val=int(merged['num_val']),
        difficulty=float(merged['difficulty']),
        thing_classes=list(things),
        stuff_classes=list(stuff))
    if min(out['seed'], out['num_train'], out['num_val']) < 0:
        raise ValueError('seed and split sizes must be non-negative')
    if unit in VIDEO_TASKS:
        out['num_frames'] = int(merged['num_frames'])
        if out['num_frames'] < 2:
            raise ValueError('num_frames must be >= 2 for video tasks')
        out['classes_per_video'] = int(merged['classes_per_video'])
        if not 0 <= out['classes_per_video'] <= len(things):
            raise ValueError(
                'classes_per_video must be in [0, number of thing classes '
                f'({len(things)})], got {out["classes_per_video"]}')
    return out


def _expected_meta(unit: str, params: dict) -> dict:
    """meta.json content apart from the file count."""
    return {
        'generator': GENERATOR,
        'format_version': FORMAT_VERSION,
        'task': unit,
        'params': params
    }


def _count_files(folder: Path) -> int:
    """Number of regular files below ``folder``, meta.json excluded."""
    return sum(1 for p in folder.rglob('*')
               if p.is_file() and p.name != 'meta.json')


def _read_meta(folder: Path) -> dict | None:
    """Parsed meta.json of a folder; None if missing, unreadable or odd."""
    try:
        meta = json.loads((folder / 'meta.json').read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def is_up_to_date(task: str,
                  out_dir: str | os.PathLike = DEFAULT_OUT_DIR,
                  seed: int = 0,
                  **params) -> bool:
    """Whether ``task``'s folder is complete and made with these parameters."""
    unit = _unit(task)
    folder = task_dir(task, out_dir)
    meta = _read_meta(folder)
    if meta is None:
        return False
    expected = _expected_meta(unit, resolve_params(task, seed, **params))
    if {k: meta.get(k) for k in expected} != expected:
        return False
    return meta.get('num_files') == _count_files(folder)


def is_complete(task: str,
                out_dir: str | os.PathLike = DEFAULT_OUT_DIR) -> bool:
    """Whether ``task``'s folder is complete, whatever its parameters."""
    unit = _unit(task)
    folder = task_dir(task, out_dir)
    meta = _read_meta(folder)
    return (meta is not None and meta.get('generator') == GENERATOR
            and meta.get('format_version') == FORMAT_VERSION
            and meta.get('task') == unit
            and meta.get('num_files') == _count_files(folder))


@contextlib.contextmanager
def unit_lock(out_dir: str | os.PathLike, task: str) -> Iterator[None]:
    """Hold the exclusive lock ``<out>/.<unit>.lock`` (blocks until free)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(out / f'.{_unit(task)}.lock', 'a+b') as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    """Whether a process still runs (else its staging folder is garbage)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: exists, not ours
        return True
    return True


def _clean_stale(out: Path, unit: str) -> None:
    """Remove staging / old folders that crashed runs of a unit left."""
    for p in out.glob(f'.{unit}.*-*'):
        try:
            pid = int(p.name.rsplit('-', 1)[1])
        except ValueError:
            continue
        if pid == os.getpid() or not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _write_unit(unit: str, root: Path, params: dict,
                show_progress: bool) -> None:
    """Render a unit's scenes and write its files with the format writer."""
    height, width = params['size']
    cfg = SceneConfig(
        height=height,
        width=width,
        thing_classes=tuple(params['thing_classes']),
        stuff_classes=tuple(params['stuff_classes']),
        difficulty=params['difficulty'],
        allow_crowd=_ALLOW_CROWD[unit],
        classes_per_video=params.get('classes_per_video', 0))
    args = (root, params['seed'], cfg, params['num_train'], params['num_val'])
    if unit == 'coco':
        write_coco(*args, show_progress=show_progress)
    elif unit == 'ade':
        write_ade(*args, show_progress=show_progress)
    else:
        writer = {
            'step': write_step,
            'ytvis': write_ytvis,
            'vspw': write_vspw
        }[unit]
        writer(*args, params['num_frames'], show_progress=show_progress)


def _is_foreign(target: Path, unit: str) -> bool:
    """A non-empty path without our meta.json (even a corrupt one is ours)
    holding anything but the unit's own entries (else: half-written)."""
    if not target.exists() or (target / 'meta.json').is_file():
        return False
    if not target.is_dir():
        return True
    names = {p.name for p in target.iterdir()}
    return bool(names) and not names <= _UNIT_ENTRIES[unit]


def generate(task: str,
             out_dir: str | os.PathLike = DEFAULT_OUT_DIR,
             seed: int = 0,
             *,
             force: bool = False,
             progress: bool = True,
             keep_complete: bool = False,
             **params) -> Path:
    """Write one synthetic dataset unless up to date; return its folder.

    ``params``: ``num_train``, ``num_val``, ``size=(H, W)``, ``difficulty``
    (0 = learnable default .. 1 = hard), ``thing_classes``,
    ``stuff_classes`` and, for video tasks, ``num_frames`` and
    ``classes_per_video`` (``None`` = default). ``force=True`` regenerates
    even an up-to-date folder and replaces a folder that has no meta.json
    (refused otherwise, unless it holds only the unit's own entries: a
    half-written leftover).
    ``keep_complete=True`` keeps a complete folder made with other
    parameters (only missing or incomplete data is written).
    """
    return generate_with_status(
        task,
        out_dir,
        seed,
        force=force,
        progress=progress,
        keep_complete=keep_complete,
        **params)[0]


def _usable(task: str, out: Path, seed: int, keep_complete: bool,
            params: dict) -> bool:
    """Whether the task's folder can be used as it is."""
    if keep_complete and is_complete(task, out):
        return True
    return is_up_to_date(task, out, seed, **params)


def generate_with_status(task: str,
                         out_dir: str | os.PathLike = DEFAULT_OUT_DIR,
                         seed: int = 0,
                         *,
                         force: bool = False,
                         progress: bool = True,
                         keep_complete: bool = False,
                         **params) -> tuple[Path, bool]:
    """:func:`generate`, plus whether this call wrote the data."""
    unit = _unit(task)
    resolved = resolve_params(task, seed, **params)
    out = Path(out_dir)
    target = out / unit
    # fast path without the lock (works on read-only data folders too)
    if not force and _usable(task, out, seed, keep_complete, params):
        logger.info('synthetic %s: up to date in %s', unit, target)
        return target, False
    with unit_lock(out, task):
        # another process may have written it while this one waited
        if not force and _usable(task, out, seed, keep_complete, params):
            logger.info('synthetic %s: written meanwhile in %s', unit,
                        target)
            return target, False
        if not force and _is_foreign(target, unit):
            raise FileExistsError(
                f'{target} exists without the meta.json of the synthetic '
                'data generator; delete it or pass force=True (--force)')
        _write_and_publish(unit, out, resolved, progress)
    return target, True


def _write_and_publish(unit: str, out: Path, resolved: dict,
                       progress: bool) -> None:
    """Render into a staging folder, write meta.json last, rename it in."""
    target = out / unit
    _clean_stale(out, unit)
    staging = out / f'.{unit}.partial-{os.getpid()}'
    old = out / f'.{unit}.old-{os.getpid()}'
    start = time.perf_counter()
    try:
        _write_unit(unit, staging, resolved, progress)
        meta = dict(
            _expected_meta(unit, resolved), num_files=_count_files(staging))
        write_json(staging / 'meta.json', meta)
        if target.exists() or target.is_symlink():
            os.replace(target, old)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    logger.info('synthetic %s: generated in %s (%.1fs)', unit, target,
                time.perf_counter() - start)


def generate_all(out_dir: str | os.PathLike = DEFAULT_OUT_DIR,
                 seed: int = 0,
                 tasks: Sequence[str] | None = None,
                 *,
                 force: bool = False,
                 progress: bool = True,
                 **params) -> dict[str, Path]:
    """Generate several tasks (default: all); num_frames only for videos."""
    tasks = list(TASKS if tasks is None else tasks)
    for task in tasks:
        _unit(task)
    done: dict[str, Path] = {}
    units_done: set[str] = set()
    for task in dict.fromkeys(tasks):
        task_params = dict(params)
        if _unit(task) not in VIDEO_TASKS:
            task_params.pop('num_frames', None)
        # with force, a unit shared by two tasks is regenerated only once
        done[task] = generate(
            task,
            out_dir,
            seed,
            force=force and _unit(task) not in units_done,
            progress=progress,
            **task_params)
        units_done.add(_unit(task))
    return done
