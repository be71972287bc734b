# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Start-up checks on the config (run by ``KNetRunner`` from every entry
point): class counts of the model against the dataset, ``train_cfg`` /
``test_cfg`` keys that no K-Net head reads, torchvision-based pretrained
weights without torchvision, and ``--launcher pytorch`` without torchrun.

Nothing here builds the model or the dataset; the checks read the config
and the defaults of the registered classes only.
"""
import difflib
import importlib.util
import inspect
import logging
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from .launch import check_torchrun_env
from .runner import register_startup_check

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

# K-Net's det modules whose class counts must agree with the dataset.
_DETECTOR_TYPES = ('KNet', 'VideoKNet', 'VideoKNetQuansiEmbedFCJointTrain')
_VIDEO_DETECTOR_TYPES = _DETECTOR_TYPES[1:]
_KERNEL_HEAD_TYPES = ('ConvKernelHead', )
_ITER_HEAD_TYPES = ('KernelIterHead', 'VideoKernelIterHead')
_UPDATE_HEAD_TYPES = ('KNetKernelUpdateHead', 'VideoKernelUpdateHead')
_SEG_ITER_HEAD_TYPES = ('KNetIterativeDecodeHead', )

# ``model.train_cfg`` / ``model.test_cfg`` keys read by the K-Net det heads
# (KNet hands ``rpn`` to ConvKernelHead and ``rcnn`` to KernelIterHead),
# derived from the declarations the heads themselves read through
# (``DEFAULT_TEST_CFG`` / ``get_test_cfg`` of knet.models.postprocessing,
# ``KNOWN_TRAIN_CFG_KEYS`` of the iterative head). A nested dict lists the
# keys of a sub-dict; ``None`` means "any value, not checked further".


def _key_tree(defaults: dict) -> dict:
    """``{key: sub-tree or None}`` of a (nested) dict of defaults."""
    return {k: _key_tree(v) if isinstance(v, dict) else None
            for k, v in defaults.items()}


def knet_cfg_key_trees(video: bool = False) -> Tuple[dict, dict]:
    """(train_cfg tree, test_cfg tree) of the K-Net detector (``video``:
    of VideoKNet, which also reads ``train_cfg.track`` and its own
    ``test_cfg`` keys)."""
    from knet.models.postprocessing import DEFAULT_TEST_CFG
    from knet.models.roi_heads.kernel_iter_head import KNOWN_TRAIN_CFG_KEYS
    assign = {k: None for k in sorted(KNOWN_TRAIN_CFG_KEYS)}
    # test_cfg.rpn is accepted (the original configs set it to None) but
    # the kernel head reads nothing from it
    train, test = (dict(rpn=assign, rcnn=assign),
                   dict(rpn={}, rcnn=_key_tree(DEFAULT_TEST_CFG)))
    if video:
        from knet.models.video.video_knet import KNOWN_VIDEO_TEST_CFG_KEYS
        train['track'] = dict(assigner=None, sampler=None)
        test.update({k: None for k in KNOWN_VIDEO_TEST_CFG_KEYS
                     if k not in test})
    return train, test


# accepted for the original configs; this port always uses the value here
FIXED_VALUE_KEYS = dict(pos_weight=1)


def _type_name(cfg: Any) -> str:
    """Registered name of a module config without its scope prefix."""
    if not isinstance(cfg, dict):
        return ''
    name = cfg.get('type', '')
    return name.rsplit('.', 1)[-1] if isinstance(name, str) else ''


def _registry_default(module_type: str, arg: str, scope: str) -> Any:
    """Default of ``arg`` in the ``__init__`` of a registered model class."""
    registry = _model_registry(scope)
    cls = registry.get(module_type) if registry is not None else None
    if cls is None:
        return None
    param = inspect.signature(cls.__init__).parameters.get(arg)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def _model_registry(scope: str):
    if scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return MODELS


def _dataset_registry(scope: str):
    if scope == 'mmseg':
        from mmseg.registry import DATASETS
    else:
        from mmdet.registry import DATASETS
    return DATASETS


# ---------------------------------------------------------------- datasets
def _leaf_datasets(ds_cfg: Any, key: str) -> Iterator[Tuple[str, dict]]:
    """(dotted key, config) of the datasets inside dataset wrappers."""
    if not isinstance(ds_cfg, dict):
        return
    if isinstance(ds_cfg.get('datasets'), (list, tuple)):
        for i, sub in enumerate(ds_cfg['datasets']):
            yield from _leaf_datasets(sub, f'{key}.datasets[{i}]')
    elif isinstance(ds_cfg.get('dataset'), dict):
        yield from _leaf_datasets(ds_cfg['dataset'], f'{key}.dataset')
    else:
        yield key, ds_cfg


def dataset_class_counts(cfg: Config) -> List[Tuple[str, str, int, int]]:
    """(dataset key, source, things, stuff) of every dataset in the config.

    The classes are the dataset config's ``metainfo`` over the dataset
    class's ``METAINFO`` (as mmengine's BaseDataset merges them); datasets
    without class names are skipped. ``things`` counts every class of a
    dataset without a thing / stuff split (instance and semantic data).
    """
    scope = cfg.get('default_scope') or 'mmdet'
    registry = _dataset_registry(scope)
    found = []
    for loader in DATALOADERS:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict):
            continue
        for key, ds in _leaf_datasets(loader_cfg.get('dataset'),
                                      f'{loader}.dataset'):
            cls = registry.get(ds.get('type')) if isinstance(
                ds.get('type'), str) else ds.get('type')
            meta = dict(getattr(cls, 'METAINFO', None) or {})
            cfg_meta = ds.get('metainfo')
            if isinstance(cfg_meta, dict):
                meta.update(cfg_meta)
            if not meta.get('classes'):
                continue
            source = f'{key}.metainfo' if isinstance(cfg_meta, dict) and \
                'classes' in cfg_meta else \
                f"{getattr(cls, '__name__', ds.get('type'))}.METAINFO"
            classes = list(meta['classes'])
            things = meta.get('thing_classes')
            stuff = meta.get('stuff_classes')
            thing_ids = meta.get('thing_ids')
            if things is None and thing_ids is not None:
                # video panoptic data (KITTI-STEP, VIP-Seg): classes in the
                # files' order, things named by their ids
                things = [classes[int(i)] for i in thing_ids]
                stuff = [c for i, c in enumerate(classes)
                         if i not in {int(t) for t in thing_ids}]
            if things is not None and stuff is not None:
                if len(things) + len(stuff) != len(classes):
                    raise ValueError(
                        f'{key}: metainfo has {len(classes)} classes but '
                        f'{len(things)} thing_classes + {len(stuff)} '
                        f'stuff_classes (from {source}); a panoptic dataset '
                        'needs classes = thing_classes + stuff_classes in '
                        'its metainfo (see configs/toy/_base_/'
                        'synthetic_panoptic.py)')
                found.append((key, source, len(things), len(stuff)))
            else:
                found.append((key, source, len(classes), 0))
    return found


# ------------------------------------------------------------ model counts
def _stage_cfgs(head_cfg: Any, key: str, field: str
                ) -> Iterator[Tuple[str, dict]]:
    """(dotted key, config) of a per-stage head given as a dict or list."""
    stages = head_cfg.get(field) if isinstance(head_cfg, dict) else None
    if isinstance(stages, dict):
        yield f'{key}.{field}', stages
    elif isinstance(stages, (list, tuple)):
        for i, stage in enumerate(stages):
            yield f'{key}.{field}[{i}]', stage


def _count(module_cfg: dict, key: str, arg: str, scope: str,
           use_default: bool = True) -> Optional[Tuple[str, int]]:
    """(dotted key, value) of a class-count argument, or the class default."""
    if arg in module_cfg:
        return f'{key}.{arg}', module_cfg[arg]
    if not use_default:
        return None
    default = _registry_default(module_cfg.get('type'), arg, scope)
    if default is None:
        return None
    return f'{key}.{arg} (default)', default


def det_model_class_counts(model: dict, scope: str = 'mmdet'
                           ) -> List[Tuple[str, int, str]]:
    """(config key, value, 'things' | 'stuff' | 'all') of every class
    count in a K-Net det model config."""
    if _type_name(model) not in _DETECTOR_TYPES:
        return []
    counts = []

    def add(module_cfg, key, arg, kind):
        found = _count(module_cfg, key, arg, scope)
        if found is not None:
            counts.append((*found, kind))

    add(model, 'model', 'num_thing_classes', 'things')
    add(model, 'model', 'num_stuff_classes', 'stuff')
    rpn = model.get('rpn_head')
    if _type_name(rpn) in _KERNEL_HEAD_TYPES:
        add(rpn, 'model.rpn_head', 'num_classes', 'all')
        add(rpn, 'model.rpn_head', 'num_thing_classes', 'things')
        add(rpn, 'model.rpn_head', 'num_stuff_classes', 'stuff')
    roi = model.get('roi_head')
    if _type_name(roi) in _ITER_HEAD_TYPES:
        add(roi, 'model.roi_head', 'num_thing_classes', 'things')
        add(roi, 'model.roi_head', 'num_stuff_classes', 'stuff')
        for key, stage in _stage_cfgs(roi, 'model.roi_head', 'mask_head'):
            if _type_name(stage) in _UPDATE_HEAD_TYPES:
                add(stage, key, 'num_classes', 'all')
                add(stage, key, 'num_thing_classes', 'things')
                add(stage, key, 'num_stuff_classes', 'stuff')
    return counts


def seg_model_class_counts(model: dict, scope: str = 'mmseg'
                           ) -> List[Tuple[str, int]]:
    """(config key, value) of every class count in an mmseg model config
    (decode head, K-Net update stages, auxiliary heads)."""
    counts = []
    heads = []
    for field in ('decode_head', 'auxiliary_head'):
        head = model.get(field)
        if isinstance(head, dict):
            heads.append((f'model.{field}', head))
        elif isinstance(head, (list, tuple)):
            heads += [(f'model.{field}[{i}]', h) for i, h in enumerate(head)]
    for key, head in heads:
        if not isinstance(head, dict):
            continue
        if _type_name(head) in _SEG_ITER_HEAD_TYPES:
            gen = head.get('kernel_generate_head') or {}
            if 'num_classes' in gen:
                counts.append((f'{key}.kernel_generate_head.num_classes',
                               gen['num_classes']))
            elif 'num_classes' in head:
                counts.append((f'{key}.num_classes', head['num_classes']))
            # the update stages have no classifier in semantic K-Net
            # (num_cls_fcs=0): only counts that are set are compared
            for skey, stage in _stage_cfgs(head, key, 'kernel_update_head'):
                found = _count(stage, skey, 'num_classes', scope,
                               use_default=False)
                if found is not None:
                    counts.append(found)
        elif 'num_classes' in head:
            counts.append((f'{key}.num_classes', head['num_classes']))
    return counts


def class_count_mismatches(cfg: Config) -> List[str]:
    """One line per model class count that differs from a dataset's."""
    model = cfg.get('model')
    if not isinstance(model, dict):
        return []
    scope = cfg.get('default_scope') or 'mmdet'
    datasets = dataset_class_counts(cfg)
    problems = []
    if scope == 'mmseg':
        model_counts = [(k, v, 'all') for k, v in
                        seg_model_class_counts(model, scope)]
    else:
        model_counts = det_model_class_counts(model, scope)
    # one line per model key and wanted value, naming every dataset
    found: Dict[Tuple[str, Any, int, str], List[Tuple[str, str]]] = {}
    for ds_key, source, things, stuff in datasets:
        want = dict(things=things, stuff=stuff, all=things + stuff)
        what = dict(
            things=f'{things} thing classes',
            stuff=f'{stuff} stuff classes',
            all=f'{things + stuff} classes' + (
                f' ({things} things + {stuff} stuff)' if stuff else ''))
        for key, value, kind in model_counts:
            if value != want[kind]:
                found.setdefault((key, value, want[kind], what[kind]),
                                 []).append((ds_key, source))
    for (key, value, wanted, what), where in found.items():
        loaders = ', '.join(k for k, _ in where)
        sources = ', '.join(sorted({s for _, s in where}))
        problems.append(
            f'{key} = {value}, but the dataset has {what} ({loaders}; '
            f'from {sources}): set {key.split(" ")[0]}={wanted}')
    return problems


