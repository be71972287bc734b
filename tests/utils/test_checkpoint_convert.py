# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
import os.path as osp
import subprocess
import sys

import pytest
import torch

from knet.utils.checkpoint_convert import (CheckpointMismatchError,
                                           build_model_from_config,
                                           convert_checkpoint,
                                           infer_det_config)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAN_CFG = osp.join(REPO, 'configs/det/knet/knet_s3_r50_fpn_1x_coco-panoptic.py')


@pytest.fixture(scope='module')
def panoptic_model():
    model, _ = build_model_from_config(PAN_CFG)
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_()
    return model


def _original_format(model, path, classes=133):
    """A checkpoint laid out as the original mmdet 2.x release files."""
    torch.save(
        {
            'meta': {
                'mmdet_version': '2.17.0',
                'CLASSES': tuple(f'c{i}' for i in range(classes)),
                'epoch': 12
            },
            'state_dict': model.state_dict(),
            'optimizer': {'state': {}, 'param_groups': []},
        }, path)


def test_original_checkpoint_converts_and_loads_strictly(
        tmp_path, panoptic_model):
    src, dst = str(tmp_path / 'orig.pth'), str(tmp_path / 'ours.pth')
    _original_format(panoptic_model, src)
    config = convert_checkpoint(src, dst)
    assert osp.basename(config) == 'knet_s3_r50_fpn_1x_coco-panoptic.py'
    ckpt = torch.load(dst, weights_only=False)
    assert 'optimizer' not in ckpt
    meta = ckpt['meta']['dataset_meta']
    assert len(meta['thing_classes']) == 80
    assert len(meta['stuff_classes']) == 53
    fresh, _ = build_model_from_config(PAN_CFG)
    fresh.load_state_dict(ckpt['state_dict'], strict=True)
    for (k, a), b in zip(fresh.state_dict().items(),
                         panoptic_model.state_dict().values()):
        assert torch.equal(a, b), k
    # round trip: our own format converts again to the same tensors
    dst2 = str(tmp_path / 'again.pth')
    convert_checkpoint(dst, dst2)
    again = torch.load(dst2, weights_only=False)['state_dict']
    assert all(torch.equal(again[k], v) for k, v in ckpt['state_dict'].items())


def test_variant_inference_from_weights(panoptic_model):
    state = dict(panoptic_model.state_dict())
    assert infer_det_config(state).endswith(
        'knet_s3_r50_fpn_1x_coco-panoptic.py')
    state['rpn_head.conv_seg.weight'] = state['rpn_head.conv_seg.weight'][:80]
    assert infer_det_config(state).endswith('knet_s3_r50_fpn_1x_coco.py')
    extra = {f'backbone.layer3.{i}.conv1.weight': torch.zeros(1)
             for i in range(23)}
    state.update(extra)
    assert infer_det_config(state).endswith('knet_s3_r101_fpn_ms-3x_coco.py')
    state['backbone.layer2.0.conv2.conv_offset.weight'] = torch.zeros(1)
    assert 'dcn-c3-c5' in infer_det_config(state)


def test_other_model_gets_a_clear_error(tmp_path):
    src = str(tmp_path / 'mask_rcnn.pth')
    torch.save({'state_dict': {'rpn_head.rpn_conv.weight': torch.zeros(1),
                               'roi_head.bbox_head.fc_cls.weight':
                               torch.zeros(1)}}, src)
    with pytest.raises(CheckpointMismatchError, match='not a K-Net'):
        convert_checkpoint(src, str(tmp_path / 'out.pth'))
    assert not osp.exists(tmp_path / 'out.pth')


def test_mismatching_knet_lists_keys_and_shapes(tmp_path, panoptic_model):
    state = dict(panoptic_model.state_dict())
    del state['roi_head.mask_head.2.fc_mask.bias']
    state['roi_head.mask_head.0.fc_cls.weight'] = torch.zeros(7, 256)
    src = str(tmp_path / 'broken.pth')
    torch.save({'state_dict': state}, src)
    with pytest.raises(CheckpointMismatchError) as err:
        convert_checkpoint(src, str(tmp_path / 'out.pth'), config=PAN_CFG)
    msg = str(err.value)
    assert 'missing in checkpoint (1): roi_head.mask_head.2.fc_mask.bias' in msg
    assert 'roi_head.mask_head.0.fc_cls.weight: checkpoint (7, 256)' in msg


def test_cli_reports_errors_without_traceback(tmp_path):
    src = str(tmp_path / 'x.pth')
    torch.save({'state_dict': {'a': torch.zeros(1)}}, src)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/convert_checkpoint.py'), src,
         str(tmp_path / 'y.pth')],
        capture_output=True, text=True)
    assert proc.returncode == 1
    assert 'not a K-Net checkpoint' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.parametrize('mmseg_cfg,ours', [
    ('knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py',
     'knet_s3_fcn_r50-d8_80k_adamw_ade20k.py'),
    ('knet-s3_r50-d8_upernet_8xb2-adamw-80k_ade20k-512x512.py',
     'knet_s3_upernet_r50-d8_80k_adamw_ade20k.py'),
])
def test_mmseg_released_knet_is_detected_and_converted(
        tmp_path, mmseg_cfg, ours):
    """mmseg's K-Net weights (512-channel UPerNet included) convert without
    --config and load strictly into our model."""
    import mmseg
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'knet',
                    mmseg_cfg)
    cfg = Config.fromfile(path)
    cfg.model.pretrained = None
    init_default_scope('mmseg')
    ref = MODELS.build(cfg.model)
    src, dst = str(tmp_path / 'mmseg.pth'), str(tmp_path / 'ours.pth')
    torch.save({'meta': {'CLASSES': ('a', 'b')}, 'state_dict':
                ref.state_dict()}, src)
    config = convert_checkpoint(src, dst)
    assert osp.basename(config) == ours
    state = torch.load(dst, weights_only=False)['state_dict']
    assert set(state) == set(ref.state_dict())
    assert all(torch.equal(state[k], v) for k, v in ref.state_dict().items())
