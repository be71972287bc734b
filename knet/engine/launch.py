# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Config adjustments shared by ``tools/train.py`` and ``tools/test.py``:
launcher, CPU distributed runs (gloo), mixed precision, work dir."""
import os
import os.path as osp
import subprocess
from typing import Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.config import Config


def _init_cpu_process_group(launcher: str) -> None:
    """Start a gloo process group for CPU runs (mmengine's init_dist calls
    ``torch.cuda.set_device``, which fails without GPUs)."""
    if dist.is_available() and dist.is_initialized():
        return
    if launcher == 'slurm':
        proc_id = int(os.environ['SLURM_PROCID'])
        ntasks = int(os.environ['SLURM_NTASKS'])
        node_list = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1') or '127.0.0.1'
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ.setdefault('MASTER_ADDR', addr)
        os.environ['WORLD_SIZE'] = str(ntasks)
        os.environ['RANK'] = str(proc_id)
        os.environ.setdefault('LOCAL_RANK',
                              os.environ.get('SLURM_LOCALID', '0'))
    elif launcher == 'mpi':
        os.environ['RANK'] = os.environ['OMPI_COMM_WORLD_RANK']
        os.environ['WORLD_SIZE'] = os.environ['OMPI_COMM_WORLD_SIZE']
        os.environ.setdefault('LOCAL_RANK',
                              os.environ['OMPI_COMM_WORLD_LOCAL_RANK'])
        os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
        os.environ.setdefault('MASTER_PORT', '29500')
    dist.init_process_group(backend='gloo')


def check_torchrun_env(launcher: str) -> None:
    """``--launcher pytorch`` needs the variables that torchrun sets."""
    if launcher != 'pytorch':
        return
    missing = [v for v in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                           'MASTER_PORT') if v not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch needs the environment that torchrun sets '
            f'({", ".join(missing)} missing). Start the processes with '
            'torchrun, e.g.\n  torchrun --nproc_per_node=8 tools/train.py '
            'CONFIG --launcher pytorch\nor use bash tools/dist_train.sh '
            'CONFIG 8 (bash tools/dist_test.sh CONFIG CKPT 8 to test); for '
            'one process use --launcher none.')


def configure_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; on machines without CUDA, distributed runs
    use gloo and a CPU DDP wrapper."""
    try:
        check_torchrun_env(launcher)
    except RuntimeError as err:
        raise SystemExit(f'error: {err}') from None
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or {}
    wrapper = dict(wrapper)
    wrapper['type'] = 'CPUDistributedDataParallel'
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    _init_cpu_process_group(launcher)


def enable_amp(cfg: Config) -> None:
    """fp16 + dynamic loss scale on CUDA, bf16 autocast on CPU."""
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') not in ('OptimWrapper',
                                                   'AmpOptimWrapper',
                                                   'CPUAmpOptimWrapper'):
        raise ValueError('--amp only works with OptimWrapper, got '
                         f"{wrapper.get('type')}")
    if torch.cuda.is_available():
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.type = 'CPUAmpOptimWrapper'
        wrapper.pop('loss_scale', None)


def default_work_dir(cfg: Config, config_path: str) -> str:
    """``work_dirs/<config name>`` unless the config sets one."""
    if cfg.get('work_dir'):
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


#: the configs of this repository (fallback search root for typos)
REPO_CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')


