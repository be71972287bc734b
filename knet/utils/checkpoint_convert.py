# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Convert released K-Net checkpoints into checkpoints of this project.

The models keep the original state-dict key names, so conversion is
validation: the variant (instance / panoptic, R-50 / R-101 / DCN / Swin-L,
Cityscapes-STEP, a semantic model, or a Video K-Net for KITTI-STEP /
VIP-Seg) is recognised from the keys and shapes, the matching config is
built, and every key and shape must agree. Anything else is an error that
lists what does not match. The one rename: Video K-Net's Swin backbone
(``SwinTransformerDIY``, the Microsoft Swin layout ``layers.*``,
``mlp.fc1``, ``patch_embed.proj``) becomes mmdet's ``SwinTransformer``
layout with mmdet's own ``swin_converter`` (which also reorders the
patch-merging weights).
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
#: Cityscapes-STEP / KITTI-STEP classes (2 things + 17 stuff)
NUM_STEP_CLASSES = 19
#: VIP-Seg classes (58 things + 66 stuff)
NUM_VIPSEG_CLASSES = 124
CITYSCAPES_STEP_CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'det',
                                      'knet_cityscapes_step')
#: (classes, backbone) -> Video K-Net config, relative to configs/det
VIDEO_CONFIGS = {
    (NUM_STEP_CLASSES, 'r50'):
    'video_knet_kitti_step/video_knet_s3_r50_rpn_1x_kitti_step_sigmoid_'
    'stride2_mask_embed_link_ffn_joint_train.py',
    (NUM_STEP_CLASSES, 'swinb'):
    'video_knet_kitti_step/video_knet_s3_swinb_rpn_1x_kitti_step_sigmoid_'
    'stride2_mask_embed_link_ffn_joint_train.py',
    (NUM_VIPSEG_CLASSES, 'r50'):
    'video_knet_vipseg/video_knet_s3_r50_rpn_vipseg_mask_embed_link_ffn_'
    'joint_train.py',
    (NUM_VIPSEG_CLASSES, 'swinb'):
    'video_knet_vipseg/video_knet_s3_swinb_rpn_vipseg_mask_embed_link_ffn_'
    'joint_train_8e.py',
}
#: Swin embedding width -> backbone name
SWIN_WIDTHS = {96: 'swint', 128: 'swinb', 192: 'swinl'}
#: key prefixes only a Video K-Net has
VIDEO_PREFIXES = ('track_head.', 'embed_fcs.', 'fc_embed.')


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


def is_video_state_dict(state: Dict[str, torch.Tensor]) -> bool:
    """A Video K-Net (det keys + track head / embedding FCs / link modules,
    spec video_knet_spec.md §2.5-2.6)."""
    return is_det_state_dict(state) and any(
        k.startswith(VIDEO_PREFIXES) or (
            k.startswith('roi_head.mask_head.') and '.attention_previous' in k)
        for k in state)


def _num_classes(state: Dict[str, torch.Tensor]) -> int:
    key = 'rpn_head.conv_seg.weight'
    if key not in state:
        raise CheckpointMismatchError(
            f'{key} is missing: the class count (and so the config) cannot '
            'be told; pass --config to get the full list of mismatches')
    return int(state[key].shape[0])


def backbone_name(state: Dict[str, torch.Tensor]) -> str:
    """'r50', 'r101' or 'swint' / 'swinb' / 'swinl' from the weights
    (mmdet key layout, i.e. after :func:`convert_swin_backbone`)."""
    key = 'backbone.patch_embed.projection.weight'
    if key in state:
        width = int(state[key].shape[0])
        if width not in SWIN_WIDTHS:
            raise CheckpointMismatchError(
                f'{key}: Swin with embed dims {width} (known: '
                f'{sorted(SWIN_WIDTHS)}); pass --config')
        return SWIN_WIDTHS[width]
    blocks = {k.split('.')[2] for k in state
              if k.startswith('backbone.layer3.')}
    depth = {6: 'r50', 23: 'r101'}.get(len(blocks))
    if depth is None:
        raise CheckpointMismatchError(
            f'backbone.layer3 has {len(blocks)} blocks: not a ResNet-50 / '
            '101 or Swin K-Net; pass --config')
    return depth


