# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Convert released K-Net checkpoints into checkpoints of this project.

The models keep the original state-dict key names, so conversion is
validation: the variant (instance / panoptic, R-50 / R-101 / DCN / Swin-L,
or a semantic model) is recognised from the keys and shapes, the matching
config is built, and every key and shape must agree. Anything else is an
error that lists what does not match.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from .checkpoint_compat import atomic_torch_save, safe_torch_load

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET_CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'det', 'knet')
SEG_CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'seg', 'knet')

#: COCO-panoptic class split used by every released det model
NUM_THING_CLASSES = 80


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is meant for."""


def load_checkpoint_file(path: str, unsafe: Optional[bool] = None
                         ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Return (state_dict, meta) of an mmcv/mmengine or bare checkpoint.

    Loaded with the allow-listed safe unpickler; ``unsafe=True`` (or
    ``KNET_UNSAFE_LOAD=1``) opts in to full pickle for trusted files.
    """
    ckpt = safe_torch_load(path, map_location='cpu', unsafe=unsafe)
    if not isinstance(ckpt, dict):
        raise CheckpointMismatchError(
            f'{path}: expected a dict checkpoint, got {type(ckpt).__name__}')
    state = ckpt.get('state_dict', ckpt.get('model', ckpt))
    if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatchError(
            f'{path}: no state_dict of tensors found (top-level keys: '
            f'{sorted(ckpt)[:10]})')
    state = OrderedDict(
        (k[7:] if k.startswith('module.') else k, v)
        for k, v in state.items())
    meta = ckpt.get('meta', {}) if isinstance(ckpt.get('meta'), dict) else {}
    return state, meta


def is_det_state_dict(state: Dict[str, torch.Tensor]) -> bool:
    """A K-Net instance/panoptic model (kernel head + update stages)."""
    return ('rpn_head.init_kernels.weight' in state
            and any(k.startswith('roi_head.mask_head.') for k in state))


def infer_det_config(state: Dict[str, torch.Tensor]) -> str:
    """Pick the det config of ``configs/det/knet`` matching the weights."""
    num_classes = state['rpn_head.conv_seg.weight'].shape[0]
    if num_classes == NUM_THING_CLASSES:
        task = 'coco'
    elif num_classes == 133:
        task = 'coco-panoptic'
    else:
        raise CheckpointMismatchError(
            f'rpn_head.conv_seg has {num_classes} classes; released K-Net '
            'models have 80 (instance) or 133 (panoptic). Convert custom '
            'models with --config.')
    if any(k.startswith('backbone.patch_embed') for k in state):
        name = f'knet_s3_swin-l_fpn_ms-3x_16x2_{task}.py'
    else:
        blocks = {k.split('.')[2] for k in state
                  if k.startswith('backbone.layer3.')}
        depth = {6: 'r50', 23: 'r101'}.get(len(blocks))
        if depth is None:
            raise CheckpointMismatchError(
                f'backbone.layer3 has {len(blocks)} blocks: not a ResNet-50 '
                '/ 101 K-Net; pass --config')
        dcn = any('conv2.conv_offset' in k for k in state)
        if dcn:
            name = f'knet_s3_{depth}_dcn-c3-c5_fpn_ms-3x_{task}.py'
        elif depth == 'r50':
            name = f'knet_s3_r50_fpn_1x_{task}.py'
        else:
            name = f'knet_s3_r101_fpn_ms-3x_{task}.py'
    path = osp.join(DET_CONFIG_DIR, name)
    if not osp.isfile(path):
        raise CheckpointMismatchError(f'no config for this model: {path}')
    return path


def infer_seg_config(state: Dict[str, torch.Tensor]) -> str:
    """Pick the seg config of ``configs/seg/knet`` matching the weights."""
    prefix = 'decode_head.kernel_generate_head.'
    if any(k.startswith('backbone.patch_embed') for k in state):
        embed = state['backbone.patch_embed.projection.weight'].shape[0]
        if embed == 96:
            name = 'knet_s3_upernet_swin-t_80k_adamw_ade20k.py'
        elif embed == 192:
            name = 'knet_s3_upernet_swin-l_80k_adamw_ade20k.py'
        else:
            raise CheckpointMismatchError(
                f'Swin with embed dims {embed}: pass --config')
    elif prefix + 'fpn_bottleneck.conv.weight' in state:
        name = 'knet_s3_upernet_r50-d8_80k_adamw_ade20k.py'
    elif prefix + 'aspp_modules.1.conv.weight' in state:
        name = 'knet_s3_deeplabv3_r50-d8_80k_adamw_ade20k.py'
    elif prefix + 'psp_modules.0.1.conv.weight' in state:
        name = 'knet_s3_pspnet_r50-d8_80k_adamw_ade20k.py'
    elif prefix + 'conv_cat.conv.weight' in state:
        name = 'knet_s3_fcn_r50-d8_80k_adamw_ade20k.py'
    else:
        raise CheckpointMismatchError(
            'unrecognised K-Net kernel generate head; pass --config')
    path = osp.join(SEG_CONFIG_DIR, name)
    if not osp.isfile(path):
        raise CheckpointMismatchError(f'no config for this model: {path}')
    return path