@register_startup_check
def check_class_counts(cfg: Config) -> None:
    """Stop when a class count of the model differs from the dataset's."""
    problems = class_count_mismatches(cfg)
    if problems:
        where = cfg.filename or 'the config'
        raise ValueError(
            f'{where}: the model and the dataset disagree on the number of '
            'classes (training would fail in the loss or the evaluator, or '
            'score 0 silently):\n  ' + '\n  '.join(problems) +
            '\nSet every count of the model to the dataset\'s (README, '
            '"Training on your own data"; '
            'configs/examples/knet_s3_r50_fpn_1x_custom-18cls.py).')


# ------------------------------------------------------------- unused keys
def unused_keys(values: Any, known: Any, prefix: str
                ) -> List[Tuple[str, Optional[str]]]:
    """(dotted key, closest known key or None) of every key in ``values``
    that ``known`` (see :func:`knet_cfg_key_trees`) does not list."""
    if not isinstance(values, dict) or known is None:
        return []
    found = []
    for key, value in values.items():
        if key == '_delete_':
            continue
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1,
                                              cutoff=0.75)
            found.append((f'{prefix}.{key}', close[0] if close else None))
        elif isinstance(value, (list, tuple)) and \
                isinstance(known[key], dict):
            for i, item in enumerate(value):
                found += unused_keys(item, known[key], f'{prefix}.{key}[{i}]')
        else:
            found += unused_keys(value, known[key], f'{prefix}.{key}')
    return found