def _config_files(root: str) -> list:
    """Runnable configs under ``root`` (``_base_`` folders left out), as
    paths relative to ``root`` with forward slashes."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != '_base_')
        rel = osp.relpath(folder, root).replace(os.sep, '/')
        found += [name if rel == '.' else f'{rel}/{name}'
                  for name in sorted(files) if name.endswith('.py')]
    return found


def suggest_config_path(path: str) -> Optional[str]:
    """The existing config whose path is closest to the missing ``path``
    (e.g. the ``knet_cityscapes_ste`` typo of Video K-Net's README), or
    None; searched under the ``configs`` folder that ``path`` names (as the
    user wrote it), else under this repository's ``configs``."""
    import difflib
    parts = path.replace(os.sep, '/').split('/')
    if 'configs' in parts:
        cut = len(parts) - parts[::-1].index('configs')
        prefix, typed = '/'.join(parts[:cut]), '/'.join(parts[cut:])
    else:
        prefix, typed = REPO_CONFIGS, '/'.join(parts)
    if not osp.isdir(prefix):
        prefix = REPO_CONFIGS
    match = difflib.get_close_matches(typed, _config_files(prefix), n=1,
                                      cutoff=0.6)
    return f'{prefix}/{match[0]}' if match else None


def config_not_found_message(path: str,
                             command: Optional[Sequence[str]] = None) -> str:
    """``config file not found: PATH`` plus, when a close config exists,
    ``did you mean`` it and ``command`` (argument list, PATH in it) with it
    substituted, ready to copy."""
    import shlex
    msg = f'config file not found: {path}'
    good = suggest_config_path(path)
    if good is None:
        return msg + f' (no similar file under {REPO_CONFIGS})'
    msg += f'\ndid you mean {good}?'
    if command:
        fixed = [good if arg == path else arg for arg in command]
        msg += '\ncorrected command:\n  ' + shlex.join(fixed)
    return msg


# ------------------------------------------------------------------------
# mmdet 2.x / mmseg 0.x command lines (the original K-Net README) on 3.x
# ------------------------------------------------------------------------
#: ``--eval`` metrics and the 3.x evaluator that computes them
LEGACY_METRICS = {
    'bbox': 'CocoMetric',
    'segm': 'CocoMetric',
    'proposal': 'CocoMetric',
    'proposal_fast': 'CocoMetric',
    'pq': 'CocoPanopticMetric',
    'miou': 'IoUMetric',
    'mdice': 'IoUMetric',
    'mfscore': 'IoUMetric',
}
_SEG_METRIC_NAMES = {'miou': 'mIoU', 'mdice': 'mDice', 'mfscore': 'mFscore'}
#: ``--eval-options`` keys renamed in 3.x
_EVAL_OPTION_RENAMES = {'jsonfile_prefix': 'outfile_prefix',
                        'imgfile_prefix': 'output_dir'}
#: ``data.<split>`` of mmdet 2.x -> 3.x dataloader
_SPLITS = {'train': 'train_dataloader', 'val': 'val_dataloader',
           'test': 'test_dataloader'}
#: dataset keys renamed in 3.x (``data.test.img_prefix`` ...)
_DATASET_RENAMES = {'img_prefix': 'data_prefix.img',
                    'seg_prefix': 'data_prefix.seg'}


def _evaluator_types(cfg: Config, field: str = 'test_evaluator') -> list:
    evaluator = cfg.get(field) or {}
    items = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    return [str(e.get('type', '')).rsplit('.', 1)[-1] for e in items
            if isinstance(e, dict)]


_DET_ANN_LOADERS = ('LoadAnnotations', 'LoadPanopticAnnotations')


def _annotation_loader_options(cfg: Config) -> dict:
    """Options that make mmdet's annotation loaders of the test pipeline
    load nothing (a format-only run on test-dev has no annotations)."""
    if cfg.get('default_scope') == 'mmseg':
        return {}
    ds = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    options = {}
    for i, step in enumerate(ds.get('pipeline') or []):
        if isinstance(step, dict) and str(step.get('type', '')).rsplit(
                '.', 1)[-1] in _DET_ANN_LOADERS:
            for flag in ('with_bbox', 'with_label', 'with_mask',
                         'with_seg'):
                options[f'test_dataloader.dataset.pipeline.{i}.{flag}'] = \
                    False
    return options


def legacy_eval_options(cfg: Config,
                        metrics=None,
                        eval_options=None,
                        format_only: bool = False,
                        work_dir: str = None):
    """Map ``--eval M ...``, ``--eval-options k=v`` and ``--format-only``
    onto ``test_evaluator`` options of mmdet 3.x / mmseg 1.x.

    Returns:
        tuple: (dict of dotted config keys -> values, list of notes).
    Raises:
        ValueError: a metric the config's evaluator cannot compute.
    """
    options, notes = {}, []
    types = _evaluator_types(cfg)
    if isinstance(cfg.get('test_evaluator'), (list, tuple)):
        raise ValueError('--eval/--eval-options/--format-only map onto one '
                         'test_evaluator; this config has a list: set the '
                         'metrics with --cfg-options test_evaluator.0.<key>=')
    ev_type = types[0] if types else ''
    if metrics:
        unknown = [m for m in metrics if m.lower() not in LEGACY_METRICS]
        if unknown:
            raise ValueError(f'--eval {" ".join(unknown)}: unknown metric; '
                             f'known: {", ".join(sorted(LEGACY_METRICS))}')
        wanted = {LEGACY_METRICS[m.lower()] for m in metrics}
        if wanted != {ev_type}:
            raise ValueError(
                f'--eval {" ".join(metrics)} needs {"/".join(sorted(wanted))}'
                f', but {cfg.filename} evaluates with {ev_type or "nothing"}'
                ' (test_evaluator). In 3.x the config chooses the metric: '
                'panoptic configs (*coco-panoptic.py) give PQ, instance '
                'configs (*coco.py) give bbox/segm AP, semantic configs '
                'mIoU. Drop --eval or use a config of that task.')
        if ev_type == 'CocoMetric':
            options['test_evaluator.metric'] = [m.lower() for m in metrics]
        elif ev_type == 'IoUMetric':
            options['test_evaluator.iou_metrics'] = [
                _SEG_METRIC_NAMES[m.lower()] for m in metrics]
        notes.append(f'--eval {" ".join(metrics)}: the {ev_type} of '
                     'test_evaluator computes it (mmdet 3.x has no --eval)')
    for key, value in (eval_options or {}).items():
        new = _EVAL_OPTION_RENAMES.get(key, key)
        options[f'test_evaluator.{new}'] = value
        notes.append(f'--eval-options {key}={value} -> '
                     f'test_evaluator.{new}')
    if format_only:
        options['test_evaluator.format_only'] = True
        out_dir = work_dir or cfg.get('work_dir') or './work_dirs'
        if ev_type == 'IoUMetric':
            if 'test_evaluator.output_dir' not in options:
                options['test_evaluator.output_dir'] = os.path.join(
                    out_dir, 'format_results')
            where = options['test_evaluator.output_dir']
        else:
            if 'test_evaluator.outfile_prefix' not in options:
                options['test_evaluator.outfile_prefix'] = os.path.join(
                    out_dir, 'results')
            where = options['test_evaluator.outfile_prefix'] + '*'
        notes.append(f'--format-only -> test_evaluator.format_only=True; '
                     f'the submission files go to {where}')
        loaders = _annotation_loader_options(cfg)
        if loaders:
            options.update(loaders)
            notes.append('--format-only: the test pipeline loads no ground '
                         'truth (test-dev has none)')
    return options, notes


#: 2.x dataset keys that hold paths
_PATH_KEYS = ('ann_file', 'img_prefix', 'seg_prefix')


def _path_under_root(value, root: str) -> str:
    """A 2.x path (relative to the working directory, data_root included)
    as a 3.x dataset path (joined to ``data_root`` by the dataset)."""
    value = str(value)
    if os.path.isabs(value) or not root:
        return value
    root = root if root.endswith('/') else root + '/'
    if value.startswith(root):
        return value[len(root):]
    return os.path.abspath(value)


def _dataset_root(cfg: Config, loader: str) -> str:
    ds = (cfg.get(loader) or {}).get('dataset') or {}
    while isinstance(ds.get('dataset'), dict):
        ds = ds['dataset']
    return ds.get('data_root') or ''


def translate_legacy_cfg_options(cfg: Config, options: dict):
    """Rename mmdet 2.x ``--cfg-options`` keys (``data.test.*``,
    ``data.samples_per_gpu``, ``optimizer.*``, ``runner.max_*``) to 3.x.

    Returns:
        tuple: (translated options, list of notes).
    """
    out, notes = {}, []
    for key, value in (options or {}).items():
        parts = key.split('.')
        new = None
        if parts[0] == 'data' and len(parts) >= 3 and parts[1] in _SPLITS:
            rest = '.'.join(parts[2:])
            loader = _SPLITS[parts[1]]
            if rest in ('samples_per_gpu', 'workers_per_gpu'):
                field = 'batch_size' if rest == 'samples_per_gpu' else \
                    'num_workers'
                new = f'{loader}.{field}'
            else:
                field = rest
                rest = _DATASET_RENAMES.get(rest, rest)
                new = f'{loader}.dataset.{rest}'
                if field in _PATH_KEYS:
                    # 2.x paths include data_root (relative to the working
                    # directory); 3.x dataset paths are joined to data_root
                    root = options.get(f'data.{parts[1]}.data_root') or \
                        options.get('data_root') or \
                        _dataset_root(cfg, loader)
                    value = _path_under_root(value, root)
                if field == 'ann_file' and parts[1] != 'train':
                    # 2.x datasets evaluated with their own annotations;
                    # 3.x evaluators read their own ann_file
                    ev = 'test_evaluator' if parts[1] == 'test' else \
                        'val_evaluator'
                    if 'ann_file' in (cfg.get(ev) or {}):
                        out[f'{ev}.ann_file'] = options[key]
                        notes.append(f'{key} also sets {ev}.ann_file='
                                     f'{options[key]}')
        elif parts[0] == 'data' and len(parts) == 2 and parts[1] in (
                'samples_per_gpu', 'workers_per_gpu'):
            field = 'batch_size' if parts[1] == 'samples_per_gpu' else \
                'num_workers'
            loaders = ('train_dataloader', ) if field == 'batch_size' else \
                tuple(_SPLITS.values())
            for loader in loaders:
                out[f'{loader}.{field}'] = value
            notes.append(f'{key} -> ' + ', '.join(f'{lo}.{field}'
                                                  for lo in loaders))
            continue
        elif parts[0] == 'optimizer' and len(parts) >= 2:
            new = 'optim_wrapper.' + key
        elif key in ('runner.max_iters', 'runner.max_epochs'):
            new = 'train_cfg.' + parts[1]
        if new is None:
            out[key] = value
        else:
            out[new] = value
            notes.append(f'{key} -> {new}')
    return out, notes


def data_root_options(cfg: Config, new_root: str) -> dict:
    """Options that move every dataset and evaluator path of ``cfg`` from
    its ``data_root`` to ``new_root`` (the configs expand ``data_root``
    when they are read, so overriding ``data_root`` alone moves nothing).
    """
    old_root = cfg.get('data_root')
    if not isinstance(old_root, str) or not old_root or old_root == new_root:
        return {}
    options = {}
    for loader in _SPLITS.values():
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict):
            continue
        key, ds = f'{loader}.dataset', loader_cfg.get('dataset')
        while isinstance(ds, dict):
            if ds.get('data_root') == old_root:
                options[f'{key}.data_root'] = new_root
            if not isinstance(ds.get('dataset'), dict):
                break
            key, ds = f'{key}.dataset', ds['dataset']
    for field in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(field)
        if not isinstance(evaluator, dict):
            continue
        for name, value in evaluator.items():
            if isinstance(value, str) and value.startswith(old_root):
                options[f'{field}.{name}'] = new_root + value[len(old_root):]
    return options


