# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Start-up data check of every K-Net run (``KNetRunner``, all ranks).

1. Relative ``data/...`` paths are resolved (:mod:`.data_paths`) and
   rewritten in the config, so every rank and every tool reads the same
   absolute folder.
2. Built-in synthetic data: a config with ``synthetic_data = dict(task=...,
   seed=0, **params)`` (configs/toy) gets its data generated when missing,
   deterministically, into each dataset's ``data_root`` (a folder named
   after the task's unit, ``coco`` or ``ade``). One process generates under
   a file lock; the others wait (:func:`~.synthetic.generate_with_status`).
   A complete folder made with other parameters is kept.
3. Real data: the annotation files and image / segmentation folders the
   run will read must exist (folders non-empty) and the annotation JSONs
   must parse (:mod:`.annotation_check`); otherwise ONE error lists every
   problem with its resolved path and the DATASET.md section to follow.

Which splits are checked: a training run (``train_cfg`` set and not
``load_from`` without ``resume``) checks train and val; any other run
(``tools/test.py`` sets ``load_from``) checks test only, so evaluating on
val2017 works without the train2017 download.
"""
from __future__ import annotations

import os
import os.path as osp
import time
from dataclasses import dataclass
from pathlib import Path

from mmengine.logging import print_log

from knet.engine.runner import register_startup_check

from . import synthetic
from .annotation_check import annotation_problem
from .data_paths import (LOADER_EVALUATORS, REPO_ROOT, DatasetRef,
                         dataset_paths, describe_resolution,
                         iter_config_datasets, iter_metric_cfgs, is_local,
                         resolve_config_paths)

SYNTHETIC_KEY = 'synthetic_data'
SYNTHETIC_SECTION = 'Built-in synthetic data'
DATASET_DOC = 'DATASET.md'


class DataCheckError(Exception):
    """Base of the data check's errors: entry points may catch it and print
    just the message (it already names every path and the fix)."""


class MissingDataError(DataCheckError, FileNotFoundError):
    """A dataset file or folder the run needs is missing or empty."""


class AnnotationFileError(DataCheckError, ValueError):
    """An annotation file is truncated, malformed or not COCO-shaped."""


@dataclass
class DataProblem:
    """One unusable path: what is wrong, the config key, the doc section."""
    path: str
    what: str
    key: str
    section: str | None


def section_for(type_name: object, path: str,
                synthetic_cfg: bool) -> str | None:
    """DATASET.md section that explains how to make ``path``."""
    if synthetic_cfg:
        return SYNTHETIC_SECTION
    name = str(type_name or '')
    parts = [p.lower() for p in Path(path).parts]
    if 'Coco' in name or 'coco' in parts:
        return 'COCO'
    if 'ADE' in name or any(p.startswith('ade') for p in parts):
        return 'ADE20K'
    for key, section in _VIDEO_SECTIONS:
        if key in name or key.lower() in parts:
            return section
    return None


#: (dataset type substring / lower-case folder name, DATASET.md section)
_VIDEO_SECTIONS = (('KITTISTEP', 'KITTI-STEP'), ('kitti-step', 'KITTI-STEP'),
                   ('CityscapesSTEP', 'Cityscapes-STEP'),
                   ('VIPSeg', 'VIP-Seg'))


def _training(cfg: dict) -> bool:
    """Whether the run trains (see the module doc)."""
    if not cfg.get('train_cfg') or not cfg.get('train_dataloader'):
        return False
    return not (cfg.get('load_from') and not cfg.get('resume'))


def _synthetic_spec(cfg: dict) -> tuple[str, int, dict] | None:
    """(task, seed, params) of the config's ``synthetic_data`` marker."""
    spec = cfg.get(SYNTHETIC_KEY)
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get('task') not in synthetic.TASKS:
        raise ValueError(
            f'config key {SYNTHETIC_KEY} must be dict(task=..., seed=0, '
            f'**params) with task in {synthetic.TASKS}; got {spec!r}')
    params = {k: v for k, v in spec.items() if k not in ('task', 'seed')}
    if isinstance(params.get('size'), (list, tuple)):
        params['size'] = tuple(params['size'])
    for key in ('thing_classes', 'stuff_classes'):
        if isinstance(params.get(key), (list, tuple)):
            params[key] = tuple(params[key])
    task, seed = spec['task'], int(spec.get('seed', 0))
    try:
        synthetic.resolve_params(task, seed, **params)
    except (TypeError, ValueError) as err:
        raise ValueError(f'config key {SYNTHETIC_KEY}: {err}') from err
    return task, seed, params