def _fixed_value_notes(values: Any, prefix: str) -> List[str]:
    """Keys kept from the original configs whose value here is fixed."""
    notes = []
    if isinstance(values, (list, tuple)):
        for i, item in enumerate(values):
            notes += _fixed_value_notes(item, f'{prefix}[{i}]')
    elif isinstance(values, dict):
        for key, value in values.items():
            if key in FIXED_VALUE_KEYS and value != FIXED_VALUE_KEYS[key]:
                notes.append(f'{prefix}.{key} = {value} has no effect (K-Net '
                             f'always uses {FIXED_VALUE_KEYS[key]})')
            elif isinstance(value, (dict, list, tuple)):
                notes += _fixed_value_notes(value, f'{prefix}.{key}')
    return notes


def unused_option_messages(cfg: Config) -> List[str]:
    """Messages for K-Net ``train_cfg`` / ``test_cfg`` keys nothing reads."""
    model = cfg.get('model')
    if not isinstance(model, dict) or _type_name(model) not in \
            _DETECTOR_TYPES:
        return []
    messages = []
    train_keys, test_keys = knet_cfg_key_trees(
        _type_name(model) in _VIDEO_DETECTOR_TYPES)
    for field, known in (('train_cfg', train_keys), ('test_cfg', test_keys)):
        for key, close in unused_keys(model.get(field), known,
                                      f'model.{field}'):
            hint = f'; did you mean {key.rsplit(".", 1)[0]}.{close}?' \
                if close else ''
            messages.append(f'{key} is not read by any K-Net head{hint}')
        messages += _fixed_value_notes(model.get(field), f'model.{field}')
    for head in ('rpn_head', 'roi_head'):
        head_cfg = model.get(head)
        for field in ('train_cfg', 'test_cfg'):
            if isinstance(head_cfg, dict) and head_cfg.get(field):
                part = 'rpn' if head == 'rpn_head' else 'rcnn'
                messages.append(
                    f'model.{head}.{field} is replaced by model.{field}.'
                    f'{part} when KNet builds its heads; move the keys there')
    return messages