def merge_cfg_options(cfg: Config, options: dict) -> list:
    """Merge ``--cfg-options`` into ``cfg`` after translating mmdet 2.x
    keys, and make ``data_root=...`` move the datasets and evaluators.

    Returns:
        list: notes on what was translated (to be printed).
    """
    options, notes = translate_legacy_cfg_options(cfg, options)
    if 'data_root' in options:
        moved = data_root_options(cfg, options['data_root'])
        for key, value in moved.items():
            options.setdefault(key, value)
        if moved:
            notes.append('data_root also moves ' + ', '.join(sorted(moved)))
    cfg.merge_from_dict(options)
    return notes


def _format_option(value) -> str:
    """A value as mmengine's DictAction reads it back."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(_format_option(v) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    return str(value)


def _legacy_test_parser():
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--eval', nargs='+')
    parser.add_argument('--eval-options', '--options', nargs='+',
                        action=DictAction)
    parser.add_argument('--format-only', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--work-dir')
    return parser


def translate_test_argv(config: str, argv: list):
    """``mim test`` / mmdet 3.x ``test.py`` arguments for a 2.x command
    line: ``--eval``, ``--eval-options``, ``--format-only`` and 2.x
    ``--cfg-options`` keys become one 3.x ``--cfg-options``.

    Returns:
        tuple: (new argument list, notes).
    """
    args, rest = _legacy_test_parser().parse_known_args(argv)
    cfg = Config.fromfile(config, import_custom_modules=False)
    options, notes = translate_legacy_cfg_options(cfg, args.cfg_options)
    if 'data_root' in options:
        moved = data_root_options(cfg, options['data_root'])
        for key, value in moved.items():
            options.setdefault(key, value)
    cfg.merge_from_dict(options)
    eval_opts, eval_notes = legacy_eval_options(
        cfg, args.eval, args.eval_options, args.format_only,
        args.work_dir or default_work_dir(cfg, config))
    options.update(eval_opts)
    notes += eval_notes
    new = list(rest)
    if args.work_dir:
        new += ['--work-dir', args.work_dir]
    if options:
        new += ['--cfg-options'] + [
            f'{k}={_format_option(v)}' for k, v in options.items()]
    return new, notes


def translate_train_argv(config: str, argv: list):
    """mmdet 3.x ``train.py`` arguments for a 2.x command line
    (``--resume-from``, ``--load-from``, ``--seed``, ``--deterministic``,
    ``--gpus``/``--gpu-ids``, 2.x ``--cfg-options`` keys).

    Returns:
        tuple: (new argument list, notes).
    """
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--resume-from')
    parser.add_argument('--load-from')
    parser.add_argument('--seed', type=int)
    parser.add_argument('--deterministic', action='store_true')
    parser.add_argument('--gpus', type=int)
    parser.add_argument('--gpu-ids', '--gpu-id', nargs='+')
    parser.add_argument('--no-validate', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args, rest = parser.parse_known_args(argv)
    cfg = Config.fromfile(config, import_custom_modules=False)
    options, notes = translate_legacy_cfg_options(cfg, args.cfg_options)
    if 'data_root' in options:
        for key, value in data_root_options(cfg,
                                            options['data_root']).items():
            options.setdefault(key, value)
    new = list(rest)
    if args.resume_from:
        new += ['--resume', args.resume_from]
        notes.append(f'--resume-from {args.resume_from} -> --resume '
                     f'{args.resume_from}')
    if args.load_from:
        options['load_from'] = args.load_from
        notes.append('--load-from -> load_from=' + args.load_from)
    if args.seed is not None:
        options['randomness.seed'] = args.seed
        notes.append(f'--seed -> randomness.seed={args.seed}')
    if args.deterministic:
        options['randomness.deterministic'] = True
        notes.append('--deterministic -> randomness.deterministic=True')
    if args.gpus is not None or args.gpu_ids:
        notes.append('--gpus/--gpu-ids dropped: 3.x trains on one device '
                     'per process (use GPUS=N with the launchers)')
    if args.no_validate:
        options['val_cfg'] = None
        options['val_dataloader'] = None
        options['val_evaluator'] = None
        notes.append('--no-validate -> val_cfg/val_dataloader/'
                     'val_evaluator=None')
    if options:
        new += ['--cfg-options'] + [
            f'{k}={_format_option(v)}' for k, v in options.items()]
    return new, notes


def _cli(argv=None) -> int:
    """``python -m knet.engine.launch {test-args,train-args} CONFIG
    [ARGS...]``: print the 3.x form of a 2.x command line, one argument per
    line (notes go to stderr); used by the slurm / mim wrappers.
    ``suggest-config CONFIG``: print the closest existing config."""
    import sys
    argv = sys.argv[1:] if argv is None else argv
    modes = {'test-args': translate_test_argv,
             'train-args': translate_train_argv}
    if len(argv) == 2 and argv[0] == 'suggest-config':
        # launchers: the closest existing config, exit 1 when there is none
        good = suggest_config_path(argv[1])
        if good:
            print(good)
        return 0 if good else 1
    if len(argv) < 2 or argv[0] not in modes:
        print('usage: python -m knet.engine.launch {test-args,train-args} '
              'CONFIG [ARGS...] | suggest-config CONFIG', file=sys.stderr)
        return 2
    try:
        new, notes = modes[argv[0]](argv[1], argv[2:])
    except (ValueError, FileNotFoundError) as err:
        if not osp.isfile(argv[1]):
            err = config_not_found_message(argv[1])
        print(f'error: {err}', file=sys.stderr)
        return 2
    for note in notes:
        print(f'[knet] {note}', file=sys.stderr)
    for arg in new:
        print(arg)
    return 0


if __name__ == '__main__':
    raise SystemExit(_cli())