def _synthetic_root(ref: DatasetRef, task: str) -> Path | None:
    """The synthetic unit folder a dataset reads, if the marker covers it."""
    root = ref.cfg.get('data_root')
    if not is_local(root):
        return None
    root = Path(root)
    return root if root.name == synthetic.task_dir(task, '.').name else None


def ensure_synthetic_data(cfg: dict) -> list[Path]:
    """Generate missing synthetic data of a marked config; return folders."""
    spec = _synthetic_spec(cfg)
    if spec is None:
        return []
    task, seed, params = spec
    loaders = tuple(loader for loader, _ in LOADER_EVALUATORS)
    roots = dict.fromkeys(
        root.absolute() for ref in iter_config_datasets(cfg, loaders)
        if (root := _synthetic_root(ref, task)) is not None)
    for root in roots:
        start = time.perf_counter()
        try:
            folder, wrote = synthetic.generate_with_status(
                task, root.parent, seed, progress=False, keep_complete=True,
                **params)
        except FileExistsError as err:
            raise FileExistsError(
                f'{err}. The config ({SYNTHETIC_KEY}) generates the synthetic '
                f'data into {root}; move that folder away or set data_root '
                f'to another folder (see {DATASET_DOC}, section '
                f"'{SYNTHETIC_SECTION}')") from err
        took = time.perf_counter() - start
        state = (f'generated ({took:.1f} s)' if wrote else
                 f'complete (waited {took:.1f} s)' if took > 1 else 'complete')
        # print, not the logger: ranks > 0 log errors only once the
        # (CPU) process group exists, and this line tells which rank wrote
        print(f'synthetic data ({task}, rank {os.environ.get("RANK", "0")}, '
              f'pid {os.getpid()}): {folder} {state}', flush=True)
    return list(roots)


def _folder_problem(path: str) -> str | None:
    """'missing' / 'empty' / 'not a folder' for a folder the run reads."""
    if not osp.exists(path):
        return 'folder not found'
    if not osp.isdir(path):
        return 'not a folder'
    with os.scandir(path) as entries:
        if next(entries, None) is None:
            return 'empty folder'
    return None


def _remote(ds: dict) -> bool:
    """Whether a dataset reads through a non-local file backend."""
    backend = ds.get('backend_args')
    return isinstance(backend, dict) and backend.get('backend',
                                                     'local') != 'local'


def _check_file(path: str, coco: bool) -> str | None:
    """'file not found' or the annotation problem of a file."""
    if not osp.isfile(path):
        return 'file not found' if not osp.exists(path) else 'not a file'
    if path.endswith('.json'):
        return annotation_problem(path, coco=coco)
    return None


