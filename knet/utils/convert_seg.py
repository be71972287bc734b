# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Validate / convert semantic K-Net checkpoints (original repo or mmseg).

The original K-Net seg models, mmseg's released K-Net models and
:class:`knet.models.seg.KNetIterativeDecodeHead` share one key layout
(``decode_head.kernel_generate_head.*``, ``decode_head.kernel_update_head.
<i>.*``), so converting is: strip a DataParallel ``module.`` prefix, check
that the weights really are a semantic K-Net (consistent stages, widths and
classes), and rewrite the checkpoint meta. Problems are collected and raised
together in one :class:`SegCheckpointError`.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional

from torch import Tensor

from .checkpoint_convert import CheckpointMismatchError

GENERATE_PREFIX = 'decode_head.kernel_generate_head.'
UPDATE_PREFIX = 'decode_head.kernel_update_head.'
#: top-level modules of an mmseg ``EncoderDecoder`` K-Net
TOP_LEVEL_MODULES = ('backbone', 'neck', 'decode_head', 'auxiliary_head')
#: keys every update stage has (whatever its options)
REQUIRED_STAGE_KEYS = ('attention.attn.in_proj_weight',
                       'attention.attn.out_proj.weight',
                       'attention_norm.weight',
                       'kernel_update_conv.dynamic_layer.weight',
                       'kernel_update_conv.input_layer.weight',
                       'kernel_update_conv.fc_layer.weight', 'fc_mask.weight')
_STAGE_KEY = re.compile(r'^decode_head\.kernel_update_head\.(\d+)\.(.+)$')
_MAX_LISTED = 20


class SegCheckpointError(CheckpointMismatchError):
    """A checkpoint is not a (consistent) semantic K-Net."""


def _unwrap(state_dict: Mapping) -> Mapping:
    """Accept a whole checkpoint where a state dict is expected."""
    inner = state_dict.get('state_dict') if isinstance(state_dict,
                                                       Mapping) else None
    return inner if isinstance(inner, Mapping) else state_dict


def _strip_module(state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k,
                        v) for k, v in state_dict.items())


