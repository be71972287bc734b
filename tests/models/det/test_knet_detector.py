# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net detector: the original key tree, every det config builds, and a
shrunk model runs loss / predict / tensor on synthetic inputs."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.registry import init_default_scope

from knet.utils.checkpoint_convert import build_model_from_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
DET_CFGS = sorted(glob.glob(osp.join(REPO, 'configs/det/knet/*.py')))


def _param_count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name,params', [
    ('knet_s3_r50_fpn_1x_coco-panoptic.py', 37_536_852),
    ('knet_s3_r50_fpn_1x_coco.py', 37_482_368),
])
def test_r50_key_tree_matches_the_original(name, params):
    model, _ = build_model_from_config(
        osp.join(REPO, 'configs/det/knet', name))
    state = model.state_dict()
    assert len(state) == 502
    prefixes = {}
    for key in state:
        prefixes[key.split('.')[0]] = prefixes.get(key.split('.')[0], 0) + 1
    assert prefixes == dict(backbone=318, neck=16, rpn_head=36, roi_head=132)
    assert _param_count(model) == params
    stage = {k[len('roi_head.mask_head.0.'):]: v.shape
             for k, v in state.items()
             if k.startswith('roi_head.mask_head.0.')}
    assert len(stage) == 44
    num_classes = 133 if 'panoptic' in name else 80
    assert stage['fc_cls.weight'] == (num_classes, 256)
    assert stage['attention.attn.in_proj_weight'] == (768, 256)
    assert stage['kernel_update_conv.dynamic_layer.weight'] == (512, 256)
    assert stage['ffn.layers.0.0.weight'] == (2048, 256)
    assert state['rpn_head.init_kernels.weight'].shape == (100, 256, 1, 1)
    assert state['rpn_head.conv_seg.weight'].shape == (num_classes, 256, 1,
                                                       1)
    assert ('rpn_head.localization_fpn.convs_all_levels.3.conv2.conv.weight'
            in state)
    assert 'rpn_head.localization_fpn.aux_convs.0.gn.bias' in state


@pytest.mark.parametrize('cfg_path', DET_CFGS, ids=osp.basename)
def test_every_det_config_builds(cfg_path):
    cfg = Config.fromfile(cfg_path)
    assert cfg.custom_imports.imports == ['knet']
    if 'swin' in cfg_path:
        # Swin-L is large: check the config resolves, build only the heads
        assert cfg.model.backbone.type == 'SwinTransformer'
        assert cfg.model.neck.in_channels == [192, 384, 768, 1536]
        return
    model, _ = build_model_from_config(cfg_path)
    assert model.roi_head.num_stages == 3
    if 'dcn' in cfg_path:
        assert any('conv_offset' in k for k in model.state_dict())


def _tiny_cfg(panoptic: bool):
    name = 'knet_s3_r50_fpn_1x_coco-panoptic.py' if panoptic else \
        'knet_s3_r50_fpn_1x_coco.py'
    cfg = Config.fromfile(osp.join(REPO, 'configs/det/knet', name))
    cfg.model.backbone.update(depth=18, init_cfg=None)
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    return cfg


def _panoptic_inputs(num_things=80):
    packed = demo_mm_inputs(
        2, image_shapes=[(3, 128, 127), (3, 91, 92)], with_mask=True,
        with_semantic=True, num_classes=num_things)
    gen = torch.Generator().manual_seed(0)
    for sample in packed['data_samples']:
        height, width = sample.gt_sem_seg.sem_seg.shape[-2:]
        seg = torch.randint(78, 90, (1, height, width), generator=gen)
        seg[:, :10] = 255
        sample.gt_sem_seg.sem_seg = seg
    return packed


@pytest.mark.parametrize('panoptic', [True, False])
def test_tiny_knet_loss_predict_tensor(panoptic):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = _tiny_cfg(panoptic)
    model = MODELS.build(cfg.model)
    model.init_weights()
    packed = _panoptic_inputs()
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    expected = {'loss_rpn_mask', 'loss_rpn_dice', 'loss_rpn_seg'}
    for s in range(3):
        expected |= {f's{s}_loss_cls', f's{s}_loss_mask', f's{s}_loss_dice',
                     f's{s}_pos_acc'}
    if panoptic:
        expected |= {'loss_rpn_rank'} | {f's{s}_loss_rank' for s in range(3)}
    assert set(losses) == expected
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.rpn_head.init_kernels.weight.grad is not None

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(packed, False)
        results = model(**data, mode='predict')
        outs = model(**data, mode='tensor')
    assert len(outs) == 3
    num_kernels = 153 if panoptic else 100
    assert outs[-1][0].shape[:2] == (2, num_kernels)
    for sample, src in zip(results, packed['data_samples']):
        assert isinstance(sample, DetDataSample)
        height, width = src.ori_shape
        if panoptic:
            assert sample.pred_panoptic_seg.sem_seg.shape == (1, height,
                                                              width)
        else:
            inst = sample.pred_instances
            assert inst.masks.shape == (100, height, width)
            assert inst.bboxes.shape == (100, 4)
            assert (inst.scores[:-1] >= inst.scores[1:]).all()
