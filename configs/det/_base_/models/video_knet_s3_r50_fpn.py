# Video K-Net (VPS, spec video_knet_spec.md §2): the panoptic K-Net of
# knet_s3_r50_fpn_panoptic.py with the video strides (kernel-head masks and
# stage masks upsampled x4 to stride 2, targets at stride 2), softmax CE
# for the kernel head's semantic loss, kernel linking on the last stage
# (previous_type='ffn'), the kernel association embedding (embed_fcs +
# fc_embed + track head) and the quasi-dense tracker. Classes: KITTI-STEP
# (2 things, 17 stuff; model labels things first).
_base_ = ['./knet_s3_r50_fpn_panoptic.py']

num_proposals = 100
num_thing_classes = 2
num_stuff_classes = 17
num_classes = num_thing_classes + num_stuff_classes

mask_assigner = dict(
    type='MaskHungarianAssigner',
    match_costs=[
        dict(type='FocalLossCost', weight=2.0),
        dict(type='KNetDiceCost', weight=4.0, pred_act=True),
        dict(type='KNetMaskCost', weight=1.0, pred_act=True),
    ])
mask_sampler = dict(type='MaskPseudoSampler')

model = dict(
    _delete_=True,
    type='VideoKNet',
    num_thing_classes=num_thing_classes,
    num_stuff_classes=num_stuff_classes,
    mask_assign_stride=2,
    link_previous=True,
    data_preprocessor=dict(
        type='VideoSegDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        seg_pad_value=255),
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    rpn_head=dict(
        type='ConvKernelHead',
        num_proposals=num_proposals,
        in_channels=256,
        out_channels=256,
        num_classes=num_classes,
        num_thing_classes=num_thing_classes,
        num_stuff_classes=num_stuff_classes,
        cat_stuff_mask=True,
        conv_kernel_size=1,
        feat_downsample_stride=4,
        use_binary=True,
        num_loc_convs=1,
        num_seg_convs=1,
        conv_normal_init=True,
        proposal_feats_with_obj=True,
        kernel_init_std=1,
        localization_fpn={{_base_.model.rpn_head.localization_fpn}},
        # video configs: softmax CE over all classes, "no class" ignored
        loss_seg=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            ignore_index=num_classes,
            loss_weight=1.0),
        loss_mask={{_base_.loss_mask}},
        loss_dice={{_base_.loss_dice}},
        loss_rank={{_base_.loss_rank}}),
    roi_head=dict(
        type='VideoKernelIterHead',
        num_stages=3,
        stage_loss_weights=[1, 1, 1],
        num_proposals=num_proposals,
        num_thing_classes=num_thing_classes,
        num_stuff_classes=num_stuff_classes,
        do_panoptic=True,
        mask_upsample_stride=4,
        mask_head=dict(
            type='VideoKernelUpdateHead',
            num_classes=num_classes,
            num_thing_classes=num_thing_classes,
            num_stuff_classes=num_stuff_classes,
            num_ffn_fcs=2,
            num_heads=8,
            num_cls_fcs=1,
            num_mask_fcs=1,
            feedforward_channels=2048,
            in_channels=256,
            out_channels=256,
            dropout=0.0,
            conv_kernel_size=1,
            mask_pooling='sigmoid',
            hard_mask_thr=0.5,
            ffn_act_cfg=dict(type='ReLU', inplace=True),
            with_ffn=True,
            feat_transform_cfg=dict(
                conv_cfg=dict(type='Conv2d'), act_cfg=None),
            kernel_updator_cfg=dict(
                type='KNetKernelUpdator',
                in_channels=256,
                feat_channels=256,
                out_channels=256,
                act_cfg=dict(type='ReLU', inplace=True),
                norm_cfg=dict(type='LN')),
            # kernel linking (paper "KL"): tracking kernels from a cross
            # attention to the previous frame's kernels (every stage has
            # the modules, as in the original; only the last one uses them)
            previous='placeholder',
            previous_type='ffn',
            previous_link=None,
            loss_cls=dict(
                type='FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=2.0),
            loss_mask={{_base_.loss_mask}},
            loss_dice={{_base_.loss_dice}},
            # the video stages have no rank loss (spec §1.4, §2.7)
            loss_rank=None)),
    track_head=dict(
        type='QuasiDenseMaskEmbedHead',
        num_convs=0,
        num_fcs=2,
        roi_feat_size=1,
        in_channels=256,
        fc_out_channels=256,
        embed_channels=256,
        loss_track=dict(
            type='MultiPosCrossEntropyLoss', loss_weight=0.25),
        loss_track_aux=dict(
            type='KNetL2Loss',
            neg_pos_ub=3,
            pos_margin=0,
            neg_margin=0.1,
            hard_mining=True,
            loss_weight=1.0)),
    tracker=dict(
        type='KNetQuasiDenseTracker',
        init_score_thr=0.35,
        obj_score_thr=0.3,
        match_score_thr=0.5,
        memo_tracklet_frames=5,
        memo_backdrop_frames=1,
        memo_momentum=0.8,
        nms_conf_thr=0.5,
        nms_backdrop_iou_thr=0.3,
        nms_class_iou_thr=0.7,
        with_cats=True,
        match_metric='bisoftmax'),
    train_cfg=dict(
        rpn=dict(assigner=mask_assigner, sampler=mask_sampler, pos_weight=1),
        rcnn=dict(assigner=mask_assigner, sampler=mask_sampler, pos_weight=1),
        # matching of the last stage's predictions for the embedding loss
        track=dict(assigner=mask_assigner, sampler=mask_sampler)),
    test_cfg=dict(
        rpn=None,
        rcnn=dict(
            max_per_img=num_proposals,
            mask_thr=0.5,
            thing_candidates='topk',
            merge_stuff_thing=dict(
                overlap_thr=0.6,
                instance_score_thr=0.25,
                segment_id_start=1)),
        # spec §9.1-2: pixels no segment claims are void (None); the
        # original wrote class 0 of the dataset there (KITTI-STEP: road =
        # model label 2); set that model label to reproduce it
        unassigned_label=None,
        # spec §9.1-5: the semantic filter crops the padding before
        # resizing (True); the original stretched the padded map (False)
        semantic_filter_crop=True,
        # a frame without thing segments still ages the tracker (True);
        # the original skipped the tracker on such frames (False)
        track_empty_frames=True,
        # spec §9.1-1: ids stay on their masks (True); False paints the
        # tracker's sorted, de-duplicated ids in segment order (original)
        align_track_ids=True))
