# Image K-Net on Cityscapes-STEP: the pre-training of the KITTI-STEP Video
# K-Nets (spec video_knet_spec.md §5.2, §7.1 #1). R-50 with SyncBN (frozen
# statistics, norm_eval), 100 thing kernels + 17 stuff kernels, 19 classes
# (2 things: person, car; 17 stuff; model labels things first), 3 stages,
# image strides (kernel-head masks x2 -> stride 4, targets at stride 4).
# 8 epochs over the train split repeated 8 times, lr x0.1 at epoch 7,
# 2 images per GPU on 8 GPUs. The result initialises
# configs/det/video_knet_kitti_step/* (`--load-from` of the README).
_base_ = [
    '../_base_/models/knet_s3_r50_fpn_panoptic.py',
    '../_base_/datasets/cityscapes_step.py',
    '../_base_/schedules/schedule_8e_step7.py',
    '../_base_/default_runtime.py'
]
num_thing_classes = 2
num_stuff_classes = 17
num_classes = num_thing_classes + num_stuff_classes

model = dict(
    num_thing_classes=num_thing_classes,
    num_stuff_classes=num_stuff_classes,
    mask_assign_stride=4,
    backbone=dict(
        norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=True),
    rpn_head=dict(
        num_classes=num_classes,
        num_thing_classes=num_thing_classes,
        num_stuff_classes=num_stuff_classes,
        feat_downsample_stride=2),
    roi_head=dict(
        num_thing_classes=num_thing_classes,
        num_stuff_classes=num_stuff_classes,
        mask_upsample_stride=2,
        mask_head=dict(
            num_classes=num_classes,
            num_thing_classes=num_thing_classes,
            num_stuff_classes=num_stuff_classes)),
    test_cfg=dict(
        rcnn=dict(
            merge_stuff_thing=dict(overlap_thr=0.6,
                                   instance_score_thr=0.3))))

# RepeatDataset x8 around the dataset of the base, 2 images per GPU. No
# aspect-ratio grouping: every Cityscapes frame is 2048x1024 (and the data
# list has no width/height for mmdet's AspectRatioBatchSampler to read).
train_dataloader = dict(
    batch_size=2,
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=8,
        dataset={{_base_.train_dataloader.dataset}}))
# the originals trained on 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)