def build_model_from_config(config: str, seg_width: Optional[int] = None):
    """Build the model of a config without loading pretrained weights.

    ``seg_width`` sets the kernel width of a semantic K-Net (mmseg released
    its UPerNet / Swin K-Nets with 512 channels, the original used 256).
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import knet  # noqa: F401  (registers the modules)
    cfg = Config.fromfile(config)
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    if scope == 'mmseg':
        from mmseg.registry import MODELS
        if cfg.model.get('pretrained'):
            cfg.model.pretrained = None
    else:
        from mmdet.registry import MODELS
    cfg.model.setdefault('backbone', {})['init_cfg'] = None
    if seg_width is not None:
        head = cfg.model.decode_head
        head.kernel_generate_head.channels = seg_width
        stages = head.kernel_update_head
        for stage in (stages if isinstance(stages, list) else [stages]):
            stage.in_channels = stage.out_channels = seg_width
    return MODELS.build(cfg.model), cfg


def compare_state_dicts(state: Dict[str, torch.Tensor],
                        expected: Dict[str, torch.Tensor]) -> List[str]:
    """Human-readable differences (missing, unexpected, shape)."""
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(expected[k].shape)}' for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    for title, items in (('missing in checkpoint', missing),
                         ('unexpected in checkpoint', unexpected),
                         ('shape mismatch', shapes)):
        if items:
            shown = items[:20]
            more = f' ... and {len(items) - 20} more' if len(items) > 20 \
                else ''
            problems.append(f'{title} ({len(items)}): ' + ', '.join(shown) +
                            more)
    return problems


def _dataset_meta(meta: dict, state: Dict[str, torch.Tensor]) -> dict:
    classes = meta.get('CLASSES') or meta.get('dataset_meta', {}).get(
        'classes')
    if not classes:
        return meta.get('dataset_meta', {})
    classes = tuple(classes)
    out = dict(meta.get('dataset_meta', {}), classes=classes)
    if len(classes) > NUM_THING_CLASSES and is_det_state_dict(state):
        out['thing_classes'] = classes[:NUM_THING_CLASSES]
        out['stuff_classes'] = classes[NUM_THING_CLASSES:]
    return out


def check_destination(src: str, dst: str, force: bool = False) -> None:
    """Refuse to overwrite the source, or an existing file without force."""
    if osp.abspath(dst) == osp.abspath(src) or (
            osp.exists(dst) and osp.exists(src) and osp.samefile(src, dst)):
        raise FileExistsError(
            f'destination {dst} is the source checkpoint: converting in '
            'place would drop its optimizer / training state; give another '
            'output path')
    if osp.exists(dst) and not force:
        raise FileExistsError(
            f'{dst} already exists; pass --force (force=True) to overwrite '
            'it')
    if osp.isdir(dst):
        raise IsADirectoryError(f'destination {dst} is a folder; give a '
                                'file path')


def convert_checkpoint(src: str,
                       dst: str,
                       config: Optional[str] = None,
                       force: bool = False,
                       unsafe: Optional[bool] = None) -> str:
    """Validate and rewrite ``src`` as a checkpoint of this project.

    Args:
        src (str): Original K-Net (det or seg), mmseg K-Net, or already
            converted checkpoint.
        dst (str): Output path (written atomically).
        config (str, optional): Config of the target model; inferred from
            the weights when omitted.
        force (bool): Overwrite an existing ``dst`` (never ``src``).
        unsafe (bool, optional): Load ``src`` with full pickle (trusted
            files only); None follows ``KNET_UNSAFE_LOAD``.

    Returns:
        str: The config the checkpoint was validated against.
    """
    check_destination(src, dst, force)
    state, meta = load_checkpoint_file(src, unsafe=unsafe)
    if config is None:
        if is_det_state_dict(state):
            config = infer_det_config(state)
        else:
            from .convert_seg import is_seg_state_dict
            if not is_seg_state_dict(state):
                raise CheckpointMismatchError(
                    f'{src} is not a K-Net checkpoint: it has neither '
                    '`rpn_head.init_kernels` + `roi_head.mask_head.*` (det) '
                    'nor `decode_head.kernel_update_head.*` (seg) keys. '
                    f'First keys: {list(state)[:5]}')
            config = infer_seg_config(state)
    seg_width = None
    if any(k.startswith('decode_head.') for k in state):
        from .convert_seg import convert_seg_state_dict, seg_state_dict_info
        state = convert_seg_state_dict(state)
        seg_width = seg_state_dict_info(state)['kernel_channels']
    model, _ = build_model_from_config(config, seg_width=seg_width)
    problems = compare_state_dicts(state, model.state_dict())
    if problems:
        raise CheckpointMismatchError(
            f'{src} does not match {osp.relpath(config, REPO_ROOT)}:\n  ' +
            '\n  '.join(problems))
    new_meta = dict(
        converted_from=osp.basename(src),
        config=osp.relpath(config, REPO_ROOT),
        dataset_meta=_dataset_meta(meta, state))
    atomic_torch_save({'meta': new_meta, 'state_dict': state}, dst)
    return config