def find_data_problems(cfg: dict) -> list[DataProblem]:
    """Every missing / empty / malformed data path the run would read."""
    marked = cfg.get(SYNTHETIC_KEY) is not None
    if _training(cfg):
        pairs = [('train_dataloader', None)]
        if cfg.get('val_cfg'):
            pairs.append(('val_dataloader', 'val_evaluator'))
    else:
        pairs = [('test_dataloader', 'test_evaluator')]
    problems: list[DataProblem] = []
    seen: set[str] = set()

    def add(path: str, what: str | None, key: str, kind: object) -> None:
        if what is None:
            return
        full = osp.abspath(path) + (os.sep if path.endswith('/') else '')
        # below a folder already reported missing: nothing new to say
        below_missing = any(
            full.startswith(p.path.rstrip(os.sep) + os.sep)
            for p in problems if p.what == 'folder not found')
        if full not in seen and not below_missing:
            seen.add(full)
            problems.append(
                DataProblem(full, what, key, section_for(kind, full, marked)))

    for loader, evaluator in pairs:
        for ref in iter_config_datasets(cfg, (loader, )):
            if _remote(ref.cfg):
                continue
            kind = ref.cfg.get('type')
            paths = dataset_paths(ref.cfg)
            root = paths.pop('data_root', None)
            if root is not None and not osp.isdir(root):
                add(root, 'folder not found', f'{ref.key}.data_root', kind)
                continue
            for name, path in paths.items():
                what = (_check_file(path, 'Coco' in str(kind))
                        if name == 'ann_file' else _folder_problem(path))
                add(path, what, f'{ref.key}.{name}', kind)
        for key, metric in iter_metric_cfgs(cfg, evaluator or ''):
            kind = metric.get('type')
            if is_local(metric.get('ann_file')):
                add(metric['ann_file'],
                    _check_file(metric['ann_file'], 'Coco' in str(kind)),
                    f'{key}.ann_file', kind)
            # format_only (test-dev submissions) never reads ground truth PNGs
            if is_local(metric.get('seg_prefix')) and not metric.get(
                    'format_only'):
                add(metric['seg_prefix'],
                    _folder_problem(metric['seg_prefix']),
                    f'{key}.seg_prefix', kind)
    return problems


_MISSING = ('file not found', 'folder not found', 'empty folder',
            'not a folder', 'not a file')


def format_problems(problems: list[DataProblem]) -> str:
    """The one message of a failed data check."""
    missing = any(p.what in _MISSING for p in problems)
    head = ('Dataset files missing or incomplete' if missing else
            'Unusable annotation file(s)')
    lines = [f'{head}; stopping before training / testing starts:']
    lines += [f'  {p.path}: {p.what} (config key {p.key})' for p in problems]
    lines.append(f'({describe_resolution()})')
    doc = (REPO_ROOT / DATASET_DOC) if REPO_ROOT else Path(DATASET_DOC)
    sections = list(dict.fromkeys(p.section for p in problems if p.section))
    if SYNTHETIC_SECTION in sections:
        lines.append(
            'The synthetic data is generated at start-up only into a '
            "data_root folder named after its unit ('coco', 'ade'); delete a "
            'damaged synthetic folder to have it regenerated.')
    if sections:
        names = ', '.join(f"'{s}'" for s in sections)
        word = 'section' if len(sections) == 1 else 'sections'
        lines.append(f'See {DATASET_DOC}, {word} {names} ({doc}), for how '
                     'to prepare the data, or point the config at it with '
                     '--cfg-options.')
    else:
        lines.append(f'See {DATASET_DOC} ({doc}) for the expected layouts.')
    return '\n'.join(lines)


@register_startup_check
def check_data(cfg: dict) -> None:
    """Resolve data paths, generate missing synthetic data, and stop with
    one message when real data is missing or malformed."""
    for line in resolve_config_paths(cfg):
        print_log(f'data path resolved against the repository: {line}',
                  logger='current')
    ensure_synthetic_data(cfg)
    problems = find_data_problems(cfg)
    if not problems:
        return
    message = format_problems(problems)
    if any(p.what in _MISSING for p in problems):
        raise MissingDataError(message)
    raise AnnotationFileError(message)


__all__ = [
    'AnnotationFileError', 'DataCheckError', 'DataProblem',
    'MissingDataError', 'check_data', 'ensure_synthetic_data',
    'find_data_problems', 'format_problems', 'section_for'
]