@register_startup_check
def report_unused_options(cfg: Config) -> None:
    """Log every K-Net ``train_cfg`` / ``test_cfg`` key that is not read."""
    for message in unused_option_messages(cfg):
        print_log(f'[config check] {message}', logger='current',
                  level=logging.WARNING)


# ---------------------------------------------------------------- data_root
@register_startup_check
def apply_data_root_override(cfg: Config) -> None:
    """``--cfg-options data_root=DIR`` (``mim train/test``) moves the
    datasets and evaluators that still read from the config file's
    ``data_root`` (the configs expand it when they are read)."""
    from .launch import data_root_options
    new_root = cfg.get('data_root')
    path = cfg.filename
    if not isinstance(new_root, str) or not path or not os.path.isfile(path):
        return
    try:
        original = Config.fromfile(path, import_custom_modules=False)
    except Exception:  # the config as given is what counts; skip
        return
    if original.get('data_root') == new_root:
        return
    moved = data_root_options(original, new_root)
    # only what the overrides left at the file's value moves
    moved = {k: v for k, v in moved.items()
             if _get_dotted(cfg, k) == _get_dotted(original, k)}
    if not moved:
        return
    cfg.merge_from_dict(moved)
    print_log(
        f'[config check] data_root={new_root} (the file has '
        f"{original.get('data_root')}): also set " +
        ', '.join(f'{k}={v}' for k, v in sorted(moved.items())),
        logger='current', level=logging.WARNING)