def is_microsoft_swin(state: Dict[str, torch.Tensor]) -> bool:
    """Swin weights in the Microsoft layout (Video K-Net's
    ``SwinTransformerDIY``: ``backbone.layers.*``, ``patch_embed.proj``)."""
    return any(
        k.startswith(('backbone.layers.', 'backbone.patch_embed.proj.'))
        for k in state)


def convert_swin_backbone(state: Dict[str, torch.Tensor]
                          ) -> Dict[str, torch.Tensor]:
    """Rename a Microsoft-layout Swin backbone to mmdet's ``SwinTransformer``
    keys (mmdet's ``swin_converter``: ``layers`` -> ``stages``, ``attn`` ->
    ``attn.w_msa``, ``mlp.fc1/fc2`` -> ``ffn.layers.0.0/1``, patch-merging
    weights reordered for ``nn.Unfold``); other weights are returned as
    they are."""
    if not is_microsoft_swin(state):
        return state
    from mmdet.models.backbones.swin import swin_converter
    prefix = 'backbone.'
    backbone = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                           if k.startswith(prefix))
    out = OrderedDict(swin_converter(backbone))  # adds 'backbone.' again
    out.update((k, v) for k, v in state.items() if not k.startswith(prefix))
    return out


def temporal_modules(state: Dict[str, torch.Tensor]) -> dict:
    """What the Video K-Net modules of a state dict are, for messages:
    ``video`` (any Video K-Net key), ``previous_type`` / ``previous_link``
    of the last stage (spec §2.5) and ``track_fcs`` (track head FCs)."""
    stages = {int(k.split('.')[2]) for k in state
              if k.startswith('roi_head.mask_head.')
              and k.split('.')[2].isdigit()}
    last = f'roi_head.mask_head.{max(stages)}.' if stages else '-'

    def has(name: str) -> bool:
        return any(k.startswith(last + name + '.') for k in state)

    previous_type = ('ffn' if has('attention_previous') else
                     'update/update_obj'
                     if has('attention_previous_update_track') else None)
    previous_link = ('update_dynamic_cov'
                     if has('attention_previous_update_link') else
                     'link_atten' if has('attention_previous_link') else None)
    track_fcs = {k.split('.')[2] for k in state
                 if k.startswith('track_head.fcs.')}
    return dict(
        video=any(k.startswith(VIDEO_PREFIXES) for k in state)
        or previous_type is not None or previous_link is not None,
        previous_type=previous_type,
        previous_link=previous_link,
        track_fcs=len(track_fcs))


def _class_set(num_classes: int) -> str:
    return {
        NUM_STEP_CLASSES: 'KITTI-STEP / Cityscapes-STEP',
        NUM_VIPSEG_CLASSES: 'VIP-Seg',
        NUM_THING_CLASSES: 'COCO instance',
        133: 'COCO panoptic'
    }.get(num_classes, 'custom')


def mismatch_hints(state: Dict[str, torch.Tensor],
                   expected: Dict[str, torch.Tensor]) -> List[str]:
    """Likely causes of a mismatch, in words (image vs video model, class
    set, temporal modules)."""
    hints = []
    got, want = temporal_modules(state), temporal_modules(expected)
    if want['video'] and not got['video']:
        hints.append(
            'the checkpoint has no Video K-Net modules (track_head, '
            'embed_fcs, fc_embed, attention_previous*): it is an image '
            'K-Net. A Video K-Net is initialised from one with --load-from '
            'CKPT when training (non-strict, as the original), not by '
            'conversion')
    elif got['video'] and not want['video']:
        hints.append('the checkpoint is a Video K-Net and the config an '
                     'image K-Net: pass a configs/det/video_knet_* config '
                     '(or none: it is inferred)')
    elif got['video'] and want['video']:
        fields = ('previous_type', 'previous_link', 'track_fcs')
        if any(got[f] != want[f] for f in fields):
            desc = ', '.join
            hints.append(
                'temporal modules differ: checkpoint ' +
                desc(f'{f}={got[f]!r}' for f in fields) + '; config ' +
                desc(f'{f}={want[f]!r}' for f in fields) +
                ' (model.roi_head.mask_head.previous_type / previous_link, '
                'model.track_head.num_fcs): write a config with the '
                "checkpoint's settings and pass --config")
    key = 'rpn_head.conv_seg.weight'
    if key in state and key in expected and (state[key].shape[0] !=
                                             expected[key].shape[0]):
        n_got, n_want = state[key].shape[0], expected[key].shape[0]
        hints.append(f'the checkpoint has {n_got} classes '
                     f'({_class_set(n_got)}), the config {n_want} '
                     f'({_class_set(n_want)})')
    return hints


