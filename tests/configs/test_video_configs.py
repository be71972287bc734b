# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The configs of Video K-Net's README (issue 12 §5): Cityscapes-STEP and
COCO pre-training, KITTI-STEP and VIP-Seg video models. Each loads, its
class counts agree everywhere, its model builds, and the KITTI-STEP R-50
config carries the hyper-parameters of video_knet_spec.md §7."""
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(REPO, 'configs', 'det')

CITY = 'knet_cityscapes_step/knet_s3_r50_fpn.py'
CITY_SWINB = 'knet_cityscapes_step/knet_s3_swinb_fpn.py'
CITY_SWINL = 'knet_cityscapes_step/knet_s3_swinl_fpn.py'
COCO_INS = 'coco/knet_s3_r50_fpn_ms-3x_coco.py'
COCO_PAN = 'coco/knet_s3_r50_fpn_ms-3x_coco-panoptic.py'
_KITTI = ('video_knet_kitti_step/video_knet_s3_{}_rpn_1x_kitti_step_sigmoid_'
          'stride2_mask_embed_link_ffn_joint_train{}.py')
KITTI = _KITTI.format('r50', '')
KITTI_8E = _KITTI.format('r50', '_8e')
KITTI_SWINB = _KITTI.format('swinb', '')
VIP = ('video_knet_vipseg/video_knet_s3_r50_rpn_vipseg_mask_embed_link_ffn_'
       'joint_train.py')
VIP_SWINB = ('video_knet_vipseg/video_knet_s3_swinb_rpn_vipseg_mask_embed_'
             'link_ffn_joint_train_8e.py')

#: (things, stuff) of each config, from the datasets (spec §5, §7.1)
CLASSES = {
    CITY: (2, 17), CITY_SWINB: (2, 17), CITY_SWINL: (2, 17),
    COCO_INS: (80, 0), COCO_PAN: (80, 53),
    KITTI: (2, 17), KITTI_8E: (2, 17), KITTI_SWINB: (2, 17),
    VIP: (58, 66), VIP_SWINB: (58, 66),
}
VIDEO = (KITTI, KITTI_8E, KITTI_SWINB, VIP, VIP_SWINB)


def _load(name: str) -> Config:
    try:
        return Config.fromfile(osp.join(DET, name))
    except KeyError as err:
        if 'Duplicate key' not in str(err):
            raise
        pytest.fail(f'configs/det/{name}: its bases (model + dataset) both '
                    f'define a top-level variable: {err}. mmengine refuses '
                    'duplicates among sibling bases; rename the dataset '
                    'base\'s variable (e.g. num_classes -> '
                    'dataset_num_classes).')


def _mask_heads(roi_head) -> list:
    heads = roi_head.mask_head
    return list(heads) if isinstance(heads, (list, tuple)) else [heads]


@pytest.mark.parametrize('name', sorted(CLASSES))
def test_config_loads_with_consistent_class_counts(name):
    cfg = _load(name)
    things, stuff = CLASSES[name]
    model = cfg.model
    assert (model.num_thing_classes, model.num_stuff_classes) == (things,
                                                                  stuff)
    rpn, roi = model.rpn_head, model.roi_head
    assert (rpn.num_classes, rpn.num_thing_classes,
            rpn.num_stuff_classes) == (things + stuff, things, stuff)
    assert (roi.num_thing_classes, roi.num_stuff_classes) == (things, stuff)
    for head in _mask_heads(roi):
        assert (head.num_classes, head.num_thing_classes,
                head.num_stuff_classes) == (things + stuff, things, stuff)
    if name in VIDEO:
        # softmax CE of the kernel head ignores "no class" = num_classes
        assert rpn.loss_seg.ignore_index == things + stuff
        assert cfg.find_unused_parameters is True
        assert cfg.load_from is None


def _walk_strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk_strings(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk_strings(value)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize('name', [CITY_SWINB, CITY_SWINL, KITTI_SWINB,
                                  VIP_SWINB])
def test_swin_configs_download_nothing(name):
    cfg = _load(name)
    backbone = cfg.model.backbone
    assert backbone.type == 'SwinTransformer'
    assert not [s for s in _walk_strings(backbone.to_dict()) if '://' in s]
    embed = 192 if name == CITY_SWINL else 128
    assert backbone.embed_dims == embed
    assert cfg.model.neck.in_channels == [embed * 2**i for i in range(4)]
    assert cfg.train_dataloader.batch_size == 1
    if name in VIDEO:  # the Swin weights come with --load-from
        assert backbone.init_cfg is None


def _check_schedule(cfg, epochs, milestones):
    assert cfg.train_cfg.max_epochs == epochs
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.by_epoch, warmup.begin,
            warmup.end) == ('LinearLR', 0.001, False, 0, 1000)
    assert (steps.type, steps.milestones, steps.gamma, steps.end,
            steps.by_epoch) == ('MultiStepLR', milestones, 0.1, epochs, True)
    optim = cfg.optim_wrapper
    assert (optim.optimizer.type, optim.optimizer.lr,
            optim.optimizer.weight_decay) == ('AdamW', 1e-4, 0.05)
    assert optim.paramwise_cfg.custom_keys == {'backbone': {'lr_mult': 0.25}}
    assert optim.clip_grad == {'max_norm': 1, 'norm_type': 2}


def test_kitti_step_r50_hyper_parameters_of_the_spec():
    """video_knet_spec.md §2.6, §2.9, §7.1 #2."""
    cfg = _load(KITTI)
    model = cfg.model
    assert model.type in ('VideoKNet', 'VideoKNetQuansiEmbedFCJointTrain')
    assert model.backbone.norm_cfg.type == 'SyncBN'
    assert model.backbone.norm_eval is True
    # strides: kernel-head masks x4, stage masks x4, targets at stride 2
    assert model.rpn_head.feat_downsample_stride == 4
    assert model.roi_head.mask_upsample_stride == 4
    assert model.mask_assign_stride == 2
    assert model.rpn_head.loss_seg.type == 'CrossEntropyLoss'
    assert model.rpn_head.loss_seg.use_sigmoid is False
    for head in _mask_heads(model.roi_head):
        assert head.previous is not None
        assert head.previous_type == 'ffn'
        assert head.get('previous_link') is None
    assert model.track_head.num_fcs == 2
    assert model.track_head.loss_track.loss_weight == 0.25
    assert model.track_head.loss_track_aux.loss_weight == 1.0
    aux = model.track_head.loss_track_aux
    assert (aux.neg_pos_ub, aux.pos_margin, aux.neg_margin,
            aux.hard_mining) == (3, 0, 0.1, True)
    tracker = {k: v for k, v in model.tracker.items() if k != 'type'}
    assert tracker == dict(
        init_score_thr=0.35, obj_score_thr=0.3, match_score_thr=0.5,
        memo_tracklet_frames=5, memo_backdrop_frames=1, memo_momentum=0.8,
        nms_conf_thr=0.5, nms_backdrop_iou_thr=0.3, nms_class_iou_thr=0.7,
        with_cats=True, match_metric='bisoftmax')
    merge = model.test_cfg.rcnn.merge_stuff_thing
    assert (merge.instance_score_thr, merge.overlap_thr) == (0.25, 0.6)
    assert model.test_cfg.rcnn.max_per_img == 100
    # one pair per GPU; the original's RepeatDataset x2 (which mmdet's
    # TrackImgSampler refuses) as 2 passes per original epoch: 12 epochs
    # with steps at 9 and 11 -> 24 passes with steps at 18 and 22
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.train_dataloader.sampler.type == 'TrackImgSampler'
    assert cfg.train_dataloader.dataset.type == 'KITTISTEPDataset'
    _check_schedule(cfg, 24, [18, 22])
    assert cfg.train_cfg.val_interval == 2
    assert cfg.default_hooks.checkpoint.interval == 2
    _check_schedule(_load(KITTI_8E), 16, [14])


