# A small Video K-Net for the synthetic STEP data: ResNet-18 from scratch,
# 64-d kernels, 30 thing kernels, 3 update stages, kernel linking and the
# association embedding (64-d). Same modules as the R-50 KITTI-STEP model;
# only widths and counts change.
_base_ = ['../../det/_base_/models/video_knet_s3_r50_fpn.py']

num_proposals = 30
num_thing_classes = 6
num_stuff_classes = 5
num_classes = num_thing_classes + num_stuff_classes
channels = 64
gn = dict(type='GN', num_groups=16, requires_grad=True)

model = dict(
    num_thing_classes=num_thing_classes,
    num_stuff_classes=num_stuff_classes,
    embed_channels=channels,
    backbone=dict(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels),
    rpn_head=dict(
        num_proposals=num_proposals,
        in_channels=channels,
        out_channels=channels,
        num_classes=num_classes,
        num_thing_classes=num_thing_classes,
        num_stuff_classes=num_stuff_classes,
        norm_cfg=gn,
        localization_fpn=dict(
            in_channels=channels,
            feat_channels=channels,
            out_channels=channels,
            positional_encoding=dict(num_feats=channels // 2),
            norm_cfg=gn),
        loss_seg=dict(ignore_index=num_classes)),
    roi_head=dict(
        num_proposals=num_proposals,
        num_thing_classes=num_thing_classes,
        num_stuff_classes=num_stuff_classes,
        mask_head=dict(
            num_classes=num_classes,
            num_thing_classes=num_thing_classes,
            num_stuff_classes=num_stuff_classes,
            num_heads=4,
            feedforward_channels=4 * channels,
            in_channels=channels,
            out_channels=channels,
            kernel_updator_cfg=dict(
                in_channels=channels,
                feat_channels=channels,
                out_channels=channels))),
    track_head=dict(
        in_channels=channels, fc_out_channels=channels,
        embed_channels=channels),
    test_cfg=dict(rcnn=dict(max_per_img=num_proposals)))