def infer_video_config(state: Dict[str, torch.Tensor]) -> str:
    """Pick the Video K-Net config matching the weights: the class count
    (19 KITTI-STEP, 124 VIP-Seg) and the backbone (R-50, Swin-B)."""
    num_classes = _num_classes(state)
    backbone = backbone_name(state)
    name = VIDEO_CONFIGS.get((num_classes, backbone))
    if name is None:
        known = ', '.join(f'{c} classes + {b}' for c, b in VIDEO_CONFIGS)
        raise CheckpointMismatchError(
            f'Video K-Net with {num_classes} classes (rpn_head.conv_seg) '
            f'and backbone {backbone}: no config of this repository fits '
            f'(known: {known}; the original\'s Swin-L KITTI-STEP configs '
            'are not ported). Write one (e.g. from the Swin-B config with '
            'the backbone and previous_type / previous_link of the '
            'checkpoint) and pass --config')
    path = osp.join(REPO_ROOT, 'configs', 'det', name)
    if not osp.isfile(path):
        raise CheckpointMismatchError(f'no config for this model: {path}')
    return path


def infer_det_config(state: Dict[str, torch.Tensor]) -> str:
    """Pick the det config of ``configs/det/knet`` (COCO) or
    ``configs/det/knet_cityscapes_step`` matching the weights."""
    num_classes = _num_classes(state)
    if num_classes == NUM_STEP_CLASSES:
        backbone = backbone_name(state)
        path = osp.join(CITYSCAPES_STEP_CONFIG_DIR,
                        f'knet_s3_{backbone}_fpn.py')
        if not osp.isfile(path):
            raise CheckpointMismatchError(
                f'no Cityscapes-STEP K-Net config for backbone {backbone} '
                f'({path}); pass --config')
        return path
    if num_classes == NUM_THING_CLASSES:
        task = 'coco'
    elif num_classes == 133:
        task = 'coco-panoptic'
    else:
        raise CheckpointMismatchError(
            f'rpn_head.conv_seg has {num_classes} classes; released K-Net '
            'models have 80 (instance), 133 (panoptic) or 19 '
            '(Cityscapes-STEP), Video K-Nets 19 (KITTI-STEP) or 124 '
            '(VIP-Seg, with track_head / embed_fcs keys). Convert custom '
            'models with --config.')
    depth = backbone_name(state)
    if depth.startswith('swin'):
        if depth != 'swinl':
            raise CheckpointMismatchError(
                f'COCO K-Net with backbone {depth}: only Swin-L was '
                'released (configs/det/knet); pass --config')
        name = f'knet_s3_swin-l_fpn_ms-3x_16x2_{task}.py'
    else:
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
    # COCO panoptic: things first; video class lists stay in dataset order
    # (their thing / stuff split is the config's thing_ids)
    if len(classes) == 133 and is_det_state_dict(state):
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
        src (str): Original K-Net (det or seg), Video K-Net (VPS), mmseg
            K-Net, or already converted checkpoint.
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
    state = convert_swin_backbone(state)
    if config is None:
        if is_video_state_dict(state):
            config = infer_video_config(state)
        elif is_det_state_dict(state):
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
    expected = model.state_dict()
    problems = compare_state_dicts(state, expected)
    if problems:
        problems += [f'hint: {h}' for h in mismatch_hints(state, expected)]
        raise CheckpointMismatchError(
            f'{src} does not match {osp.relpath(config, REPO_ROOT)}:\n  ' +
            '\n  '.join(problems))
    new_meta = dict(
        converted_from=osp.basename(src),
        config=osp.relpath(config, REPO_ROOT),
        dataset_meta=_dataset_meta(meta, state))
    atomic_torch_save({'meta': new_meta, 'state_dict': state}, dst)
    return config