def test_kitti_step_swinb_adds_kernel_fusion():
    cfg = _load(KITTI_SWINB)
    for head in _mask_heads(cfg.model.roi_head):
        assert (head.previous_type, head.previous_link) == (
            'ffn', 'update_dynamic_cov')
    _check_schedule(cfg, 24, [18, 22])


def test_vipseg_schedules_and_data():
    cfg = _load(VIP)
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.backbone.norm_eval is True
    assert cfg.train_dataloader.batch_size == 1
    # RepeatDataset x1 of the original: the dataset itself
    assert cfg.train_dataloader.dataset.type != 'RepeatDataset'
    _check_schedule(cfg, 12, [9, 11])
    swin = _load(VIP_SWINB)
    _check_schedule(swin, 8, [7])
    for head in _mask_heads(swin.model.roi_head):
        assert head.previous_link == 'update_dynamic_cov'


def test_cityscapes_step_pretraining_of_the_spec():
    """video_knet_spec.md §7.1 #1."""
    cfg = _load(CITY)
    model = cfg.model
    assert model.type == 'KNet'
    assert model.backbone.norm_cfg.type == 'SyncBN'
    assert model.backbone.norm_eval is True
    assert model.rpn_head.feat_downsample_stride == 2
    assert model.roi_head.mask_upsample_stride == 2
    assert model.mask_assign_stride == 4
    merge = model.test_cfg.rcnn.merge_stuff_thing
    assert (merge.instance_score_thr, merge.overlap_thr) == (0.3, 0.6)
    assert cfg.train_dataloader.batch_size == 2
    # mmdet's AspectRatioBatchSampler needs width/height in the data list
    assert cfg.train_dataloader.batch_sampler is None
    assert cfg.train_dataloader.dataset.type == 'RepeatDataset'
    assert cfg.train_dataloader.dataset.times == 8
    assert cfg.train_dataloader.dataset.dataset.type != 'RepeatDataset'
    _check_schedule(cfg, 8, [7])


@pytest.mark.parametrize('name', [COCO_INS, COCO_PAN])
def test_coco_pretraining_3x(name):
    cfg = _load(name)
    assert cfg.train_dataloader.dataset.type == 'RepeatDataset'
    assert cfg.train_dataloader.dataset.times == 3
    assert cfg.train_dataloader.batch_size == 2
    _check_schedule(cfg, 12, [9, 11])


def _build(name):
    import knet  # noqa: F401  (registers the modules)
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    return MODELS.build(_load(name).model)


@pytest.mark.parametrize('name', [CITY, CITY_SWINB, COCO_INS, COCO_PAN])
def test_image_models_build(name):
    things, stuff = CLASSES[name]
    model = _build(name)
    assert model.rpn_head.conv_seg.out_channels == things + stuff
    assert len(model.roi_head.mask_head) == 3
    assert model.roi_head.mask_head[-1].fc_cls.out_features == things + stuff


@pytest.mark.parametrize('name', [KITTI, KITTI_SWINB, VIP])
def test_video_models_build(name):
    things, stuff = CLASSES[name]
    model = _build(name)
    assert model.rpn_head.conv_seg.out_channels == things + stuff
    last = model.roi_head.mask_head[-1]
    assert last.fc_cls.out_features == things + stuff
    assert hasattr(last, 'attention_previous')  # kernel linking ('ffn')
    fusion = hasattr(last, 'attention_previous_update_link')
    assert fusion == (name == KITTI_SWINB)