def _get_dotted(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split('.'):
        try:
            node = node[part]
        except (KeyError, TypeError, IndexError):
            return None
    return node


# ------------------------------------------------------------- torchvision
def _torchvision_checkpoints(node: Any, key: str
                             ) -> Iterator[Tuple[str, str]]:
    """(dotted key, URL) of every ``torchvision://`` checkpoint."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _torchvision_checkpoints(v, f'{key}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _torchvision_checkpoints(v, f'{key}[{i}]')
    elif isinstance(node, str) and node.startswith('torchvision://'):
        yield key, node


# ImageNet weights that torchvision:// resolves to (IMAGENET1K_V1)
TORCHVISION_URLS = {
    'resnet50': 'https://download.pytorch.org/models/resnet50-0676ba61.pth',
    'resnet101':
    'https://download.pytorch.org/models/resnet101-63fe2227.pth',
}


def _init_cfg_key(key: str) -> str:
    """``model.backbone.init_cfg.checkpoint`` -> ``model.backbone.init_cfg``."""
    return key[:-len('.checkpoint')] if key.endswith('.checkpoint') else key


@register_startup_check
def check_torchvision_weights(cfg: Config) -> None:
    """Stop at start-up (not after building the data) when the model loads
    ``torchvision://`` weights and torchvision is not installed."""
    if importlib.util.find_spec('torchvision') is not None:
        return
    found = list(_torchvision_checkpoints(cfg.get('model'), 'model'))
    if not found:
        return
    if cfg.get('load_from'):
        # testing never initialises the weights; fine-tuning overwrites
        # them with ``load_from``: skip the ImageNet initialisation
        for key, url in found:
            parent = _init_cfg_key(key)
            if '[' in parent:
                continue
            _set_dotted(cfg, parent, None)
            print_log(
                f'[config check] {parent} ({url}) skipped: torchvision is '
                f'not installed and the weights come from load_from='
                f"{cfg.load_from}", logger='current', level=logging.WARNING)
        return
    config = cfg.filename or 'CONFIG'
    lines = []
    for key, url in found:
        name = url[len('torchvision://'):]
        file_url = TORCHVISION_URLS.get(name, f'(torchvision\'s {name} '
                                        'ImageNet weights)')
        lines.append(f'  {key} = {url!r}: {file_url}')
    init_keys = sorted({_init_cfg_key(k) for k, _ in found})
    local = ' '.join(f'{k}.checkpoint=/path/to/weights.pth'
                     if k.endswith('init_cfg') else f'{k}=/path/to/'
                     'weights.pth' for k in init_keys)
    scratch = ' '.join(f'{k}=None' for k in init_keys)
    raise RuntimeError(
        f'{config} initialises the backbone with ImageNet weights through '
        'torchvision, but torchvision is not installed (CPU-only torch '
        'often has no matching torchvision on the package index):\n' +
        '\n'.join(lines) + '\nEither\n'
        '  1. install the torchvision that matches your torch (pip install '
        'torchvision); the weights are then downloaded over the network on '
        'first use;\n'
        '  2. download the file above once (network needed) and point the '
        f'config to it:\n     python tools/train.py {config} --cfg-options '
        f'{local}\n'
        '  3. or train from scratch (no pretrained backbone; much lower '
        f'accuracy on real data):\n     python tools/train.py {config} '
        f'--cfg-options {scratch}')


def _set_dotted(cfg: Config, key: str, value: Any) -> None:
    """Set ``model.backbone.init_cfg``-style keys (no list indices)."""
    node = cfg
    parts = key.split('.')
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


# ----------------------------------------------------------------- launcher
@register_startup_check
def check_launcher_env(cfg: Config) -> None:
    """Same check for ``mim train/test`` and other entry points."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return
    check_torchrun_env(cfg.get('launcher', 'none'))


__all__ = [
    'apply_data_root_override', 'check_class_counts', 'knet_cfg_key_trees',
    'check_launcher_env', 'check_torchrun_env', 'check_torchvision_weights',
    'class_count_mismatches', 'dataset_class_counts',
    'det_model_class_counts', 'report_unused_options',
    'seg_model_class_counts', 'unused_keys', 'unused_option_messages'
]
