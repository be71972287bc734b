# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Every config under configs/seg builds, and carries the K-Net settings."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import knet.models.seg  # noqa: F401  (registers the seg heads)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
SEG_CONFIGS = osp.join(REPO, 'configs', 'seg')
CONFIGS = sorted(
    osp.relpath(p, SEG_CONFIGS)
    for p in glob.glob(osp.join(SEG_CONFIGS, '*', '*.py'))
    if '_base_' not in p)
KNET_CONFIGS = [c for c in CONFIGS if c.startswith('knet/')]
EXPECTED = [
    'baselines/deeplabv3_r50-d8_512x512_80k_8x2_adamw_ade20k.py',
    'baselines/fcn_r50-d8_512x512_80k_8x2_adamw_ade20k.py',
    'baselines/pspnet_r50-d8_512x512_80k_8x2_adamw_ade20k.py',
    'baselines/upernet_r50_512x512_80k_8x2_adamw_ade20k.py',
    'knet/knet_s3_deeplabv3_r50-d8_80k_adamw_ade20k.py',
    'knet/knet_s3_fcn_r50-d8_80k_adamw_ade20k.py',
    'knet/knet_s3_pspnet_r50-d8_80k_adamw_ade20k.py',
    'knet/knet_s3_upernet_r50-d8_80k_adamw_ade20k.py',
    'knet/knet_s3_upernet_swin-l_80k_adamw_640x640_ade20k.py',
    'knet/knet_s3_upernet_swin-l_80k_adamw_ade20k.py',
    'knet/knet_s3_upernet_swin-t_80k_adamw_ade20k.py',
]


def load(name: str) -> Config:
    return Config.fromfile(osp.join(SEG_CONFIGS, name))


