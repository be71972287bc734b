# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Where a config's data paths point: walking the dataset / evaluator
configs and resolving relative ``data/...`` paths.

Rule (also in DATASET.md, section 'Paths'): a relative data path is relative
to the working directory, like in mmdet / mmseg. When it does not exist
there, starts with ``data/`` and the working directory has no ``data/``
folder, it is the repository's own ``data/...`` (so tools run from another
directory find the data the quick start made). Errors print the resolved
absolute path.
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The checkout that holds this package (None for an installed copy).
_ROOT = Path(__file__).resolve().parents[2]
REPO_ROOT: Path | None = (
    _ROOT if (_ROOT / 'configs').is_dir() and (_ROOT / 'knet').is_dir() else
    None)
PROJECT_DATA_DIR = 'data'

#: Dataloaders and the evaluator that reads the same split.
LOADER_EVALUATORS = (('train_dataloader', None),
                     ('val_dataloader', 'val_evaluator'),
                     ('test_dataloader', 'test_evaluator'))
EVALUATOR_PATH_KEYS = ('ann_file', 'seg_prefix')


def is_local(path: Any) -> bool:
    """A non-empty string path on the local file system (no ``s3://``)."""
    return isinstance(path, str) and bool(path) and '://' not in path


def resolve_data_path(path: str) -> str:
    """``path`` itself, or the repository's ``data/...`` (see module doc)."""
    if not is_local(path) or osp.isabs(path) or osp.exists(path):
        return path
    parts = Path(path).parts
    if (REPO_ROOT is None or not parts or parts[0] != PROJECT_DATA_DIR
            or osp.exists(PROJECT_DATA_DIR)
            or Path.cwd().resolve() == REPO_ROOT):
        return path
    resolved = str(REPO_ROOT / path)
    return resolved + os.sep if path.endswith(('/', os.sep)) else resolved


def describe_resolution() -> str:
    """One sentence: what relative data paths are relative to, here."""
    cwd = os.getcwd()
    if REPO_ROOT is None or Path(cwd).resolve() == REPO_ROOT or osp.exists(
            PROJECT_DATA_DIR):
        return f'relative paths are relative to the working directory {cwd}'
    return (f'relative paths are relative to the working directory {cwd}; '
            f'as it has no {PROJECT_DATA_DIR}/ folder, '
            f'{PROJECT_DATA_DIR}/... means {REPO_ROOT / PROJECT_DATA_DIR}')


@dataclass
class DatasetRef:
    """A leaf dataset config and its dotted config key."""
    key: str
    cfg: dict
    loader: str


def iter_leaf_datasets(cfg: Any, key: str,
                       loader: str) -> Iterator[DatasetRef]:
    """Leaf dataset configs below a dataset config (wrappers unfolded)."""
    if not isinstance(cfg, dict):
        return
    inner = cfg.get('dataset')
    many = cfg.get('datasets')
    if isinstance(inner, dict):
        yield from iter_leaf_datasets(inner, f'{key}.dataset', loader)
    if isinstance(many, (list, tuple)):
        for i, sub in enumerate(many):
            yield from iter_leaf_datasets(sub, f'{key}.datasets[{i}]', loader)
    if not isinstance(inner, dict) and not isinstance(many, (list, tuple)):
        yield DatasetRef(key, cfg, loader)


def iter_config_datasets(cfg: dict,
                         loaders: tuple[str, ...]) -> Iterator[DatasetRef]:
    """Leaf datasets of the named dataloaders of a config."""
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if isinstance(loader_cfg, dict):
            yield from iter_leaf_datasets(
                loader_cfg.get('dataset'), f'{loader}.dataset', loader)


def iter_metric_cfgs(cfg: dict, evaluator: str) -> Iterator[tuple[str, dict]]:
    """(key, metric config) of an evaluator: a dict, a list, or
    ``dict(metrics=[...])``."""
    ev = cfg.get(evaluator)
    if isinstance(ev, dict) and isinstance(ev.get('metrics'), (list, dict)):
        key, ev = f'{evaluator}.metrics', ev['metrics']
    else:
        key = evaluator
    if isinstance(ev, dict):
        yield key, ev
    elif isinstance(ev, (list, tuple)):
        for i, metric in enumerate(ev):
            if isinstance(metric, dict):
                yield f'{key}[{i}]', metric


def dataset_paths(ds: dict) -> dict[str, str]:
    """{config key suffix: path as the dataset will open it}."""
    root = ds.get('data_root')
    root = root if is_local(root) else None

    def join(path: str) -> str:
        return osp.join(root, path) if root and not osp.isabs(path) else path

    paths = {}
    if root:
        paths['data_root'] = root
    if is_local(ds.get('ann_file')):
        paths['ann_file'] = join(ds['ann_file'])
    prefix = ds.get('data_prefix')
    if isinstance(prefix, dict):
        for name, value in prefix.items():
            if is_local(value):
                paths[f'data_prefix.{name}'] = join(value)
    return paths


def resolve_config_paths(cfg: dict) -> list[str]:
    """Rewrite relative data paths of every dataloader / evaluator in place
    by :func:`resolve_data_path`; return 'key: old -> new' lines."""
    changed = []

    def fix(holder: dict, name: str, key: str) -> None:
        value = holder.get(name)
        if is_local(value):
            new = resolve_data_path(value)
            if new != value:
                holder[name] = new
                changed.append(f'{key}: {value} -> {new}')

    loaders = tuple(loader for loader, _ in LOADER_EVALUATORS)
    for ref in iter_config_datasets(cfg, loaders):
        if is_local(ref.cfg.get('data_root')):
            fix(ref.cfg, 'data_root', f'{ref.key}.data_root')
            continue
        fix(ref.cfg, 'ann_file', f'{ref.key}.ann_file')
        prefix = ref.cfg.get('data_prefix')
        if isinstance(prefix, dict):
            for name in list(prefix):
                fix(prefix, name, f'{ref.key}.data_prefix.{name}')
    for _, evaluator in LOADER_EVALUATORS:
        if evaluator:
            for key, metric in iter_metric_cfgs(cfg, evaluator):
                for name in EVALUATOR_PATH_KEYS:
                    fix(metric, name, f'{key}.{name}')
    return changed