def is_seg_state_dict(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether the weights are a semantic K-Net (generate + update heads).

    Args:
        state_dict (Mapping): A state dict, or a checkpoint holding one
            under ``'state_dict'``; a ``module.`` prefix is ignored.

    Returns:
        bool: True when both ``kernel_generate_head`` and
        ``kernel_update_head`` keys of a ``decode_head`` are present.
    """
    keys = list(_strip_module(_unwrap(state_dict)))
    return (any(k.startswith(GENERATE_PREFIX) for k in keys)
            and any(k.startswith(UPDATE_PREFIX) for k in keys))


def seg_state_dict_info(state_dict: Mapping[str, Tensor]) -> dict:
    """Summarise a semantic K-Net state dict (for errors and config choice).

    Returns:
        dict: ``num_classes`` and ``kernel_channels`` (from the generate
        head's ``conv_seg.weight``), ``num_stages``, ``stage_channels`` and
        ``updator_channels`` (of stage 0), ``generate_head`` (``'UPerHead'``,
        ``'ASPPHead'``, ``'PSPHead'``, ``'FCNHead'`` or None). Missing items
        are None.
    """
    state = _strip_module(_unwrap(state_dict))
    conv_seg = state.get(GENERATE_PREFIX + 'conv_seg.weight')
    stages = {int(m.group(1)) for m in map(_STAGE_KEY.match, state) if m}
    fc_mask = state.get(UPDATE_PREFIX + '0.fc_mask.weight')
    dynamic = state.get(UPDATE_PREFIX +
                        '0.kernel_update_conv.dynamic_layer.weight')
    head = None
    for name, key in (('UPerHead', 'fpn_bottleneck.conv.weight'),
                      ('ASPPHead', 'aspp_modules.0.conv.weight'),
                      ('PSPHead', 'psp_modules.0.1.conv.weight'),
                      ('FCNHead', 'convs.0.conv.weight')):
        if GENERATE_PREFIX + key in state:
            head = name
            break
    return dict(
        num_classes=None if conv_seg is None else int(conv_seg.shape[0]),
        kernel_channels=None if conv_seg is None else int(conv_seg.shape[1]),
        num_stages=len(stages),
        stage_channels=None if fc_mask is None else int(fc_mask.shape[1]),
        updator_channels=None if dynamic is None else int(dynamic.shape[1]),
        generate_head=head)


def _check_stages(state: Dict[str, Tensor]) -> List[str]:
    """Problems of the update stages: numbering, keys, widths."""
    problems = []
    stages: Dict[int, Dict[str, Tensor]] = {}
    for key, value in state.items():
        match = _STAGE_KEY.match(key)
        if match:
            stages.setdefault(int(match.group(1)), {})[match.group(2)] = value
    if not stages:
        return [f'no `{UPDATE_PREFIX}<i>.*` keys (not a semantic K-Net)']
    if sorted(stages) != list(range(len(stages))):
        problems.append(f'update stages are not numbered 0..n-1: '
                        f'{sorted(stages)}')
    first = stages[min(stages)]
    for idx, stage in sorted(stages.items()):
        name = f'{UPDATE_PREFIX}{idx}'
        missing = [k for k in REQUIRED_STAGE_KEYS if k not in stage]
        if missing:
            problems.append(f'{name}: missing {missing}')
        classifier = sorted(k for k in stage
                            if k.startswith(('fc_cls.', 'cls_fcs.')))
        if classifier:
            problems.append(f'{name}: has classifier weights {classifier} '
                            '(a det/video K-Net stage, not a semantic one)')
        if set(stage) != set(first):
            diff = sorted(set(stage) ^ set(first))
            problems.append(f'{name}: keys differ from stage '
                            f'{min(stages)}: {diff[:_MAX_LISTED]}')
        shapes = [
            f'{k} {tuple(v.shape)} vs {tuple(first[k].shape)}'
            for k, v in stage.items()
            if k in first and v.shape != first[k].shape
        ]
        if shapes:
            problems.append(f'{name}: shapes differ from stage '
                            f'{min(stages)}: {shapes[:_MAX_LISTED]}')
        if missing:
            continue
        channels = stage['fc_mask.weight'].shape[1]
        updator = stage['kernel_update_conv.dynamic_layer.weight'].shape[1]
        if channels % updator:
            problems.append(
                f'{name}: kernel width {channels} is not a multiple of the '
                f'kernel updator width {updator}')
    return problems


def _check(state: Dict[str, Tensor],
           reference: Optional[Mapping[str, Tensor]]) -> List[str]:
    problems = []
    top = sorted({k.split('.', 1)[0] for k in state} -
                 set(TOP_LEVEL_MODULES))
    if top:
        problems.append(f'unexpected top-level modules {top} (expected '
                        f'{list(TOP_LEVEL_MODULES)})')
    stray = [
        k for k in state if k.startswith('decode_head.')
        and not k.startswith((GENERATE_PREFIX, UPDATE_PREFIX))
    ]
    if stray:
        problems.append(
            f'decode_head keys outside kernel_generate_head / '
            f'kernel_update_head ({len(stray)}): {stray[:_MAX_LISTED]}')
    conv_seg = state.get(GENERATE_PREFIX + 'conv_seg.weight')
    if conv_seg is None or conv_seg.dim() != 4:
        problems.append(f'missing or malformed {GENERATE_PREFIX}'
                        'conv_seg.weight (the initial kernels)')
    problems += _check_stages(state)
    info = seg_state_dict_info(state)
    if (conv_seg is not None and info['stage_channels'] is not None
            and info['stage_channels'] != info['kernel_channels']):
        problems.append(
            f'kernel_generate_head makes {info["kernel_channels"]}-d kernels '
            f'but the update stages are {info["stage_channels"]}-d')
    if reference is not None:
        missing = [k for k in reference if k not in state]
        unexpected = [k for k in state if k not in reference]
        shapes = [
            f'{k}: checkpoint {tuple(state[k].shape)} vs model '
            f'{tuple(reference[k].shape)}' for k in reference
            if k in state and state[k].shape != reference[k].shape
        ]
        for title, items in (('missing in checkpoint', missing),
                             ('unexpected in checkpoint', unexpected),
                             ('shape mismatch', shapes)):
            if items:
                more = (f' ... and {len(items) - _MAX_LISTED} more'
                        if len(items) > _MAX_LISTED else '')
                problems.append(f'{title} ({len(items)}): ' +
                                ', '.join(items[:_MAX_LISTED]) + more)
        key = GENERATE_PREFIX + 'conv_seg.weight'
        if (key in state and key in reference
                and state[key].shape[1:] != reference[key].shape[1:]):
            problems.append(
                f'hint: the checkpoint has {state[key].shape[1]}-d kernels, '
                f'the model {reference[key].shape[1]}-d; mmseg\'s released '
                'UPerNet / Swin K-Nets use channels=512, the original K-Net '
                'UPerNet configs 256 (set the generate head `channels` and '
                'the stages\' in/out_channels to match)')
    return problems


def convert_seg_state_dict(
        state_dict: Mapping[str, Tensor],
        reference: Optional[Mapping[str, Tensor]] = None) -> Dict[str, Tensor]:
    """Convert an original-K-Net / mmseg K-Net seg state dict to ours.

    The key layouts are identical, so the tensors are returned unchanged
    (``module.`` prefixes stripped) once the weights pass the checks.

    Args:
        state_dict (Mapping[str, Tensor]): Weights of an mmseg
            ``EncoderDecoder`` K-Net (a whole checkpoint is unwrapped).
        reference (Mapping[str, Tensor], optional): ``state_dict()`` of the
            target model; when given, keys and shapes must match it exactly.

    Returns:
        dict[str, Tensor]: The state dict for ``KNetIterativeDecodeHead``
        models.

    Raises:
        SegCheckpointError: Listing every mismatch found.
    """
    state = _strip_module(_unwrap(state_dict))
    problems = _check(state, reference)
    if problems:
        info = seg_state_dict_info(state)
        summary = ', '.join(f'{k}={v}' for k, v in info.items())
        raise SegCheckpointError(
            'not a valid semantic K-Net checkpoint (' + summary + '):\n  ' +
            '\n  '.join(problems))
    return state


def detect_seg_source(checkpoint: Mapping) -> str:
    """Guess where a seg checkpoint comes from, from its meta.

    Returns:
        str: ``'knet-mm'`` (this project), ``'knet-original'`` (the original
        repository: ``*KernelHead`` generate heads), ``'mmseg'`` (mmseg's
        K-Net) or ``'unknown'``. The weights are the same in every case.
    """
    meta = checkpoint.get('meta') or {}
    if not isinstance(meta, Mapping):
        return 'unknown'
    if 'knet_version' in meta or meta.get('converted_by'):
        return 'knet-mm'
    config = meta.get('config', '')
    config = config if isinstance(config, str) else str(config)
    if re.search(r"(FCN|PSP|ASPP|UPer)KernelHead", config):
        return 'knet-original'
    if 'IterativeDecodeHead' in config or 'mmseg_version' in meta:
        return 'mmseg'
    return 'unknown'


def convert_seg_checkpoint(
        checkpoint: Mapping,
        reference: Optional[Mapping[str, Tensor]] = None) -> dict:
    """Convert a whole seg checkpoint: validated weights + rewritten meta.

    The optimizer, schedulers and message hub are dropped. The new meta
    keeps the classes / palette as mmseg 1.x's ``dataset_meta`` (read by
    ``mmseg.apis.init_model``) and records the detected source.

    Args:
        checkpoint (Mapping): ``{'state_dict': ..., 'meta': ...}`` or a bare
            state dict.
        reference (Mapping[str, Tensor], optional): See
            :func:`convert_seg_state_dict`.

    Returns:
        dict: ``{'meta': dict, 'state_dict': dict}``.
    """
    from knet import __version__
    state = convert_seg_state_dict(checkpoint, reference)
    meta = checkpoint.get('meta') if 'state_dict' in checkpoint else None
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    dataset_meta = dict(meta.get('dataset_meta') or {})
    if meta.get('CLASSES') is not None:
        dataset_meta.setdefault('classes', tuple(meta['CLASSES']))
    if meta.get('PALETTE') is not None:
        dataset_meta.setdefault('palette', [list(c) for c in meta['PALETTE']])
    new_meta = dict(
        dataset_meta=dataset_meta,
        converted_by='knet.utils.convert_seg',
        knet_version=__version__,
        source=detect_seg_source({'meta': meta}),
        source_versions={
            k: meta[k]
            for k in ('mmseg_version', 'mmcv_version', 'mmengine_version')
            if k in meta
        })
    return {'meta': new_meta, 'state_dict': state}