def build_model(cfg: Config):
    """Build ``cfg.model`` without pretrained weights (no downloads)."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.pretrained = None
    model_cfg.backbone.pop('pretrained', None)
    model_cfg.backbone.init_cfg = None
    return MODELS.build(model_cfg)


def test_config_set_is_complete():
    assert CONFIGS == EXPECTED


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = load(name)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(
        imports=['knet'], allow_failed_imports=False)
    model = build_model(cfg)
    head = model.decode_head
    assert head.num_classes == 150 and model.num_classes == 150
    assert model.auxiliary_head.num_classes == 150
    assert model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert cfg.model.test_cfg.mode == 'whole'
    if not name.startswith('knet/'):
        return
    assert type(head).__name__ == 'KNetIterativeDecodeHead'
    assert head.num_stages == 3 and len(head.kernel_update_head) == 3
    channels = head.kernel_generate_head.conv_seg.in_channels
    assert channels == (256 if 'upernet' in name else 512)
    for stage in head.kernel_update_head:
        assert stage.mask_pooling == 'softmax' and not stage.with_cls
        assert stage.in_channels == channels
        assert stage.kernel_update_conv.in_channels == 256
        assert stage.conv_kernel_size == 1
    assert not hasattr(head, 'conv_seg')


def test_schedule_and_data():
    cfg = load('knet/knet_s3_fcn_r50-d8_80k_adamw_ade20k.py')
    optim = cfg.optim_wrapper
    assert optim.optimizer == dict(type='AdamW', lr=1e-4,
                                   weight_decay=5e-4)
    assert optim.clip_grad == dict(max_norm=1, norm_type=2)
    assert 'paramwise_cfg' not in optim
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end,
            warmup.by_epoch) == ('LinearLR', 0.001, 1000, False)
    assert (steps.type, steps.milestones, steps.gamma, steps.begin,
            steps.by_epoch) == ('MultiStepLR', [60000, 72000], 0.1, 0, False)
    assert cfg.train_cfg == dict(
        type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
    assert cfg.default_hooks.checkpoint.interval == 8000
    assert cfg.env_cfg.cudnn_benchmark is True
    data = cfg.train_dataloader
    assert data.batch_size == 2
    assert data.dataset.data_root == 'data/ade/ADEChallengeData2016'
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.data_preprocessor.seg_pad_val == 255
    resize, crop = data.dataset.pipeline[2:4]
    assert resize.scale == (2048, 512) and resize.ratio_range == (0.5, 2.0)
    assert crop.crop_size == (512, 512) and crop.cat_max_ratio == 0.75
    assert cfg.model.pretrained == 'open-mmlab://resnet50_v1c'
    assert cfg.model.backbone.dilations == (1, 1, 2, 4)
    upernet = load('knet/knet_s3_upernet_r50-d8_80k_adamw_ade20k.py')
    assert upernet.model.backbone.strides == (1, 2, 2, 2)
    assert upernet.model.backbone.dilations == (1, 1, 1, 1)


def test_swin_settings():
    tiny = load('knet/knet_s3_upernet_swin-t_80k_adamw_ade20k.py')
    assert tiny.model.backbone.type == 'SwinTransformer'
    assert tiny.model.backbone.drop_path_rate == 0.3
    assert tiny.optim_wrapper.optimizer.lr == 6e-5
    assert tiny.optim_wrapper.optimizer.weight_decay == 5e-4
    assert tiny.optim_wrapper.clip_grad.max_norm == 1
    keys = tiny.optim_wrapper.paramwise_cfg.custom_keys
    assert {k: v.decay_mult for k, v in keys.items()} == {
        'absolute_pos_embed': 0.,
        'relative_position_bias_table': 0.,
        'norm': 0.
    }
    large = load('knet/knet_s3_upernet_swin-l_80k_adamw_ade20k.py')
    assert large.model.backbone.embed_dims == 192
    assert large.model.backbone.depths == [2, 2, 18, 2]
    assert large.model.decode_head.kernel_generate_head.in_channels == [
        192, 384, 768, 1536
    ]
    assert large.optim_wrapper == tiny.optim_wrapper
    big = load('knet/knet_s3_upernet_swin-l_80k_adamw_640x640_ade20k.py')
    assert big.model.backbone.drop_path_rate == 0.4
    assert big.model.data_preprocessor.size == (640, 640)
    train = big.train_dataloader.dataset.pipeline
    assert train[2].scale == (2048, 640) and train[3].crop_size == (640, 640)
    assert big.val_dataloader.dataset.pipeline[1].scale == (2048, 640)
    assert big.test_dataloader.dataset.pipeline[1].scale == (2048, 640)


def test_fcn_state_dict_layout():
    """Spec §4: K-Net seg keys / shapes (512-d stages, 256-d updator)."""
    model = build_model(load('knet/knet_s3_fcn_r50-d8_80k_adamw_ade20k.py'))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    gen = 'decode_head.kernel_generate_head.'
    stage = 'decode_head.kernel_update_head.2.'
    assert shapes[gen + 'conv_seg.weight'] == (150, 512, 1, 1)
    assert shapes[gen + 'conv_cat.conv.weight'] == (512, 2560, 3, 3)
    assert shapes[stage + 'attention.attn.in_proj_weight'] == (1536, 512)
    assert shapes[stage + 'kernel_update_conv.dynamic_layer.weight'] == (512,
                                                                         256)
    assert shapes[stage + 'kernel_update_conv.fc_norm.weight'] == (256, )
    assert shapes[stage + 'feat_transform.conv.weight'] == (512, 512, 1, 1)
    assert shapes[stage + 'ffn.layers.0.0.weight'] == (2048, 512)
    assert shapes[stage + 'fc_mask.weight'] == (512, 512)
    assert shapes['auxiliary_head.conv_seg.weight'] == (150, 256, 1, 1)
    assert not any('fc_cls' in k or 'cls_fcs' in k for k in shapes)
    assert not any(k.startswith('decode_head.conv_seg') for k in shapes)
    assert 'decode_head.kernel_update_head.3.fc_mask.weight' not in shapes


def test_custom_imports_register_the_seg_heads():
    """The configs only import ``knet``: that must register the seg heads
    (``mim train mmseg CFG`` / ``tools/train.py CFG``, no PYTHONPATH)."""
    code = ('import knet; from mmseg.registry import MODELS; '
            "missing = [n for n in ('KNetIterativeDecodeHead', "
            "'FCNKernelHead') if n not in MODELS.module_dict]; "
            "assert not missing, f'import knet does not register {missing}'")
    proc = subprocess.run([sys.executable, '-c', code],
                          cwd=REPO,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
